"""Vandermonde kernel: out[..., l] = sum_n v[..., n] x[..., n] ** l, x^0 = 1 (also for x = 0).

The fast backends evaluate it as the log-space kernel with log_x = log(x) formed in complex128 (their primitives
are described in log_vandermonde.py); only the gradient with respect to x differs:
grad x = conj(v) sum_l l g_l conj(x)^(l-1), which at x = 0 is conj(v) g_1.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch.autograd.function import once_differentiable

from .. import dispatch
from ._common import as_rows, backend_name, batch_shape, complex_dtype, integer, same_device, tensor


def vandermonde_ref(v: torch.Tensor, x: torch.Tensor, L: int) -> torch.Tensor:
    """The definition with powers by cumulative products in complex128 (exact at x = 0 and NaN-propagating):
    v, x (..., N) broadcastable -> (..., L), materialising (..., N, L)."""
    dtype = complex_dtype(v, x)
    x128 = x.to(torch.complex128).unsqueeze(-1)
    powers = torch.cat([torch.ones_like(x128), torch.cumprod(x128.expand(*x.shape, L - 1), dim=-1)], dim=-1)
    return (v.to(dtype).unsqueeze(-2) @ powers.to(dtype)).squeeze(-2)


class _Vandermonde(torch.autograd.Function):
    """Forward and backward through the log-space primitives of one backend."""

    @staticmethod
    def forward(ctx, v, x, L: int, backend: str):  # v (R, N), x (Rx, N)
        lx = torch.log(x.to(torch.complex128))
        ctx.save_for_backward(v, x, lx)
        ctx.backend = backend
        return dispatch.loaded(backend, v.device.type).vandermonde_fwd(v, lx, L)

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        v, x, lx = ctx.saved_tensors
        g = g.contiguous()
        G0, G1 = dispatch.loaded(ctx.backend, v.device.type).vandermonde_bwd(g, lx.conj().resolve_conj())
        gv = G0 if ctx.needs_input_grad[0] else None
        gx = None
        if ctx.needs_input_grad[1]:  # rows r = c Rx + k use x[k]: work on (R / Rx, Rx, N) views, no copies of x
            Rx, N = x.shape
            g1 = (g[:, 1:2] if g.shape[1] > 1 else torch.zeros_like(g[:, :1])).reshape(-1, Rx, 1)
            dx = torch.where(x == 0, g1, G1.reshape(-1, Rx, N) / x.conj())
            gx = (v.conj().reshape(-1, Rx, N) * dx).sum(0)
        return gv, gx, None, None


def run(backend: str, v: torch.Tensor, x: torch.Tensor, L: int) -> torch.Tensor:
    """vandermonde through `backend`'s primitives; shapes as `vandermonde`."""
    v2, x2, shape = as_rows(v, x)
    return _Vandermonde.apply(v2, x2, L, backend).reshape(*shape, L)


def _probe_case(device: torch.device):
    gen = torch.Generator().manual_seed(0)
    f = lambda *s: torch.randn(*s, generator=gen, dtype=torch.float64)  # noqa: E731
    x = torch.exp(torch.complex(-0.1 * f(3, 4).abs(), f(3, 4)))
    x[0, 0] = 0
    return (torch.complex(f(2, 3, 4), f(2, 3, 4)).to(device), x.to(device), 70), (0, 1)


dispatch.register_op(dispatch.OpSpec("vandermonde", vandermonde_ref, run, _probe_case, {"torch": vandermonde_ref}))


def vandermonde(v: torch.Tensor, x: torch.Tensor, L: int, backend: Optional[str] = None) -> torch.Tensor:
    """v, x: (..., N) broadcastable (e.g. v (C, H, N) with x (H, N)) -> (..., L) complex."""
    v, x = tensor("v", v, 1, "(..., N)"), tensor("x", x, 1, "(..., N)")
    L = integer("L", L, 1)
    backend_name(backend)
    device = same_device(v=v, x=x)
    shape = batch_shape("v", v, "x", x)
    dtype = complex_dtype(v, x)
    v, x = v.to(dtype), x.to(dtype)
    name = dispatch.select("vandermonde", device.type, backend)
    if shape.numel() == 0 or v.shape[-1] == 0:
        name = "torch"
    return dispatch.implementation("vandermonde", name)(v, x, L)
