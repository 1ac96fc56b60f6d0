"""Transposed log-space Vandermonde: out[..., n] = sum_l u[..., l] exp(l log_x[..., n]).

With u flipped in time this is the final state of a diagonal SSM, sum_l dA^(L-1-l) dB u_l, in one pass over u
and without any (..., N, L) tensor. Real u (the layers' case) uses the primitive vandermonde_transpose
(half the work of a complex u); complex u the sums of vandermonde_bwd (see log_vandermonde.py). Gradients:
grad u = conj(vandermonde_fwd(conj g, lx)) (its real part for real u), grad log_x = g conj(sum_l l u_l x^l).
"""
from __future__ import annotations

from typing import Optional

import torch
from torch.autograd.function import once_differentiable

from .. import dispatch
from ._common import (as_rows, backend_name, batch_shape, complex_dtype, fold_rows, real_dtype,
                      same_device, tensor)
from .log_vandermonde import log_powers


def log_vandermonde_transpose_ref(u: torch.Tensor, log_x: torch.Tensor) -> torch.Tensor:
    """The definition, materialising log_x's (..., N, L) powers in complex128: u (..., L), log_x (..., N) -> (..., N)."""
    dtype = complex_dtype(u, log_x)
    powers = log_powers(log_x, u.shape[-1]).to(dtype)  # (..., N, L)
    return (powers @ u.to(dtype).unsqueeze(-1)).squeeze(-1)


class _Transpose(torch.autograd.Function):
    """Forward and backward through the primitives of one backend; u (R, L) real or complex, log_x (Rx, N)."""

    @staticmethod
    def forward(ctx, u, log_x, backend: str):
        impl = dispatch.loaded(backend, u.device.type)
        lx = log_x.to(torch.complex128)
        ctx.backend, ctx.dtype = backend, log_x.dtype
        if u.is_complex():
            out, d = impl.vandermonde_bwd(u, lx)
            ctx.save_for_backward(u, lx, d)
        else:
            out = impl.vandermonde_transpose(u, lx, False)
            ctx.save_for_backward(u, lx)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        u, lx, *d = ctx.saved_tensors
        impl = dispatch.loaded(ctx.backend, u.device.type)
        clx = lx.conj().resolve_conj()
        gu = glx = None
        if ctx.needs_input_grad[0]:
            gu = impl.vandermonde_fwd(g.contiguous(), clx, u.shape[1])  # = conj(vandermonde_fwd(conj g, lx))
            gu = gu if u.is_complex() else gu.real.contiguous()
        if ctx.needs_input_grad[1]:
            dc = d[0].conj() if d else impl.vandermonde_transpose(u, clx, True)  # conj(sum_l l u_l x^l)
            glx = fold_rows(g * dc, lx.shape[0]).to(ctx.dtype)
        return gu, glx, None


def run(backend: str, u: torch.Tensor, log_x: torch.Tensor) -> torch.Tensor:
    """log_vandermonde_transpose through `backend`'s primitives; shapes as `log_vandermonde_transpose`."""
    u2, lx2, shape = as_rows(u, log_x)
    return _Transpose.apply(u2, lx2, backend).reshape(*shape, log_x.shape[-1])


def _probe_case(device: torch.device):
    gen = torch.Generator().manual_seed(0)
    f = lambda *s: torch.randn(*s, generator=gen, dtype=torch.float64)  # noqa: E731
    log_x = torch.complex(-0.1 * f(3, 4).abs(), f(3, 4))
    return (f(2, 3, 70).to(device), log_x.to(device)), (0, 1)


dispatch.register_op(dispatch.OpSpec("log_vandermonde_transpose", log_vandermonde_transpose_ref, run, _probe_case,
                                     {"torch": log_vandermonde_transpose_ref}))


def log_vandermonde_transpose(u: torch.Tensor, log_x: torch.Tensor, backend: Optional[str] = None) -> torch.Tensor:
    """u: (..., L) real or complex, log_x: (..., N) complex, batch dims broadcastable -> (..., N) complex."""
    u, log_x = tensor("u", u, 1, "(..., L)"), tensor("log_x", log_x, 1, "(..., N)")
    backend_name(backend)
    device = same_device(u=u, log_x=log_x)
    if u.shape[-1] < 1:
        raise ValueError(f"u must have shape (..., L) with L >= 1, got {tuple(u.shape)}")
    shape = batch_shape("u", u, "log_x", log_x, last=False)
    dtype = complex_dtype(u, log_x)
    u = u.to(dtype if u.is_complex() else real_dtype(dtype))
    log_x = log_x.to(dtype)
    name = dispatch.select("log_vandermonde_transpose", device.type, backend)
    if shape.numel() == 0 or log_x.shape[-1] == 0:
        name = "torch"
    return dispatch.implementation("log_vandermonde_transpose", name)(u, log_x)
