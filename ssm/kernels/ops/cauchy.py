"""Cauchy kernel: out[..., l] = sum_n v[..., n] / (z[l] - w[..., n]) (S4's DPLR generating function).

Backend primitives (ext, keops, triton), on rows v (R, N), w (Rw, N) with R % Rw == 0, z (L,):
  cauchy_fwd(v, z, w, conj, power) -> (R, L): sum_n v / (z - w)^power (+ conj(v) / (z - conj w)^power if conj)
  cauchy_bwd(g, z, w, conj) -> S1, S2 (R, N) with zeta = conj z:
      S1 = sum_l g / (zeta - conj w) [+ conj(sum_l g / (zeta - w))], S2 the same with squared denominators;
  then grad v = S1, grad w = conj(v) S2, grad z = -sum_rows g conj(cauchy_fwd(power=2)) (PyTorch's convention
  grad = dLoss/d conj(input)).
"""
from __future__ import annotations

from typing import Optional

import torch
from torch.autograd.function import once_differentiable

from .. import dispatch
from ._common import (as_rows, backend_name, batch_shape, complex_dtype, flag, fold_rows, same_device,
                      tensor)


def cauchy_ref(v: torch.Tensor, z: torch.Tensor, w: torch.Tensor, conj: bool = False) -> torch.Tensor:
    """The definition, materialising (..., N, L): v, w (..., N) broadcastable, z (L,) -> (..., L)."""
    r = v.unsqueeze(-1) / (z - w.unsqueeze(-1))
    if conj:
        r = r + v.conj().unsqueeze(-1) / (z - w.conj().unsqueeze(-1))
    return r.sum(dim=-2)


class _Cauchy(torch.autograd.Function):
    """Forward and fused backward through the primitives of one backend."""

    @staticmethod
    def forward(ctx, v, z, w, conj: bool, backend: str):  # v (R, N), z (L,), w (Rw, N)
        ctx.save_for_backward(v, z, w)
        ctx.conj, ctx.backend = conj, backend
        return dispatch.loaded(backend, v.device.type).cauchy_fwd(v, z, w, conj, 1)

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        v, z, w = ctx.saved_tensors
        impl = dispatch.loaded(ctx.backend, v.device.type)
        g = g.contiguous()
        gv = gz = gw = None
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[2]:
            s1, s2 = impl.cauchy_bwd(g, z, w, ctx.conj)
            gv = s1 if ctx.needs_input_grad[0] else None
            gw = fold_rows(v.conj() * s2, w.shape[0]) if ctx.needs_input_grad[2] else None
        if ctx.needs_input_grad[1]:
            gz = -(g * impl.cauchy_fwd(v, z, w, ctx.conj, 2).conj()).sum(0)
        return gv, gz, gw, None, None


def run(backend: str, v: torch.Tensor, z: torch.Tensor, w: torch.Tensor, conj: bool = False) -> torch.Tensor:
    """Cauchy through `backend`'s primitives; shapes as `cauchy`."""
    v2, w2, shape = as_rows(v, w)
    return _Cauchy.apply(v2, z.contiguous(), w2, conj, backend).reshape(*shape, z.shape[0])


def _probe_case(device: torch.device):
    gen = torch.Generator().manual_seed(0)
    c = lambda *s: torch.complex(*(torch.randn(*s, generator=gen, dtype=torch.float64) for _ in "ri"))  # noqa: E731
    z = 1j * torch.linspace(-2, 2, 5, dtype=torch.float64) + 0.1
    return tuple(t.to(device) if isinstance(t, torch.Tensor) else t for t in (c(2, 3, 4), z, c(3, 4) - 2.0, True)), (0, 1, 2)


dispatch.register_op(dispatch.OpSpec("cauchy", cauchy_ref, run, _probe_case, {"torch": cauchy_ref}))


def cauchy(v: torch.Tensor, z: torch.Tensor, w: torch.Tensor, conj: bool = False,
           backend: Optional[str] = None) -> torch.Tensor:
    """v, w: (..., N) broadcastable, z: (L,) -> (..., L) complex; `conj` adds the conjugate of each (v, w) pair."""
    v, w = tensor("v", v, 1, "(..., N)"), tensor("w", w, 1, "(..., N)")
    z = tensor("z", z, 1, "(L,)")
    if z.dim() != 1:
        raise ValueError(f"z must be 1-D (L,), got shape {tuple(z.shape)}")
    flag("conj", conj)
    backend_name(backend)
    device = same_device(v=v, z=z, w=w)
    shape = batch_shape("v", v, "w", w)
    dtype = complex_dtype(v, z, w)
    v, z, w = v.to(dtype), z.to(dtype), w.to(dtype)
    name = dispatch.select("cauchy", device.type, backend)
    if shape.numel() == 0 or v.shape[-1] == 0 or z.shape[0] == 0:
        name = "torch"  # empty: the reference's sums are exact and keep autograd
    return dispatch.implementation("cauchy", name)(v, z, w, conj)
