"""The "ext" scan backend: torch.ops.ssm.scan_fwd from the compiled extension ssm._C (csrc/scan.cpp, .cu)."""
from __future__ import annotations

from typing import Optional

import torch

from .scan_torch import LinearScan


def _op():
    """torch.ops.ssm.scan_fwd, importing ssm._C first; raises ImportError/RuntimeError with the reason."""
    try:
        import ssm._C  # noqa: F401  (registers the ops)
    except ImportError as e:
        raise ImportError(f"the compiled extension ssm._C is not built ({e})") from e
    try:
        return torch.ops.ssm.scan_fwd
    except (AttributeError, RuntimeError) as e:
        raise RuntimeError("ssm._C was built without csrc/scan.cpp (no op ssm::scan_fwd); rebuild it") from e


def scan_ext_forward(a: torch.Tensor, b: torch.Tensor, h0: Optional[torch.Tensor], reverse: bool) -> torch.Tensor:
    """Flatten to (M, L, N), call the compiled kernel, restore the shape; a (..., La, N) broadcast without copies."""
    L, N = b.shape[-2], b.shape[-1]
    batch = b.shape[:-2]
    b3 = b.reshape(-1, L, N)
    M = b3.shape[0]
    a3 = a.expand(batch + a.shape[-2:]).reshape(M, a.shape[-2], N)  # a view when a broadcasts over batch
    h03 = h0.reshape(M, N) if h0 is not None else None
    return _op()(a3, b3, h03, reverse).reshape(b.shape)


def scan_ext(a: torch.Tensor, b: torch.Tensor, h0: Optional[torch.Tensor] = None,
             reverse: bool = False) -> torch.Tensor:
    """Differentiable compiled scan; the backward is a reverse scan by the same kernel."""
    return LinearScan.apply(a, b, h0, reverse, scan_ext_forward)


def probe(device: torch.device) -> None:
    """Raise with the reason unless the compiled kernel runs on `device` and matches the reference."""
    from .reference import scan_ref
    from .scan import _check_close, probe_case

    _op()
    a, b, h0 = probe_case(device)
    try:
        out = scan_ext(a, b, h0, False)
    except (RuntimeError, NotImplementedError) as e:
        raise RuntimeError(f"ssm::scan_fwd has no {device.type} kernel in this build ({str(e).splitlines()[0]})") from e
    _check_close(out, scan_ref(a, b, h0, False), "ext")
