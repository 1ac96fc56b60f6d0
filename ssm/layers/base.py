"""The sequence-layer contract shared by every SSM and RNN layer: (B, L, H) in, (y, state) out.

    forward(x, state=None, *, rate=1.0, lengths=None, return_state=True) -> (y, next_state)
    step(x_t, state, *, rate=1.0) -> (y_t, next_state)
    default_state(batch_size, device=None, dtype=None)

`SequenceLayer` owns what every layer does the same way: argument checks (`ssm.layers.checks`), the state's
structure (`state_shapes`), zero states, and empty batches.
"""
from __future__ import annotations

import abc
from typing import Any, Optional, Tuple

import torch
from torch import nn

from .checks import (check_batch_size, check_lengths, check_rate, check_sequence, check_state, check_state_dtype,
                     check_step_input)

State = Any


class SequenceLayer(nn.Module, metaclass=abc.ABCMeta):
    """Base class: subclasses implement `forward`, `step` and `state_shapes`; the state is a tensor, or a tuple of
    tensors when `state_tuple`."""

    d_model: int
    state_tuple: bool = False
    bidirectional: bool = False

    @abc.abstractmethod
    def forward(self, x: torch.Tensor, state: State = None, *, rate: float = 1.0,
                lengths: Optional[torch.Tensor] = None, return_state: bool = True) -> Tuple[torch.Tensor, State]:
        """x: (B, L, H) -> (y: (B, L, d_output), next_state); positions >= lengths are padding (output 0)."""

    @abc.abstractmethod
    def step(self, x_t: torch.Tensor, state: State, *, rate: float = 1.0) -> Tuple[torch.Tensor, State]:
        """x_t: (B, H) -> (y_t: (B, d_output), next_state)."""

    @abc.abstractmethod
    def state_shapes(self, batch_size: int) -> Tuple[Tuple[int, ...], ...]:
        """The shape of each tensor of the state for a batch of `batch_size`."""

    # --- the state ------------------------------------------------------------------------------------------
    @property
    def d_output(self) -> int:
        """Width of y (d_model unless a layer projects elsewhere)."""
        return self.d_model

    @property
    def dtype(self) -> torch.dtype:
        """The layer's floating dtype (inputs must match it, except low precision under autocast)."""
        return self._ref().dtype

    def _ref(self) -> torch.Tensor:
        return next(self.parameters())

    def state_dtype(self, dtype: Optional[torch.dtype] = None) -> torch.dtype:
        """The state's dtype for a layer (or input) of floating dtype `dtype` (default: the layer's)."""
        return dtype or self.dtype

    def default_state(self, batch_size: int, device: Optional[torch.device] = None,
                      dtype: Optional[torch.dtype] = None) -> State:
        """Zero state for a batch of `batch_size` (tensor, or tuple of tensors)."""
        check_batch_size(batch_size)
        check_state_dtype(dtype)
        dt, dev = self.state_dtype(dtype), device or self._ref().device
        zs = tuple(torch.zeros(s, device=dev, dtype=dt) for s in self.state_shapes(batch_size))
        return zs if self.state_tuple else zs[0]

    def check_state(self, state: State, batch_size: int, device: torch.device) -> Tuple[torch.Tensor, ...]:
        """Validate `state` against `state_shapes` and the layer's state dtype -> its tensors as a tuple."""
        shapes = self.state_shapes(batch_size)
        if self.state_tuple:
            if not isinstance(state, (tuple, list)) or len(state) != len(shapes):
                got = f"{type(state).__name__} of length {len(state)}" if isinstance(state, (tuple, list)) else \
                    type(state).__name__
                raise TypeError(f"state must be a tuple of {len(shapes)} tensors (as default_state gives), got {got}")
            parts = tuple(state)
        else:
            parts = (state,)
        for i, (part, shape) in enumerate(zip(parts, shapes)):
            check_state(part, shape, self.state_dtype(), device, "state" if len(shapes) == 1 else f"state[{i}]")
        return parts

    # --- argument checks of forward and step ------------------------------------------------------------------
    def check_rate(self, rate: Any) -> float:
        """`rate` multiplies every step size dt: a positive finite number."""
        return check_rate(rate)

    def check_forward(self, x: Any, state: State, rate: Any, lengths: Any
                      ) -> Tuple[float, Optional[torch.Tensor], Optional[Tuple[torch.Tensor, ...]]]:
        """Validate forward's arguments -> (rate, lengths on x's device or None, state tensors or None)."""
        check_sequence(x, self.d_model, self.dtype)
        rate = self.check_rate(rate)
        B, L, _ = x.shape
        lengths = check_lengths(lengths, B, L, x.device)
        if state is None:
            return rate, lengths, None
        if self.bidirectional:
            raise ValueError(f"state must be None for a bidirectional layer (it sees the whole sequence), "
                             f"got {type(state).__name__}")
        return rate, lengths, self.check_state(state, B, x.device)

    def check_step(self, x_t: Any, state: State, rate: Any) -> Tuple[float, Tuple[torch.Tensor, ...]]:
        """Validate step's arguments (state None means the zero state) -> (rate, state tensors)."""
        if self.bidirectional:
            raise ValueError("step needs a unidirectional layer (bidirectional=False), got bidirectional=True")
        check_step_input(x_t, self.d_model, self.dtype)
        rate = self.check_rate(rate)
        if state is None:
            state = self.default_state(x_t.shape[0], x_t.device)
        return rate, self.check_state(state, x_t.shape[0], x_t.device)

    def pack_state(self, parts: Tuple[torch.Tensor, ...]) -> State:
        """State tensors -> the layer's state (tuple or single tensor)."""
        return tuple(parts) if self.state_tuple else parts[0]

    def empty_output(self, x: torch.Tensor, return_state: bool) -> Tuple[torch.Tensor, State]:
        """The result for an empty batch (B = 0): y (0, L, d_output) and a (0, ...) state."""
        y = x.new_zeros(0, x.shape[1], self.d_output) + x.sum() * 0  # keeps y in x's graph
        state = self.default_state(0, x.device) if return_state and not self.bidirectional else None
        return y, state

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}"
