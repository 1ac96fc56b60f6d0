"""RetrievalModel: one shared backbone encodes two documents; [u, v, u - v, u * v] -> MLP -> classes."""
from __future__ import annotations

from typing import Any, Optional, Sequence

import torch
from torch import nn

from .backbone import SequenceModel, pool


class RetrievalModel(nn.Module):
    """x = (x1, x2) each (B, L) tokens or (B, L, d_input), lengths = (len1, len2) or None -> logits (B, d_output)."""

    def __init__(self, d_output: int = 2, **backbone: Any):
        super().__init__()
        self.backbone = SequenceModel(d_output=d_output, **backbone)
        H = self.backbone.d_model
        self.head = nn.Sequential(nn.Linear(4 * H, H), nn.GELU(), nn.Linear(H, d_output))

    def encode(self, x: torch.Tensor, lengths: Optional[torch.Tensor], rate: float = 1.0) -> torch.Tensor:
        """One document -> pooled features (B, H)."""
        return pool(self.backbone.features(x, lengths, rate), lengths, self.backbone.pool)

    def forward(self, x: Sequence[torch.Tensor], lengths: Optional[Sequence[torch.Tensor]] = None,
                rate: float = 1.0) -> torch.Tensor:
        """x = (x1, x2), lengths = (len1, len2) or None, rate: factor on every dt -> logits (B, d_output)."""
        if not isinstance(x, (tuple, list)) or len(x) != 2:
            raise ValueError(f"x must be a pair (x1, x2) of documents, got {type(x).__name__}")
        if lengths is not None and (not isinstance(lengths, (tuple, list)) or len(lengths) != 2):
            raise ValueError(f"lengths must be None or a pair (lengths1, lengths2), one per document, got "
                             f"{type(lengths).__name__}" + (f" of shape {tuple(lengths.shape)}"
                                                            if isinstance(lengths, torch.Tensor) else ""))
        l1, l2 = lengths if lengths is not None else (None, None)
        u, v = self.encode(x[0], l1, rate), self.encode(x[1], l2, rate)
        return self.head(torch.cat([u, v, u - v, u * v], dim=-1))
