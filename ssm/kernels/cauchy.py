"""Cauchy kernel op: out[..., l] = sum_n v[..., n] / (z[l] - w[..., n]) (S4's DPLR generating function)."""
from __future__ import annotations

from typing import Optional

import torch
from torch.autograd.function import once_differentiable

from . import dispatch
from ._rows import as_rows, fold_rows, register_backends
from .reference import cauchy_ref


class _Cauchy(torch.autograd.Function):
    """Forward/backward through a backend module's primitives `cauchy_fwd` and `cauchy_bwd` on rows."""

    @staticmethod
    def forward(ctx, v, z, w, conj, impl):  # v (R, N), z (L,), w (Rw, N)
        ctx.save_for_backward(v, z, w)
        ctx.conj, ctx.impl = conj, impl
        return impl.cauchy_fwd(v, z, w, conj, 1)

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        v, z, w = ctx.saved_tensors
        g = g.contiguous()
        gv = gz = gw = None
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[2]:
            # PyTorch's convention grad = dLoss/d conj(input): gv = S1, gw = conj(v) S2
            s1, s2 = ctx.impl.cauchy_bwd(g, z, w, ctx.conj)
            gv = s1 if ctx.needs_input_grad[0] else None
            gw = fold_rows(v.conj() * s2, w.shape[0]) if ctx.needs_input_grad[2] else None
        if ctx.needs_input_grad[1]:  # d out / dz = -sum_n v / (z - w)^2 (+ pairs)
            gz = -(g * ctx.impl.cauchy_fwd(v, z, w, ctx.conj, 2).conj()).sum(0)
        return gv, gz, gw, None, None


def apply(impl, v: torch.Tensor, z: torch.Tensor, w: torch.Tensor, conj: bool = False) -> torch.Tensor:
    """Differentiable Cauchy through backend module `impl` (ext, keops, triton_kernels); shapes as `cauchy`."""
    v2, w2, shape = as_rows(v, w)
    out = _Cauchy.apply(v2.contiguous(), z.contiguous(), w2.contiguous(), conj, impl)
    return out.reshape(*shape, z.shape[-1])


def _inputs(device: torch.device) -> tuple:
    gen = torch.Generator().manual_seed(0)
    c = lambda *s: torch.complex(*(torch.randn(*s, generator=gen, dtype=torch.float64) for _ in "ri")).to(device)  # noqa: E731
    w = c(3, 4) - 2.0
    return c(2, 3, 4), (1j * torch.linspace(-2, 2, 5, dtype=torch.float64) + 0.1).to(device), w, True


register_backends("cauchy", cauchy_ref, apply, _inputs)


def _complex(*ts: torch.Tensor) -> torch.dtype:
    dtype = torch.complex64
    for t in ts:
        dtype = torch.promote_types(dtype, t.dtype)
    return dtype if dtype.is_complex else torch.complex128


def cauchy(v: torch.Tensor, z: torch.Tensor, w: torch.Tensor, conj: bool = False, backend: Optional[str] = None) -> torch.Tensor:
    """v, w: (..., N) broadcastable, z: (L,) -> (..., L); `conj` adds the conjugate of each (v, w) pair."""
    if v.shape[-1:] != w.shape[-1:]:
        raise ValueError(f"v and w must have the same last dim N, got v {tuple(v.shape)} and w {tuple(w.shape)}")
    try:
        torch.broadcast_shapes(v.shape, w.shape)
    except RuntimeError:
        raise ValueError(f"v and w must be broadcastable, got v {tuple(v.shape)} and w {tuple(w.shape)}") from None
    if z.dim() != 1:
        raise ValueError(f"z must be 1-D (L,), got shape {tuple(z.shape)}")
    dtype = _complex(v, z, w)
    v, z, w = v.to(dtype), z.to(dtype), w.to(dtype)
    return dispatch.choose("cauchy", v.device, backend).fn(v, z, w, conj)
