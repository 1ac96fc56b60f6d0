"""Diagonal SSM layer machinery shared by S4D, DSS and S4-PTD: kernel, convolution, step and state passing.

A subclass defines `discretize(rate) -> (dA, dB, dC)`: dA, dB of shape (H, N) and dC of shape (C, H, N),
complex, with C = 2 directions if bidirectional else 1. The layer computes
    x_l = dA * x_{l-1} + dB * u_l,   y_l = s * Re(sum_n dC_n x_l[n]) + D u_l,
with s = 2 when only one of each conjugate pair is stored (`conj`), else 1, and the kernel
K[l] = s * Re(sum_n dC_n dB_n dA_n^l) by Vandermonde, applied by FFT convolution.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import nn

from ..kernels import fftconv, vandermonde
from .base import SequenceLayer, check_state
from .common import OutputLayer, complex_dtype, real_dtype


class DiagonalSSM(SequenceLayer):
    """Base of diagonal SSM layers: (B, L, H) -> (B, L, H), conv mode for training, `step` for inference."""

    conj: bool = True

    def __init__(self, d_model: int, d_state: int, bidirectional: bool = False, activation: Optional[str] = "gelu",
                 dropout: float = 0.0, output: str = "glu", tie_dropout: bool = True, backend: Optional[str] = None):
        super().__init__()
        if not isinstance(d_model, int) or d_model < 1:
            raise ValueError(f"d_model must be a positive int, got {d_model!r}")
        if not isinstance(d_state, int) or d_state < 1:
            raise ValueError(f"d_state must be a positive int, got {d_state!r}")
        self.d_model, self.d_state, self.bidirectional, self.backend = d_model, d_state, bidirectional, backend
        self.D = nn.Parameter(torch.randn(d_model))
        self.output = OutputLayer(d_model, activation, dropout, output, tie_dropout)

    # --- the one thing subclasses provide -------------------------------------------------------
    def discretize(self, rate: float = 1.0) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # pragma: no cover
        """-> dA (H, N), dB (H, N), dC (C, H, N) complex."""
        raise NotImplementedError

    @property
    def n_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def _scale(self) -> float:
        return 2.0 if self.conj else 1.0

    def kernel(self, L: int, rate: float = 1.0) -> torch.Tensor:
        """The convolution kernel K: (C, H, L) real, C = 2 if bidirectional else 1."""
        with torch.autocast(device_type=self.D.device.type, enabled=False):
            dA, dB, dC = self.discretize(rate)
            return self._scale * vandermonde(dC * dB, dA, L, backend=self.backend).real

    def forward(self, x: torch.Tensor, state: Optional[torch.Tensor] = None, rate: float = 1.0,
                return_state: bool = True) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """x: (B, L, H), state: (B, H, N) or None -> y: (B, L, H), next state (B, H, N) (None if bidirectional)."""
        self.check_input(x)
        B, L, H = x.shape
        if self.bidirectional and state is not None:
            raise ValueError("state must be None for a bidirectional layer (it sees the whole sequence), got a tensor")
        u = x.transpose(1, 2)  # (B, H, L)
        with torch.autocast(device_type=x.device.type, enabled=False):
            u = u.to(real_dtype(x.dtype))
            k = self.kernel(L, rate)
            y = fftconv(u, k if self.bidirectional else k[0], self.D.to(u.dtype), bidirectional=self.bidirectional)
            next_state = None
            if state is not None or (return_state and not self.bidirectional):
                dA, dB, dC = self.discretize(rate)
                if state is not None:
                    check_state(state, (B, H, dA.shape[-1]))
                    state = state.to(dA.dtype)
                    y = y + self._scale * vandermonde(dC[0] * dA * state, dA, L, backend=self.backend).real
                if return_state:
                    next_state = self._next_state(u, dA, dB, state)
        return self.output(y.transpose(1, 2).to(x.dtype)), next_state

    def _next_state(self, u: torch.Tensor, dA: torch.Tensor, dB: torch.Tensor,
                    state: Optional[torch.Tensor]) -> torch.Tensor:
        """x_{L-1} = dA^L x_{-1} + sum_l dA^(L-1-l) dB u_l; u: (B, H, L) -> (B, H, N)."""
        L = u.shape[-1]
        powers = torch.exp(torch.log(dA).unsqueeze(-1) * torch.arange(L, device=u.device, dtype=u.dtype))  # (H, N, L)
        s = torch.einsum("bhl,hnl->bhn", u.flip(-1).to(dA.dtype), powers) * dB
        if state is not None:
            s = s + state * powers[..., -1] * dA
        return s

    def step(self, x_t: torch.Tensor, state: torch.Tensor, rate: float = 1.0) -> Tuple[torch.Tensor, torch.Tensor]:
        """x_t: (B, H), state: (B, H, N) -> y_t: (B, H), next state (B, H, N); O(H N) per step."""
        if self.bidirectional:
            raise ValueError("step needs a unidirectional layer (bidirectional=False), got bidirectional=True")
        self.check_step_input(x_t)
        dA, dB, dC = self.discretize(rate)
        check_state(state, (x_t.shape[0], self.d_model, dA.shape[-1]))
        u = x_t.to(real_dtype(x_t.dtype))
        state = dA * state.to(dA.dtype) + dB * u.unsqueeze(-1)
        y = self._scale * (dC[0] * state).sum(-1).real + self.D.to(u.dtype) * u
        return self.output(y.to(x_t.dtype)), state

    def default_state(self, batch_size: int, device: Optional[torch.device] = None,
                      dtype: Optional[torch.dtype] = None) -> torch.Tensor:
        """Zero state (B, H, N) complex."""
        dtype = complex_dtype(dtype or self.D.dtype)
        dA, _, _ = self.discretize()
        return torch.zeros(batch_size, self.d_model, dA.shape[-1], device=device or self.D.device, dtype=dtype)

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, d_state={self.d_state}, bidirectional={self.bidirectional}"
