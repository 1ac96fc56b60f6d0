"""SequenceModel: encoder -> residual blocks of a registry layer -> pooling -> decoder."""
from __future__ import annotations

import inspect
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch import nn

from ..layers import build
from ..layers.common import DropoutNd
from .norm import SequenceNorm

POOLS = ("mean", "last", "none")
ENCODERS = ("linear", "embedding", "none")


class ResidualBlock(nn.Module):
    """[norm ->] layer -> dropout -> (+ x) [-> norm]: one layer of the backbone on (B, L, H)."""

    def __init__(self, d_model: int, layer: str, layer_kwargs: Dict[str, Any], prenorm: bool = True,
                 norm: str = "layer", dropout: float = 0.0, residual: bool = True, tie_dropout: bool = True,
                 norm_momentum: float = 0.1):
        super().__init__()
        self.layer = build(layer, d_model=d_model, **layer_kwargs)
        self.norm = SequenceNorm(d_model, norm, norm_momentum)
        self.dropout = DropoutNd(dropout, tie=tie_dropout)
        self.prenorm, self.residual = prenorm, residual
        self.takes_lengths = "lengths" in inspect.signature(self.layer.forward).parameters

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None, state: Any = None,
                return_state: bool = False, lengths: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, Any]:
        """x: (B, L, H) -> (B, L, H), next state; `lengths` reaches layers that mask padding themselves."""
        z = self.norm(x, mask) if self.prenorm else x
        extra = {"lengths": lengths} if self.takes_lengths and lengths is not None else {}
        z, state = self.layer(z, state=state, return_state=return_state, **extra)
        z = self.dropout(z)
        z = z + x if self.residual else z
        return (z if self.prenorm else self.norm(z, mask)), state

    def step(self, x_t: torch.Tensor, state: Any) -> Tuple[torch.Tensor, Any]:
        """x_t: (B, H) -> (B, H), next state."""
        z = self.norm.step(x_t) if self.prenorm else x_t
        z, state = self.layer.step(z, state)
        z = z + x_t if self.residual else z
        return (z if self.prenorm else self.norm.step(z)), state


class SequenceModel(nn.Module):
    """(B, L, d_input) floats or (B, L) tokens -> (B, d_output) (pooled) or (B, L, d_output) (pool="none")."""

    def __init__(self, d_input: int = 1, d_output: int = 10, d_model: int = 128, n_layers: int = 4,
                 layer: str = "s4d", layer_kwargs: Optional[Dict[str, Any]] = None, prenorm: bool = True,
                 norm: str = "layer", dropout: float = 0.0, tie_dropout: bool = True, residual: bool = True,
                 encoder: str = "linear", vocab_size: Optional[int] = None, padding_idx: Optional[int] = None,
                 pool: str = "mean", norm_momentum: float = 0.1):
        super().__init__()
        if encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {list(ENCODERS)}, got {encoder!r}")
        if pool not in POOLS:
            raise ValueError(f"pool must be one of {list(POOLS)}, got {pool!r}")
        if encoder == "embedding" and not vocab_size:
            raise ValueError(f"vocab_size must be a positive int for encoder='embedding', got {vocab_size!r}")
        self.d_model, self.pool, self.encoder_kind = d_model, pool, encoder
        if encoder == "embedding":
            self.encoder = nn.Embedding(vocab_size, d_model, padding_idx=padding_idx)
        elif encoder == "linear":
            self.encoder = nn.Linear(d_input, d_model)
        else:
            self.encoder = nn.Identity()
        kwargs = dict(layer_kwargs or {})
        self.blocks = nn.ModuleList(
            ResidualBlock(d_model, layer, kwargs, prenorm, norm, dropout, residual, tie_dropout, norm_momentum)
            for _ in range(n_layers))
        self.final_norm = SequenceNorm(d_model, norm if prenorm else "none", norm_momentum)
        self.decoder = nn.Linear(d_model, d_output)

    def features(self, x: torch.Tensor, lengths: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The backbone output before pooling: (B, L, H)."""
        mask = _mask(lengths, x.shape[1], x.device)
        z = self.encoder(x)
        for block in self.blocks:
            z, _ = block(z, mask, lengths=lengths)
        return self.final_norm(z, mask)

    def forward(self, x: torch.Tensor, lengths: Optional[torch.Tensor] = None) -> torch.Tensor:
        """x: (B, L, d_input) or (B, L) ints, lengths: (B,) or None -> logits."""
        return self.decoder(pool(self.features(x, lengths), lengths, self.pool))

    def default_state(self, batch_size: int, device: Optional[torch.device] = None) -> List[Any]:
        """Per-block zero states for `step`."""
        return [b.layer.default_state(batch_size, device=device) for b in self.blocks]

    def step(self, x_t: torch.Tensor, state: List[Any]) -> Tuple[torch.Tensor, List[Any]]:
        """One recurrent step of the backbone: x_t (B, d_input) or (B,) ints -> features (B, H), next states."""
        z = self.encoder(x_t)
        new = []
        for block, s in zip(self.blocks, state):
            z, s = block.step(z, s)
            new.append(s)
        return self.final_norm.step(z), new


def _mask(lengths: Optional[torch.Tensor], L: int, device: torch.device) -> Optional[torch.Tensor]:
    if lengths is None:
        return None
    return torch.arange(L, device=device) < lengths.to(device).unsqueeze(-1)


def pool(z: torch.Tensor, lengths: Optional[torch.Tensor], how: str) -> torch.Tensor:
    """(B, L, H) -> (B, H) by masked mean or last valid step, or unchanged for "none"."""
    if how == "none":
        return z
    if lengths is None:
        return z.mean(1) if how == "mean" else z[:, -1]
    lengths = lengths.to(z.device)
    if how == "last":
        return z[torch.arange(z.shape[0], device=z.device), lengths - 1]
    mask = _mask(lengths, z.shape[1], z.device).unsqueeze(-1).to(z.dtype)
    return (z * mask).sum(1) / lengths.clamp(min=1).unsqueeze(-1).to(z.dtype)
