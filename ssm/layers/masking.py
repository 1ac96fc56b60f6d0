"""Per-example lengths: positions at or beyond an example's length are padding that no layer may see."""
from __future__ import annotations

from typing import Optional

import torch


def valid_mask(lengths: torch.Tensor, L: int) -> torch.Tensor:
    """lengths (B,) -> (B, L) bool, True where position l < length."""
    return torch.arange(L, device=lengths.device) < lengths.unsqueeze(-1)


def _take(u: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """out[b, ..., j] = u[b, ..., idx[b, j]] where 0 <= idx < L, else 0: u (B, ..., L), idx (B, L)."""
    L = u.shape[-1]
    shape = (idx.shape[0],) + (1,) * (u.dim() - 2) + (L,)
    keep = ((idx >= 0) & (idx < L)).reshape(shape).to(u.dtype)
    return torch.gather(u, -1, idx.clamp(0, L - 1).reshape(shape).expand(u.shape)) * keep


def reverse_valid(u: torch.Tensor, lengths: Optional[torch.Tensor]) -> torch.Tensor:
    """Reverse each example's valid prefix along the last dim: u (B, ..., L) -> ur with ur[..., j] = u[..., len - 1 - j]
    for j < len and 0 beyond (u.flip(-1) when lengths is None)."""
    if lengths is None:
        return u.flip(-1)
    return _take(u, lengths.unsqueeze(-1) - 1 - torch.arange(u.shape[-1], device=u.device))


def align_right(u: torch.Tensor, lengths: Optional[torch.Tensor]) -> torch.Tensor:
    """Move each example's valid prefix to the end of the last dim, zeros in front: u (B, ..., L) -> ua with
    ua[..., L - len + j] = u[..., j] for j < len (u itself when lengths is None)."""
    if lengths is None:
        return u
    L = u.shape[-1]
    return _take(u, torch.arange(L, device=u.device) - (L - lengths.unsqueeze(-1)))


def gather_last(xs: torch.Tensor, lengths: Optional[torch.Tensor], initial: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """The entry at position length - 1 along `dim` of xs (B first), or `initial` where length is 0.

    xs: (B, ..., L, ...) with the time axis at `dim`; initial: xs with that axis removed."""
    if lengths is None:
        return xs.select(dim, -1)
    L = xs.shape[dim]
    idx = (lengths - 1).clamp(0, L - 1)
    shape = [xs.shape[0]] + [1] * (xs.dim() - 1)
    shape[dim] = 1
    picked = torch.gather(xs, dim, idx.reshape(shape).expand(*xs.shape[:dim], 1, *xs.shape[dim + 1:])).squeeze(dim)
    empty = (lengths == 0).reshape([-1] + [1] * (picked.dim() - 1))
    return torch.where(empty, initial.to(picked.dtype), picked)
