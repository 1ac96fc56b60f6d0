"""Convolutional SSM layers (S4, S4D, DSS, S4-PTD): the kernel applied by FFT, the D skip and the output block.

A subclass gives `kernel(L, rate) -> (C, H, L)` (C = 2 directions if bidirectional), the response to an initial
state, the final state and `step`; `ConvSSM.forward` does the rest the same way for all of them:
    u = x masked beyond each example's length,  y = K * u + D u (+ initial-state response),
    out = output(y) masked beyond each example's length,  next_state = the state at each example's length.
Padding is zeroed before the convolution, so neither the causal nor the anti-causal kernel sees it.
"""
from __future__ import annotations

import abc
from typing import Optional, Tuple

from einops import rearrange
import torch
from torch import nn

from ..kernels import fftconv
from .base import SequenceLayer
from .checks import check_int
from .common import OutputLayer
from .masking import valid_mask
from .param import complex_dtype, real_dtype


class ConvSSM(SequenceLayer):
    """Base of convolutional SSM layers: (B, L, H) -> (B, L, H); conv mode for training, `step` for inference."""

    conj: bool = True  # one of each conjugate pair of states stored: y = 2 Re(C x)

    def __init__(self, d_model: int, d_state: int, *, bidirectional: bool = False,
                 activation: Optional[str] = "gelu", dropout: float = 0.0, output: str = "glu",
                 tie_dropout: bool = True, backend: Optional[str] = None, pairs: bool = False):
        super().__init__()
        check_int("d_model", d_model)
        check_int("d_state", d_state)
        if pairs and d_state % 2:
            raise ValueError(f"d_state must be even (conjugate pairs are stored once), got {d_state}")
        self.d_model, self.d_state, self.bidirectional, self.backend = d_model, d_state, bool(bidirectional), backend
        self.D = nn.Parameter(torch.randn(d_model))
        self.output = OutputLayer(d_model, activation, dropout, output, tie_dropout)

    @property
    def n_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def scale(self) -> float:
        """s in y = s Re(C x): 2 when conjugate pairs are stored once, else 1."""
        return 2.0 if self.conj else 1.0

    def _ref(self) -> torch.Tensor:
        return self.D

    def state_dtype(self, dtype: Optional[torch.dtype] = None) -> torch.dtype:
        return complex_dtype(dtype or self.dtype)

    @abc.abstractmethod
    def n_stored(self) -> int:
        """Stored complex states per channel (N/2 for conjugate pairs, else N)."""

    def state_shapes(self, batch_size: int) -> Tuple[Tuple[int, ...], ...]:
        return ((batch_size, self.d_model, self.n_stored()),)

    @abc.abstractmethod
    def kernel(self, L: int, rate: float = 1.0) -> torch.Tensor:
        """The convolution kernel K: (C, H, L) real, C = 2 if bidirectional else 1."""

    @abc.abstractmethod
    def initial_response(self, state: torch.Tensor, L: int, rate: float) -> torch.Tensor:
        """The output of the SSM started from `state` with zero input: (B, H, N') -> (B, H, L)."""

    @abc.abstractmethod
    def final_state(self, u: torch.Tensor, state: Optional[torch.Tensor], rate: float,
                    lengths: Optional[torch.Tensor]) -> torch.Tensor:
        """The state after each example's last valid input: u (B, H, L) -> (B, H, N')."""

    def forward(self, x: torch.Tensor, state: Optional[torch.Tensor] = None, *, rate: float = 1.0,
                lengths: Optional[torch.Tensor] = None, return_state: bool = True
                ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """x: (B, L, H), state: (B, H, N') or None, lengths: (B,) or None -> y (B, L, H), next state (None if
        bidirectional or not return_state)."""
        rate, lengths, parts = self.check_forward(x, state, rate, lengths)
        if x.shape[0] == 0:
            return self.empty_output(x, return_state)
        state = None if parts is None else parts[0]
        L = x.shape[1]
        mask = None if lengths is None else valid_mask(lengths, L)
        with torch.autocast(device_type=x.device.type, enabled=False):
            u = rearrange(x, "b l h -> b h l").to(real_dtype(x.dtype))
            if mask is not None:
                u = u * mask.unsqueeze(1).to(u.dtype)
            k = self.kernel(L, rate)
            y = fftconv(u, k if self.bidirectional else k[0], self.D.to(u.dtype), bidirectional=self.bidirectional)
            if state is not None:
                y = y + self.initial_response(state, L, rate).to(y.dtype)
            next_state = None
            if return_state and not self.bidirectional:
                next_state = self.final_state(u, state, rate, lengths)
        y = self.output(rearrange(y, "b h l -> b l h").to(x.dtype))
        if mask is not None:
            y = y * mask.unsqueeze(-1).to(y.dtype)
        return y, next_state

    def finish_step(self, y: torch.Tensor, u: torch.Tensor, x_t: torch.Tensor) -> torch.Tensor:
        """y + D u through the output block: y, u (B, H) real -> (B, H) in x_t's dtype."""
        return self.output((y + self.D.to(u.dtype) * u).to(x_t.dtype))

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, d_state={self.d_state}, bidirectional={self.bidirectional}"
