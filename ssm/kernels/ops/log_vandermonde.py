"""Log-space Vandermonde kernel: out[..., l] = sum_n v[..., n] exp(l log_x[..., n]) (S4D, DSS, S4-PTD kernels).

exp(0 * log_x) = 1 for every log_x (x^0 = 1, also at x = 0, i.e. log_x = -inf). The phase l * log_x is formed in
float64 by every backend, so complex64 results stay accurate for long L and |x| near 1.

Backend primitives (ext, keops, triton), on rows v (R, N), lx (Rx, N) complex128 with R % Rx == 0:
  vandermonde_fwd(v, lx, L) -> (R, L): sum_n v exp(l lx)
  vandermonde_bwd(g, lx) -> G0, G1 (R, N): sum_l g_l exp(l lx), sum_l l g_l exp(l lx)
  vandermonde_transpose(u, lx, weighted) -> (R, N): sum_l u_l exp(l lx) (times l if weighted), u (R, L) real
With G = vandermonde_bwd(g, conj lx): grad v = G0, grad log_x = conj(v) G1 (PyTorch's convention).
"""
from __future__ import annotations

from typing import Optional

import torch
from torch.autograd.function import once_differentiable

from .. import dispatch
from ._common import (as_rows, backend_name, batch_shape, complex_dtype, fold_rows, integer,
                      same_device, tensor)


def log_powers(log_x: torch.Tensor, L: int) -> torch.Tensor:
    """exp(l log_x) for l < L in complex128: (..., N) -> (..., N, L); the l = 0 column is exactly 1."""
    l = torch.arange(L, device=log_x.device, dtype=torch.float64)
    phase = torch.where(l > 0, log_x.to(torch.complex128).unsqueeze(-1) * l, 0)
    return torch.exp(phase)


def log_vandermonde_ref(v: torch.Tensor, log_x: torch.Tensor, L: int) -> torch.Tensor:
    """The definition, materialising (..., N, L) powers in complex128: v, log_x (..., N) broadcastable -> (..., L)."""
    dtype = complex_dtype(v, log_x)
    return (v.to(dtype).unsqueeze(-2) @ log_powers(log_x, L).to(dtype)).squeeze(-2)


class _LogVandermonde(torch.autograd.Function):
    """Forward and backward through the primitives of one backend."""

    @staticmethod
    def forward(ctx, v, log_x, L: int, backend: str):  # v (R, N), log_x (Rx, N)
        lx = log_x.to(torch.complex128)
        ctx.save_for_backward(v, lx)
        ctx.backend, ctx.dtype = backend, log_x.dtype
        return dispatch.loaded(backend, v.device.type).vandermonde_fwd(v, lx, L)

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        v, lx = ctx.saved_tensors
        G0, G1 = dispatch.loaded(ctx.backend, v.device.type).vandermonde_bwd(g.contiguous(), lx.conj().resolve_conj())
        gv = G0 if ctx.needs_input_grad[0] else None
        glx = fold_rows(v.conj() * G1, lx.shape[0]).to(ctx.dtype) if ctx.needs_input_grad[1] else None
        return gv, glx, None, None


def run(backend: str, v: torch.Tensor, log_x: torch.Tensor, L: int) -> torch.Tensor:
    """log_vandermonde through `backend`'s primitives; shapes as `log_vandermonde`."""
    v2, lx2, shape = as_rows(v, log_x)
    return _LogVandermonde.apply(v2, lx2, L, backend).reshape(*shape, L)


def probe_case(device: torch.device):
    """A tiny complex128 (v, log_x, L) case with |x| < 1."""
    gen = torch.Generator().manual_seed(0)
    f = lambda *s: torch.randn(*s, generator=gen, dtype=torch.float64)  # noqa: E731
    log_x = torch.complex(-0.1 * f(3, 4).abs(), f(3, 4))
    return (torch.complex(f(2, 3, 4), f(2, 3, 4)).to(device), log_x.to(device), 70), (0, 1)


dispatch.register_op(dispatch.OpSpec("log_vandermonde", log_vandermonde_ref, run, probe_case,
                                     {"torch": log_vandermonde_ref}))


def log_vandermonde(v: torch.Tensor, log_x: torch.Tensor, L: int, backend: Optional[str] = None) -> torch.Tensor:
    """v, log_x: (..., N) broadcastable (e.g. v (C, H, N) with log_x (H, N)) -> (..., L) complex."""
    v, log_x = tensor("v", v, 1, "(..., N)"), tensor("log_x", log_x, 1, "(..., N)")
    L = integer("L", L, 1)
    backend_name(backend)
    device = same_device(v=v, log_x=log_x)
    shape = batch_shape("v", v, "log_x", log_x)
    dtype = complex_dtype(v, log_x)
    v, log_x = v.to(dtype), log_x.to(dtype)
    name = dispatch.select("log_vandermonde", device.type, backend)
    if shape.numel() == 0 or v.shape[-1] == 0:
        name = "torch"
    return dispatch.implementation("log_vandermonde", name)(v, log_x, L)
