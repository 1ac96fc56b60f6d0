"""Diagonal linear recurrence h_l = a_l * h_{l-1} + b_l (S5 and recurrent modes)."""
from __future__ import annotations

from typing import Optional

import torch

from . import dispatch
from .reference import scan_ref


def _probe_torch(device: torch.device) -> None:
    scan_ref(torch.ones(1, 2, device=device), torch.ones(3, 2, device=device))


dispatch.register("scan", dispatch.Backend("torch", scan_ref, _probe_torch, priority={"cpu": 100, "cuda": 100}))


def scan(a: torch.Tensor, b: torch.Tensor, h0: Optional[torch.Tensor] = None, reverse: bool = False,
         backend: Optional[str] = None) -> torch.Tensor:
    """b: (..., L, N), a broadcastable to b, h0: (..., N) or None -> h: (..., L, N)."""
    if b.dim() < 2:
        raise ValueError(f"b must have shape (..., L, N), got {tuple(b.shape)}")
    return dispatch.choose("scan", b.device, backend).fn(a, b, h0, reverse)
