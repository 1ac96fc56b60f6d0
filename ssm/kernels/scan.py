"""Diagonal linear recurrence h_l = a_l * h_{l-1} + b_l (S5 and recurrent modes), with backends.

Backends (dispatch op "scan"): "ext" (compiled ssm._C, C++ on CPU / CUDA on GPU), "triton" (CUDA),
"torch" (parallel associative scan, chunked on the CPU), "ref" (the sequential loop; only when forced,
the oracle in tests). All are differentiable: torch/triton share an autograd.Function whose backward
is a reverse scan; ext has a fused compiled backward (ssm::scan_bwd). keops does not fit a scan (it
evaluates reductions of independent kernel terms, with no carried state), so there is no keops backend.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch

from . import dispatch
from .reference import scan_ref
from .scan_torch import scan_torch


def _check_close(out: torch.Tensor, ref: torch.Tensor, name: str) -> None:
    if not torch.allclose(out.cpu(), ref.cpu(), rtol=1e-4, atol=1e-5):
        raise RuntimeError(f"{name} scan disagrees with the sequential reference on a tiny case")


def probe_case(device: torch.device) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A tiny (a, b, h0) complex case on `device` for backend probes."""
    g = torch.Generator().manual_seed(0)
    b = torch.randn(2, 9, 3, dtype=torch.cfloat, generator=g)
    a = 0.9 * torch.randn(1, 1, 3, dtype=torch.cfloat, generator=g)
    h0 = torch.randn(2, 3, dtype=torch.cfloat, generator=g)
    return a.to(device), b.to(device), h0.to(device)


def _probe_torch(device: torch.device) -> None:
    a, b, h0 = probe_case(device)
    _check_close(scan_torch(a, b, h0, False), scan_ref(a, b, h0, False), "torch")


def _probe_ref(device: torch.device) -> None:
    scan_ref(torch.ones(1, 2, device=device), torch.ones(3, 2, device=device))


def _ext_fn(a, b, h0, reverse):
    from .scan_ext import scan_ext

    return scan_ext(a, b, h0, reverse)


def _probe_ext(device: torch.device) -> None:
    from .scan_ext import probe

    probe(device)


def _triton_fn(a, b, h0, reverse):
    from .scan_triton import scan_triton

    return scan_triton(a, b, h0, reverse)


def _probe_triton(device: torch.device) -> None:
    from .scan_triton import probe

    probe(device)


dispatch.register("scan", dispatch.Backend(
    "ext", _ext_fn, _probe_ext, priority={"cpu": 10, "cuda": 10},
    hint="build the extension: pip install --no-build-isolation -e . (CUDA kernels need nvcc and a CUDA torch)"))
dispatch.register("scan", dispatch.Backend(
    "triton", _triton_fn, _probe_triton, devices=("cuda",), priority={"cuda": 20},
    hint="install triton (pip install triton) and run on a CUDA device"))
dispatch.register("scan", dispatch.Backend("torch", scan_torch, _probe_torch, priority={"cpu": 50, "cuda": 50}))
dispatch.register("scan", dispatch.Backend("ref", scan_ref, _probe_ref))


def _prepare(a: torch.Tensor, b: torch.Tensor, h0: Optional[torch.Tensor]):
    """Validate and normalise: common dtype, a with b's number of dims, h0 expanded to b[..., 0, :]."""
    if not isinstance(b, torch.Tensor) or b.dim() < 2 or b.shape[-2] < 1:
        raise ValueError(f"b must be a tensor of shape (..., L, N) with L >= 1, got {_shape(b)}")
    if not isinstance(a, torch.Tensor):
        raise ValueError(f"a must be a tensor broadcastable to b {tuple(b.shape)}, got {type(a).__name__}")
    try:
        ok = torch.broadcast_shapes(a.shape, b.shape) == b.shape
    except RuntimeError:
        ok = False
    if not ok:
        raise ValueError(f"a must be broadcastable to b {tuple(b.shape)}, got {tuple(a.shape)}")
    tensors = [a, b] + ([h0] if h0 is not None else [])
    for name, t in zip(("a", "b", "h0"), tensors):
        if not (t.is_floating_point() or t.is_complex()):
            raise ValueError(f"{name} must be a floating or complex tensor, got dtype {t.dtype}")
        if t.device != b.device:
            raise ValueError(f"{name} must be on {b.device} like b, got {t.device}")
    dtype = b.dtype
    for t in tensors:
        dtype = torch.promote_types(dtype, t.dtype)
    a = a.to(dtype).reshape((1,) * (b.dim() - a.dim()) + tuple(a.shape))
    b = b.to(dtype)
    if h0 is not None:
        state_shape = b.shape[:-2] + b.shape[-1:]
        try:
            ok = torch.broadcast_shapes(h0.shape, state_shape) == state_shape
        except RuntimeError:
            ok = False
        if not ok:
            raise ValueError(f"h0 must be broadcastable to {tuple(state_shape)}, got {tuple(h0.shape)}")
        h0 = h0.to(dtype).expand(state_shape)
    return a, b, h0


def _shape(x) -> str:
    return str(tuple(x.shape)) if isinstance(x, torch.Tensor) else type(x).__name__


def scan(a: torch.Tensor, b: torch.Tensor, h0: Optional[torch.Tensor] = None, reverse: bool = False,
         backend: Optional[str] = None) -> torch.Tensor:
    """b: (..., L, N), a broadcastable to b, h0: (..., N) or None -> h: (..., L, N); reverse runs l = L-1..0."""
    a, b, h0 = _prepare(a, b, h0)
    return dispatch.choose("scan", b.device, backend).fn(a, b, h0, reverse)
