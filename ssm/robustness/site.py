"""Where input perturbations act: the model's float input, or the encoder output (embeddings) for token input."""
from __future__ import annotations

from typing import Any, List, Optional, Sequence

import torch
from torch import nn


def embedding_encoder(model: nn.Module) -> nn.Embedding:
    """The first nn.Embedding of `model` (the token encoder)."""
    for m in model.modules():
        if isinstance(m, nn.Embedding):
            return m
    raise ValueError("token inputs need a model with an nn.Embedding encoder, found none")


class InputSite:
    """The tensors (B, L, C) that perturbations replace for one batch: `values` (clean) and `logits(values)`.

    Float inputs are perturbed as they are. Token inputs are perturbed after the embedding: a forward hook on
    the encoder returns the given values in place of its output (once per document for a pair input).
    `model(x, lengths)` must return logits (SequenceLightningModule, SequenceModel, RetrievalModel)."""

    def __init__(self, model: nn.Module, x: Any, lengths: Optional[Any] = None):
        self.model, self.x, self.lengths = model, x, lengths
        self.pair = isinstance(x, (tuple, list))
        xs = list(x) if self.pair else [x]
        self.tokens = not xs[0].is_floating_point()
        self.encoder = embedding_encoder(model) if self.tokens else None
        with torch.no_grad():
            self.values: List[torch.Tensor] = [self.encoder(t) if self.tokens else t for t in xs]

    def logits(self, values: Sequence[torch.Tensor]) -> torch.Tensor:
        """The model's output with the site tensors replaced by `values` (same shapes as `self.values`)."""
        if len(values) != len(self.values):
            raise ValueError(f"values must hold {len(self.values)} tensors, got {len(values)}")
        if not self.tokens:
            return self.model(tuple(values) if self.pair else values[0], self.lengths)
        feed = iter(values)
        handle = self.encoder.register_forward_hook(lambda module, args, out: next(feed))
        try:
            return self.model(self.x, self.lengths)
        finally:
            handle.remove()
