"""Output pieces shared by the layers: pointwise activations, dropout tied over time, the GLU output block."""
from __future__ import annotations

from functools import partial
from typing import Optional

import torch
from torch import nn

ACTIVATIONS = {
    "gelu": nn.GELU,
    "gelu_tanh": partial(nn.GELU, approximate="tanh"),  # the tanh approximation (JAX's default, the S5 code's)
    "silu": nn.SiLU,
    "swish": nn.SiLU,
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "identity": nn.Identity,
    None: nn.Identity,
}


def activation(name: Optional[str]) -> nn.Module:
    """The activation module called `name` (gelu, gelu_tanh, silu, swish, relu, tanh, sigmoid, identity, None)."""
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(k for k in ACTIVATIONS if k)} or None, got {name!r}")
    return ACTIVATIONS[name]()


class DropoutNd(nn.Module):
    """Dropout on (B, L, H) with one mask per (batch, channel) shared over time when `tie`."""

    def __init__(self, p: float = 0.0, tie: bool = True):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {p}")
        self.p, self.tie = p, tie

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, L, H) or (B, H) -> same shape."""
        if not self.training or self.p == 0.0:
            return x
        shape = (x.shape[0], 1, x.shape[-1]) if self.tie and x.dim() == 3 else x.shape
        mask = torch.rand(shape, device=x.device) >= self.p
        return x * mask.to(x.dtype) / (1.0 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}, tie={self.tie}"


class OutputLayer(nn.Module):
    """activation -> tied dropout -> Linear(H, 2H) + GLU ("glu"), Linear(H, H) ("linear") or nothing ("none")."""

    def __init__(self, d_model: int, activation_name: Optional[str] = "gelu", dropout: float = 0.0,
                 output: str = "glu", tie_dropout: bool = True):
        super().__init__()
        if output not in ("glu", "linear", "none"):
            raise ValueError(f"output must be one of ['glu', 'linear', 'none'], got {output!r}")
        self.activation = activation(activation_name)
        self.dropout = DropoutNd(dropout, tie=tie_dropout)
        self.kind = output
        if output == "glu":
            self.linear = nn.Linear(d_model, 2 * d_model)
        elif output == "linear":
            self.linear = nn.Linear(d_model, d_model)
        else:
            self.linear = nn.Identity()

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """y: (..., H) -> (..., H)."""
        y = self.linear(self.dropout(self.activation(y)))
        return nn.functional.glu(y, dim=-1) if self.kind == "glu" else y
