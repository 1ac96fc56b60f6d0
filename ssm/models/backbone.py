"""SequenceModel: encoder -> residual blocks of a registry layer -> pooling -> decoder."""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

from ..layers import build
from ..layers.common import DropoutNd
from .checks import check_layer_kwargs, check_lengths, check_rate, fraction, positive_int, require
from .norm import SequenceNorm

POOLS = ("mean", "last", "none")
ENCODERS = ("linear", "embedding", "none")


def layer_call_kwargs(lengths: Optional[torch.Tensor], rate: float) -> Dict[str, Any]:
    """The contract keywords `lengths` and `rate` for a layer's forward/step, passed when they are not the defaults
    (None, 1.0), so a plain batch at the training rate calls a layer exactly as `layer(x, state)` does."""
    kwargs: Dict[str, Any] = {}
    if lengths is not None:
        kwargs["lengths"] = lengths
    if rate != 1.0:
        kwargs["rate"] = rate
    return kwargs


def masked(z: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
    """z (B, L, H) with the padded positions (mask (B, L) False) set to zero."""
    return z if mask is None else z.masked_fill(~mask.unsqueeze(-1), 0.0)


class ResidualBlock(nn.Module):
    """[norm ->] layer -> dropout -> (+ x) [-> norm]: one layer of the backbone on (B, L, H)."""

    def __init__(self, d_model: int, layer: str, layer_kwargs: Optional[Dict[str, Any]] = None, *,
                 prenorm: bool = True, norm: str = "layer", dropout: float = 0.0, residual: bool = True,
                 tie_dropout: bool = True, norm_momentum: float = 0.1):
        super().__init__()
        positive_int("d_model", d_model)
        self.layer = build(layer, d_model=d_model, **check_layer_kwargs(layer, layer_kwargs))
        self.norm = SequenceNorm(d_model, norm, norm_momentum)
        self.dropout = DropoutNd(fraction("dropout", dropout), tie=tie_dropout)
        self.prenorm, self.residual = prenorm, residual

    def forward(self, x: torch.Tensor, state: Any = None, *, mask: Optional[torch.Tensor] = None,
                lengths: Optional[torch.Tensor] = None, rate: float = 1.0,
                return_state: bool = False) -> Tuple[torch.Tensor, Any]:
        """x: (B, L, H), mask (B, L) True = valid (from `lengths`) -> (B, L, H) zero at padding, next state."""
        z = masked(self.norm(x, mask), mask) if self.prenorm else x  # LayerNorm(0) = bias: re-zero the padding
        z, state = self.layer(z, state=state, return_state=return_state, **layer_call_kwargs(lengths, rate))
        z = self.dropout(z)
        z = z + x if self.residual else z
        return masked(z if self.prenorm else self.norm(z, mask), mask), state

    def step(self, x_t: torch.Tensor, state: Any, *, rate: float = 1.0) -> Tuple[torch.Tensor, Any]:
        """x_t: (B, H) -> (B, H), next state."""
        z = self.norm.step(x_t) if self.prenorm else x_t
        z, state = self.layer.step(z, state, **layer_call_kwargs(None, rate))
        z = z + x_t if self.residual else z
        return (z if self.prenorm else self.norm.step(z)), state


class SequenceModel(nn.Module):
    """(B, L, d_input) floats or (B, L) tokens -> (B, d_output) (pooled) or (B, L, d_output) (pool="none")."""

    def __init__(self, d_input: int = 1, d_output: int = 10, d_model: int = 128, n_layers: int = 4, *,
                 layer: str = "s4d", layer_kwargs: Optional[Dict[str, Any]] = None, prenorm: bool = True,
                 norm: str = "layer", dropout: float = 0.0, tie_dropout: bool = True, residual: bool = True,
                 encoder: str = "linear", vocab_size: Optional[int] = None, padding_idx: Optional[int] = None,
                 pool: str = "mean", norm_momentum: float = 0.1):
        super().__init__()
        if encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {list(ENCODERS)}, got {encoder!r}")
        if pool not in POOLS:
            raise ValueError(f"pool must be one of {list(POOLS)}, got {pool!r}")
        for name, value in (("d_output", d_output), ("d_model", d_model), ("n_layers", n_layers)):
            positive_int(name, value)
        if encoder == "linear":
            positive_int("d_input", d_input)
        if encoder == "embedding":
            if vocab_size is None:
                raise ValueError("vocab_size must be a positive int for encoder='embedding', got None")
            positive_int("vocab_size", vocab_size)
            if padding_idx is not None and not 0 <= padding_idx < vocab_size:
                raise ValueError(f"padding_idx must be None or in [0, vocab_size={vocab_size}), got {padding_idx!r}")
        kwargs = check_layer_kwargs(layer, layer_kwargs)
        self.d_input, self.d_model, self.pool, self.encoder_kind = d_input, d_model, pool, encoder
        self.vocab_size = vocab_size if encoder == "embedding" else None
        if encoder == "embedding":
            self.encoder = nn.Embedding(vocab_size, d_model, padding_idx=padding_idx)
        elif encoder == "linear":
            self.encoder = nn.Linear(d_input, d_model)
        else:
            self.encoder = nn.Identity()
        self.blocks = nn.ModuleList(
            ResidualBlock(d_model, layer, kwargs, prenorm=prenorm, norm=norm, dropout=dropout, residual=residual,
                          tie_dropout=tie_dropout, norm_momentum=norm_momentum)
            for _ in range(n_layers))
        self.final_norm = SequenceNorm(d_model, norm if prenorm else "none", norm_momentum)
        self.decoder = nn.Linear(d_model, d_output)

    def features(self, x: torch.Tensor, lengths: Optional[torch.Tensor] = None, rate: float = 1.0) -> torch.Tensor:
        """The backbone output before pooling: (B, L, H), zero at padded positions."""
        self._check_input(x, "x", sequence=True)
        check_lengths(lengths, x.shape[0], x.shape[1], minimum=0 if self.pool == "none" else 1)
        rate = check_rate(rate)
        mask = _mask(lengths, x.shape[1], x.device)
        z = masked(self.encoder(x), mask)
        for block in self.blocks:
            z, _ = block(z, mask=mask, lengths=lengths, rate=rate)
        return masked(self.final_norm(z, mask), mask)

    def forward(self, x: torch.Tensor, lengths: Optional[torch.Tensor] = None, rate: float = 1.0) -> torch.Tensor:
        """x: (B, L, d_input) or (B, L) ints, lengths: (B,) ints or None, rate: factor on every dt -> logits
        (B, d_output), or (B, L, d_output) zero at padding for pool="none"."""
        z = self.features(x, lengths, rate)
        if self.pool == "none":
            return masked(self.decoder(z), _mask(lengths, x.shape[1], x.device))
        return self.decoder(pool(z, lengths, self.pool))

    def default_state(self, batch_size: int, device: Optional[torch.device] = None) -> List[Any]:
        """Per-block zero states for `step`."""
        return [b.layer.default_state(batch_size, device=device) for b in self.blocks]

    def step(self, x_t: torch.Tensor, state: Sequence[Any], rate: float = 1.0) -> Tuple[torch.Tensor, List[Any]]:
        """One recurrent step of the backbone: x_t (B, d_input) or (B,) ints -> features (B, H), next states."""
        self._check_input(x_t, "x_t", sequence=False)
        if not isinstance(state, (list, tuple)):
            raise TypeError(f"state must be a list with one state per block (from default_state), "
                            f"got {type(state).__name__}")
        if len(state) != len(self.blocks):
            raise ValueError(f"state must hold one state per block: {len(self.blocks)}, got {len(state)}")
        rate = check_rate(rate)
        z = self.encoder(x_t)
        new = []
        for block, s in zip(self.blocks, state):
            z, s = block.step(z, s, rate=rate)
            new.append(s)
        return self.final_norm.step(z), new

    def _check_input(self, x: Any, name: str, sequence: bool) -> None:
        """Raise unless x fits the encoder: (B, L[, d_input]) for a sequence, (B[, d_input]) for one step."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} must be a Tensor, got {type(x).__name__}")
        dims = "(batch, length" if sequence else "(batch"
        if self.encoder_kind == "embedding":
            if x.dim() != (2 if sequence else 1):
                raise ValueError(f"{name} must be token ids of shape {dims}), got shape {tuple(x.shape)}")
            if x.is_floating_point() or x.is_complex() or x.dtype == torch.bool:
                raise TypeError(f"{name} must hold int token ids for encoder='embedding', got dtype {x.dtype}")
            vocab = self.vocab_size
            require((x >= 0) & (x < vocab), lambda: f"{name} must hold token ids in [0, vocab_size={vocab}), got "
                                                    f"values from {int(x.min())} to {int(x.max())}")
            return
        width = self.d_input if self.encoder_kind == "linear" else self.d_model
        if x.dim() != (3 if sequence else 2) or x.shape[-1] != width:
            raise ValueError(f"{name} must have shape {dims}, {width}), got shape {tuple(x.shape)}")
        if not x.is_floating_point():
            raise TypeError(f"{name} must be a float tensor for encoder={self.encoder_kind!r}, got dtype {x.dtype}")


def _mask(lengths: Optional[torch.Tensor], L: int, device: torch.device) -> Optional[torch.Tensor]:
    """(B, L) bool, True at valid positions, or None without lengths."""
    if lengths is None:
        return None
    return torch.arange(L, device=device) < lengths.to(device).unsqueeze(-1)


def pool(z: torch.Tensor, lengths: Optional[torch.Tensor], how: str) -> torch.Tensor:
    """(B, L, H) -> (B, H) by masked mean or last valid step, or unchanged for "none"."""
    if how not in POOLS:
        raise ValueError(f"how must be one of {list(POOLS)}, got {how!r}")
    if how == "none":
        return z
    if lengths is None:
        return z.mean(1) if how == "mean" else z[:, -1]
    check_lengths(lengths, z.shape[0], z.shape[1], minimum=1)
    lengths = lengths.to(z.device)
    if how == "last":
        return z[torch.arange(z.shape[0], device=z.device), lengths - 1]
    mask = _mask(lengths, z.shape[1], z.device).unsqueeze(-1).to(z.dtype)
    return (z * mask).sum(1) / lengths.unsqueeze(-1).to(z.dtype)
