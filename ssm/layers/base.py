"""The sequence-layer contract shared by every SSM and RNN layer: (B, L, H) in, (y, state) out."""
from __future__ import annotations

import abc
from typing import Any, Optional, Tuple

import torch
from torch import nn


class SequenceLayer(nn.Module, metaclass=abc.ABCMeta):
    """Base class: subclasses implement `forward(x, state=None)`, `step(x_t, state)`, `default_state(B)`."""

    d_model: int

    @abc.abstractmethod
    def forward(self, x: torch.Tensor, state: Any = None) -> Tuple[torch.Tensor, Any]:
        """x: (B, L, H) -> (y: (B, L, H), next_state)."""

    @abc.abstractmethod
    def step(self, x_t: torch.Tensor, state: Any) -> Tuple[torch.Tensor, Any]:
        """x_t: (B, H) -> (y_t: (B, H), next_state)."""

    @abc.abstractmethod
    def default_state(self, batch_size: int, device: Optional[torch.device] = None,
                      dtype: Optional[torch.dtype] = None) -> Any:
        """The zero state for a batch of `batch_size`."""

    def check_input(self, x: torch.Tensor, name: str = "x") -> None:
        """Raise ValueError unless x is a finite floating (B, L, d_model) tensor."""
        check_sequence(x, self.d_model, name)

    def check_step_input(self, x_t: torch.Tensor, name: str = "x_t") -> None:
        """Raise ValueError unless x_t is a floating (B, d_model) tensor."""
        if not isinstance(x_t, torch.Tensor) or x_t.dim() != 2 or x_t.shape[-1] != self.d_model:
            raise ValueError(f"{name} must have shape (batch, d_model={self.d_model}), got {_shape(x_t)}")
        if not x_t.is_floating_point():
            raise ValueError(f"{name} must be a floating tensor, got dtype {x_t.dtype}")

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}"


def check_sequence(x: torch.Tensor, width: int, name: str = "x") -> None:
    """Raise ValueError unless x is a finite floating (B, L, width) tensor with L >= 1."""
    if not isinstance(x, torch.Tensor) or x.dim() != 3:
        raise ValueError(f"{name} must have shape (batch, length, d_model={width}), got {_shape(x)}")
    if x.shape[-1] != width:
        raise ValueError(f"{name} must have last dimension d_model={width}, got shape {tuple(x.shape)}")
    if x.shape[1] < 1:
        raise ValueError(f"{name} must have length >= 1, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating tensor, got dtype {x.dtype}")
    if not torch.jit.is_tracing() and not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} must be finite, got NaN or inf values")


def check_state(state: torch.Tensor, expected: Tuple[int, ...], name: str = "state") -> None:
    """Raise ValueError unless `state` has shape `expected`."""
    if not isinstance(state, torch.Tensor) or tuple(state.shape) != tuple(expected):
        raise ValueError(f"{name} must have shape {tuple(expected)}, got {_shape(state)}")


def _shape(x: Any) -> str:
    return str(tuple(x.shape)) if isinstance(x, torch.Tensor) else type(x).__name__
