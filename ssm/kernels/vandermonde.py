"""Vandermonde kernel op: out[..., l] = sum_n v[..., n] x[..., n] ** l, in log space (S4D, DSS, S4-PTD)."""
from __future__ import annotations

from typing import Optional

import torch

from . import dispatch
from .reference import vandermonde_ref


def _probe_torch(device: torch.device) -> None:
    v = torch.ones(2, dtype=torch.complex64, device=device)
    vandermonde_ref(v, v * 0.5, 4)


dispatch.register("vandermonde", dispatch.Backend("torch", vandermonde_ref, _probe_torch, priority={"cpu": 100, "cuda": 100}))


def vandermonde(v: torch.Tensor, x: torch.Tensor, L: int, backend: Optional[str] = None) -> torch.Tensor:
    """v, x: (..., N) complex (broadcastable) -> (..., L)."""
    if not (v.is_complex() and x.is_complex()):
        raise ValueError(f"v and x must be complex, got v {v.dtype} and x {x.dtype}")
    if int(L) < 1:
        raise ValueError(f"L must be a positive integer, got {L}")
    v, x = torch.broadcast_tensors(v, x)
    return dispatch.choose("vandermonde", v.device, backend).fn(v, x, int(L))
