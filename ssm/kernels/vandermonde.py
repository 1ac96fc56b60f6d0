"""Vandermonde kernel op: out[..., l] = sum_n v[..., n] x[..., n] ** l, in log space (S4D, DSS, S4-PTD)."""
from __future__ import annotations

from typing import Optional

import torch
from torch.autograd.function import once_differentiable

from . import dispatch
from ._rows import as_rows, fold_rows, register_backends
from .cauchy import _complex
from .reference import log_vandermonde_ref, log_vandermonde_transpose_ref, vandermonde_ref


class _Vandermonde(torch.autograd.Function):
    """Forward/backward through a backend module's primitives `vandermonde_fwd` and `vandermonde_bwd` on rows."""

    @staticmethod
    def forward(ctx, v, x, L, impl):  # v (R, N), x (Rx, N)
        ctx.save_for_backward(v, x)
        ctx.impl = impl
        return impl.vandermonde_fwd(v, x, L)

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        v, x = ctx.saved_tensors
        h = g.conj().resolve_conj().contiguous()
        A, D = ctx.impl.vandermonde_bwd(h, x)  # sum_l h x^l, sum_l l h x^l
        gv = A.conj() if ctx.needs_input_grad[0] else None
        gx = None
        if ctx.needs_input_grad[1]:
            Rx, N = x.shape
            xr = x.repeat(v.shape[0] // Rx, 1)
            dx = torch.where(xr == 0, h[:, 1:2] if h.shape[1] > 1 else torch.zeros_like(h[:, :1]), D / xr)
            gx = fold_rows((v * dx).conj(), Rx)  # d/dx of v x^l = l v x^(l-1)
        return gv, gx, None, None


def apply(impl, v: torch.Tensor, x: torch.Tensor, L: int) -> torch.Tensor:
    """Differentiable Vandermonde through backend module `impl` (ext, keops, triton_kernels); shapes as `vandermonde`."""
    v2, x2, shape = as_rows(v, x)
    return _Vandermonde.apply(v2.contiguous(), x2.contiguous(), L, impl).reshape(*shape, L)


def _inputs(device: torch.device) -> tuple:
    gen = torch.Generator().manual_seed(0)
    f = lambda *s: torch.randn(*s, generator=gen, dtype=torch.float64)  # noqa: E731
    x = torch.exp(torch.complex(-0.1 * f(3, 4).abs(), f(3, 4)))
    return torch.complex(f(2, 3, 4), f(2, 3, 4)).to(device), x.to(device), 70


register_backends("vandermonde", vandermonde_ref, apply, _inputs)


def vandermonde(v: torch.Tensor, x: torch.Tensor, L: int, backend: Optional[str] = None) -> torch.Tensor:
    """v, x: (..., N) complex (broadcastable, e.g. v (C, H, N) with x (H, N)) -> (..., L)."""
    if not (v.is_complex() and x.is_complex()):
        raise ValueError(f"v and x must be complex, got v {v.dtype} and x {x.dtype}")
    if int(L) < 1:
        raise ValueError(f"L must be a positive integer, got {L}")
    try:
        torch.broadcast_shapes(v.shape, x.shape)
    except RuntimeError:
        raise ValueError(f"v and x must be broadcastable, got v {tuple(v.shape)} and x {tuple(x.shape)}") from None
    dtype = _complex(v, x)
    v, x = v.to(dtype), x.to(dtype)
    return dispatch.choose("vandermonde", v.device, backend).fn(v, x, int(L))


def log_vandermonde(v: torch.Tensor, log_x: torch.Tensor, L: int, backend: Optional[str] = None) -> torch.Tensor:
    """v, log_x: (..., N) complex (broadcastable) -> (..., L): sum_n v exp(l log_x), never rounding exp(log_x) first."""
    if not (v.is_complex() and log_x.is_complex()):
        raise ValueError(f"v and log_x must be complex, got v {v.dtype} and log_x {log_x.dtype}")
    if isinstance(L, bool) or not isinstance(L, int) or L < 1:
        raise ValueError(f"L must be a positive int, got {L!r}")
    if backend not in (None, "torch"):
        raise ValueError(f"backend must be None or 'torch' for log_vandermonde, got {backend!r}")
    return log_vandermonde_ref(v, log_x, L)


def log_vandermonde_transpose(u: torch.Tensor, log_x: torch.Tensor, backend: Optional[str] = None) -> torch.Tensor:
    """u: (..., L) real or complex, log_x: (..., N) complex, batch dims broadcastable -> (..., N): sum_l u_l exp(l log_x)."""
    if not log_x.is_complex():
        raise ValueError(f"log_x must be complex, got {log_x.dtype}")
    if u.dim() < 1 or u.shape[-1] < 1:
        raise ValueError(f"u must have shape (..., L) with L >= 1, got {tuple(u.shape)}")
    if backend not in (None, "torch"):
        raise ValueError(f"backend must be None or 'torch' for log_vandermonde_transpose, got {backend!r}")
    return log_vandermonde_transpose_ref(u, log_x)
