"""Normalisation over channels for (B, L, H) sequences: LayerNorm, and BatchNorm masked for padding."""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn


class MaskedBatchNorm(nn.BatchNorm1d):
    """BatchNorm over channels of (B, L, H) whose batch statistics skip padded positions (mask (B, L) True = valid)."""

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """x: (B, L, H), mask: (B, L) bool or None -> (B, L, H)."""
        if mask is None or not self.training:
            return super().forward(x.transpose(1, 2)).transpose(1, 2)
        valid = x[mask]  # (n_valid, H): statistics over real tokens only
        normed = super().forward(valid)
        out = torch.zeros_like(x)
        out[mask] = normed.to(out.dtype)
        return out


class SequenceNorm(nn.Module):
    """`kind` in {"layer", "batch", "none"} applied over the channel dimension of (B, L, H)."""

    def __init__(self, d_model: int, kind: str = "layer", momentum: float = 0.1):
        super().__init__()
        if kind not in ("layer", "batch", "none"):
            raise ValueError(f"norm must be one of ['layer', 'batch', 'none'], got {kind!r}")
        self.kind = kind
        if kind == "layer":
            self.norm = nn.LayerNorm(d_model)
        elif kind == "batch":
            self.norm = MaskedBatchNorm(d_model, momentum=momentum)
        else:
            self.norm = nn.Identity()

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """x: (B, L, H) -> (B, L, H)."""
        return self.norm(x, mask) if self.kind == "batch" else self.norm(x)

    def step(self, x_t: torch.Tensor) -> torch.Tensor:
        """x_t: (B, H) -> (B, H) (BatchNorm uses its running statistics)."""
        if self.kind == "batch":
            return nn.functional.batch_norm(x_t, self.norm.running_mean, self.norm.running_var, self.norm.weight,
                                            self.norm.bias, False, 0.0, self.norm.eps)
        return self.norm(x_t)
