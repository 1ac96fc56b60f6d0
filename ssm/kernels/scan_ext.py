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


def _flat(a: torch.Tensor, t: torch.Tensor):
    """(a (M, La, N) as a broadcast view, t (M, L, N)) for a tensor t shaped like b."""
    L, N = t.shape[-2], t.shape[-1]
    t3 = t.reshape(-1, L, N)
    return a.expand(t.shape[:-2] + a.shape[-2:]).reshape(t3.shape[0], a.shape[-2], N), t3


class ExtScan(torch.autograd.Function):
    """scan_fwd forward; scan_bwd backward (the adjoint scan fused with the gradient of a and h0)."""

    @staticmethod
    def forward(ctx, a, b, h0, reverse: bool):  # type: ignore[override]
        h = scan_ext_forward(a, b, h0, reverse)
        ctx.reverse, ctx.has_h0 = reverse, h0 is not None
        ctx.save_for_backward(a, h, h0 if h0 is not None else torch.empty(0))
        return h

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g):  # type: ignore[override]
        a, h, h0 = ctx.saved_tensors
        a3, h3 = _flat(a, h)
        h03 = h0.reshape(h3.shape[0], h3.shape[-1]) if ctx.has_h0 else None
        gb, ga, gh0 = torch.ops.ssm.scan_bwd(a3, h3, h03, g.reshape(h3.shape), ctx.reverse, ctx.needs_input_grad[0])
        grad_a = ga.reshape(h.shape[:-2] + a.shape[-2:]).sum_to_size(a.shape) if ga is not None else None
        grad_h0 = gh0.reshape(h0.shape) if ctx.has_h0 and ctx.needs_input_grad[2] else None
        return grad_a, gb.reshape(h.shape), grad_h0, None


def scan_ext(a: torch.Tensor, b: torch.Tensor, h0: Optional[torch.Tensor] = None,
             reverse: bool = False) -> torch.Tensor:
    """Differentiable compiled scan: fused C++/CUDA backward if the build has scan_bwd, else a reverse scan_fwd."""
    _op()
    if _has_bwd() and a.dim() == b.dim():
        return ExtScan.apply(a, b, h0, reverse)
    return LinearScan.apply(a, b, h0, reverse, scan_ext_forward)


def _has_bwd() -> bool:
    try:
        torch.ops.ssm.scan_bwd
        return True
    except (AttributeError, RuntimeError):
        return False


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
