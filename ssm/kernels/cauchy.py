"""Cauchy kernel op: out[..., l] = sum_n v[..., n] / (z[l] - w[..., n]) (S4's DPLR generating function)."""
from __future__ import annotations

from typing import Optional

import torch

from . import dispatch
from .reference import cauchy_ref


def _probe_torch(device: torch.device) -> None:
    v = torch.ones(2, dtype=torch.complex64, device=device)
    cauchy_ref(v, torch.ones(3, dtype=torch.complex64, device=device) * 2, v * 1j)


dispatch.register("cauchy", dispatch.Backend("torch", cauchy_ref, _probe_torch, priority={"cpu": 100, "cuda": 100}))


def cauchy(v: torch.Tensor, z: torch.Tensor, w: torch.Tensor, conj: bool = False, backend: Optional[str] = None) -> torch.Tensor:
    """v, w: (..., N) complex, z: (L,) complex -> (..., L); `conj` adds the conjugate of each (v, w) pair."""
    if v.shape != w.shape:
        raise ValueError(f"v and w must have the same shape, got v {tuple(v.shape)} and w {tuple(w.shape)}")
    if z.dim() != 1:
        raise ValueError(f"z must be 1-D (L,), got shape {tuple(z.shape)}")
    return dispatch.choose("cauchy", v.device, backend).fn(v, z, w, conj)
