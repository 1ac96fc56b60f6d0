"""Convolutional SSM machinery shared by S4, S4D, DSS and S4-PTD: kernel, convolution, step and state passing.

`ConvSSM` owns what every convolutional SSM layer does the same way: input checks, kernel -> FFT
convolution (one- or two-sided), D skip, the activation/GLU output, state passing across chunks.
`DiagonalSSM` adds the diagonal state: a subclass (or `register_diagonal`) gives Lambda, B, C and
`discretize(rate) -> (dA, dB, dC)` with dA, dB of shape (H, N) and dC of shape (C, H, N), complex,
C = 2 directions if bidirectional else 1. The layer computes
    x_l = dA * x_{l-1} + dB * u_l,   y_l = s * Re(sum_n dC_n x_l[n]) + D u_l,
with s = 2 when only one of each conjugate pair is stored (`conj`), else 1, and the kernel
K[l] = s * Re(sum_n dC_n dB_n dA_n^l) by Vandermonde, applied by FFT convolution.
"""
from __future__ import annotations

import abc
import math
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..kernels import fftconv, vandermonde
from .base import SequenceLayer, check_state
from .common import OutputLayer, complex_dtype, log_dt_init, real_dtype, register_ssm_param

REAL_TRANSFORMS = ("exp", "relu", "softplus", "none")
DT_TRANSFORMS = ("exp", "softplus")
DISCRETIZATIONS = ("zoh", "bilinear")


def check_choice(name: str, value, choices) -> None:
    """Raise ValueError unless `value` is one of `choices`."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")


def real_part(p: torch.Tensor, transform: str) -> torch.Tensor:
    """Re(Lambda) from its parameter: -exp(p), -relu(p), -softplus(p) (kept negative) or -p ("none")."""
    if transform == "exp":
        return -torch.exp(p)
    if transform == "relu":
        return -F.relu(p) - 1e-4
    if transform == "softplus":
        return -F.softplus(p)
    return -p


def real_param(re: torch.Tensor, transform: str) -> torch.Tensor:
    """Inverse of `real_part`: the parameter that gives Re(Lambda) = re (re < 0 unless "none")."""
    if transform == "none":
        return -re
    mag = (-re).clamp_min(1e-4)
    if transform == "exp":
        return torch.log(mag)
    if transform == "softplus":
        return mag + torch.log(-torch.expm1(-mag))
    return mag


def dt_value(p: torch.Tensor, transform: str) -> torch.Tensor:
    """dt from its parameter: exp(p) or softplus(p)."""
    return torch.exp(p) if transform == "exp" else F.softplus(p)


def dt_param(H: int, dt_min: float, dt_max: float, transform: str) -> torch.Tensor:
    """(H,) parameter whose dt is log-uniform in [dt_min, dt_max] under `transform`."""
    log_dt = log_dt_init(H, dt_min, dt_max)
    return log_dt if transform == "exp" else torch.log(torch.expm1(torch.exp(log_dt)))


def discretize_diag(A: torch.Tensor, B: torch.Tensor, dt: torch.Tensor, kind: str) -> Tuple[torch.Tensor, torch.Tensor]:
    """ZOH or bilinear discretization of diagonal A, B (..., N) with dt (..., 1) -> dA, dB (..., N)."""
    dtA = dt * A
    if kind == "zoh":
        dA = torch.exp(dtA)
        return dA, B * torch.expm1(dtA) / A
    return (1.0 + dtA / 2) / (1.0 - dtA / 2), B * dt / (1.0 - dtA / 2)


def input_factor(A: torch.Tensor, dt: torch.Tensor, kind: str) -> torch.Tensor:
    """dB / B of a discretization: (exp(dt A) - 1) / A (ZOH) or dt / (1 - dt A / 2) (bilinear); (..., N)."""
    return torch.expm1(dt * A) / A if kind == "zoh" else dt / (1.0 - dt * A / 2)


def diagonal_transfer(CB: torch.Tensor, A: torch.Tensor, s: torch.Tensor, conj: bool) -> torch.Tensor:
    """G(s) of a diagonal SSM read out through a real part: CB, A (..., N), s (F,) -> (..., F) complex.

    conj: stored states stand for conjugate pairs (y = 2 Re(C x)), G = sum CB/(s - A) + conj(CB)/(s - conj A);
    otherwise y = Re(C x) and G is half of that."""
    s = s.to(A.dtype).reshape(-1, 1)  # (F, 1)
    G = (CB.unsqueeze(-2) / (s - A.unsqueeze(-2))).sum(-1) + (CB.conj().unsqueeze(-2) / (s - A.conj().unsqueeze(-2))).sum(-1)
    return G if conj else G / 2


def repeat_ssm(x: torch.Tensor, H: int) -> torch.Tensor:
    """(..., S, N) -> (..., H, N): channel h uses SSM copy h % S."""
    S = x.shape[-2]
    return x if S == H else x.repeat(*([1] * (x.dim() - 2)), H // S, 1)


class ConvSSM(SequenceLayer):
    """Base of convolutional SSM layers: (B, L, H) -> (B, L, H); conv mode for training, `step` for inference.

    Subclasses give `kernel(L, rate) -> (C, H, L)`, `_zero_input(state, L, rate) -> (B, H, L)` (the response
    to an initial state), `_next_state(u, state, rate)`, `step` and `default_state`.
    """

    conj: bool = True

    def __init__(self, d_model: int, d_state: int, bidirectional: bool = False, activation: Optional[str] = "gelu",
                 dropout: float = 0.0, output: str = "glu", tie_dropout: bool = True, backend: Optional[str] = None,
                 pairs: bool = False):
        super().__init__()
        if not isinstance(d_model, int) or d_model < 1:
            raise ValueError(f"d_model must be a positive int, got {d_model!r}")
        if not isinstance(d_state, int) or d_state < 1:
            raise ValueError(f"d_state must be a positive int, got {d_state!r}")
        if pairs and d_state % 2:
            raise ValueError(f"d_state must be even (conjugate pairs are stored once), got {d_state}")
        self.d_model, self.d_state, self.bidirectional, self.backend = d_model, d_state, bidirectional, backend
        self.D = nn.Parameter(torch.randn(d_model))
        self.output = OutputLayer(d_model, activation, dropout, output, tie_dropout)

    @property
    def n_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def _scale(self) -> float:
        return 2.0 if self.conj else 1.0

    @abc.abstractmethod
    def kernel(self, L: int, rate: float = 1.0) -> torch.Tensor:
        """The convolution kernel K: (C, H, L) real, C = 2 if bidirectional else 1."""

    def _check_rate(self, rate: float) -> None:
        if not (isinstance(rate, (int, float)) and math.isfinite(rate) and rate > 0):
            raise ValueError(f"rate must be a positive finite number, got {rate!r}")

    def forward(self, x: torch.Tensor, state: Optional[torch.Tensor] = None, rate: float = 1.0,
                return_state: bool = True) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """x: (B, L, H), state: (B, H, N') or None -> y: (B, L, H), next state (None if bidirectional)."""
        self.check_input(x)
        self._check_rate(rate)
        B, L, H = x.shape
        if self.bidirectional and state is not None:
            raise ValueError("state must be None for a bidirectional layer (it sees the whole sequence), got a tensor")
        if state is not None:
            check_state(state, self._state_shape(B))
        u = x.transpose(1, 2)  # (B, H, L)
        with torch.autocast(device_type=x.device.type, enabled=False):
            u = u.to(real_dtype(x.dtype))
            k = self.kernel(L, rate)
            y = fftconv(u, k if self.bidirectional else k[0], self.D.to(u.dtype), bidirectional=self.bidirectional)
            if state is not None:
                y = y + self._zero_input(state, L, rate).to(y.dtype)
            next_state = None
            if return_state and not self.bidirectional:
                next_state = self._next_state(u, state, rate)
        return self.output(y.transpose(1, 2).to(x.dtype)), next_state

    @abc.abstractmethod
    def _state_shape(self, batch_size: int) -> Tuple[int, ...]:
        """Shape of the recurrent state for a batch of `batch_size`."""

    def _check_step(self, x_t: torch.Tensor, state: torch.Tensor, rate: float) -> None:
        if self.bidirectional:
            raise ValueError("step needs a unidirectional layer (bidirectional=False), got bidirectional=True")
        self.check_step_input(x_t)
        self._check_rate(rate)
        check_state(state, self._state_shape(x_t.shape[0]))

    def default_state(self, batch_size: int, device: Optional[torch.device] = None,
                      dtype: Optional[torch.dtype] = None) -> torch.Tensor:
        """Zero state (B, H, N') complex, N' = stored state size."""
        dtype = complex_dtype(dtype or self.D.dtype)
        return torch.zeros(self._state_shape(batch_size), device=device or self.D.device, dtype=dtype)

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, d_state={self.d_state}, bidirectional={self.bidirectional}"


class DiagonalSSM(ConvSSM):
    """Diagonal SSM layer (S4D, DSS, S4-PTD): kernel by Vandermonde, O(H N) `step`, exact state passing."""

    def register_diagonal(self, Lambda: torch.Tensor, B: Optional[torch.Tensor], C: torch.Tensor, dt_min: float,
                          dt_max: float, lr: Optional[float], real_transform: str = "exp", dt_transform: str = "exp",
                          discretization: str = "zoh") -> None:
        """Register the SSM parameters: Lambda (S, M) complex (S divides H), B (S, M) or None (folded), C (C, H, M)."""
        check_choice("real_transform", real_transform, REAL_TRANSFORMS)
        check_choice("dt_transform", dt_transform, DT_TRANSFORMS)
        check_choice("discretization", discretization, DISCRETIZATIONS)
        if self.d_model % Lambda.shape[0]:
            raise ValueError(f"n_ssm must divide d_model={self.d_model}, got {Lambda.shape[0]}")
        self.real_transform, self.dt_transform, self.discretization = real_transform, dt_transform, discretization
        Lambda = Lambda.to(torch.complex64)
        register_ssm_param(self, "inv_dt", dt_param(self.d_model, dt_min, dt_max, dt_transform), lr)
        register_ssm_param(self, "A_real", real_param(Lambda.real, real_transform).clone(), lr)
        register_ssm_param(self, "A_imag", Lambda.imag.clone(), lr)
        self.fold_B = B is None
        if B is not None:
            register_ssm_param(self, "B", torch.view_as_real(B.to(torch.complex64)).clone(), lr)
        self.C = nn.Parameter(torch.view_as_real(C.to(torch.complex64)).clone())

    def dt(self, rate: float = 1.0) -> torch.Tensor:
        """Step sizes (H, 1) times `rate`."""
        return dt_value(self.inv_dt, self.dt_transform).unsqueeze(-1) * rate

    def step_sizes(self, rate: float = 1.0) -> torch.Tensor:
        """One step size per channel: (H,)."""
        return self.dt(rate).squeeze(-1)

    def transfer_function(self, s: torch.Tensor, rate: float = 1.0) -> torch.Tensor:
        """Continuous-time G_h(s) = C (sI - A)^-1 B of each channel (first direction, no D): s (F,) -> (H, F)."""
        A = self.Lambda()
        dA, dB, dC = self.discretize(rate)
        CB = dC[0] * dB / input_factor(A, self.dt(rate), self.discretization)
        return diagonal_transfer(CB, A, s, self.conj)

    def Lambda(self) -> torch.Tensor:
        """Continuous eigenvalues (H, M) complex."""
        A = torch.complex(real_part(self.A_real, self.real_transform), self.A_imag)
        return repeat_ssm(A, self.d_model)

    def discretize(self, rate: float = 1.0) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> dA (H, M), dB (H, M), dC (C, H, M) complex."""
        A = self.Lambda()
        B = torch.ones_like(A) if self.fold_B else repeat_ssm(torch.view_as_complex(self.B), self.d_model)
        dA, dB = discretize_diag(A, B, self.dt(rate), self.discretization)
        return dA, dB, torch.view_as_complex(self.C)

    def kernel(self, L: int, rate: float = 1.0) -> torch.Tensor:
        """The convolution kernel K: (C, H, L) real, C = 2 if bidirectional else 1."""
        with torch.autocast(device_type=self.D.device.type, enabled=False):
            dA, dB, dC = self.discretize(rate)
            return self._scale * vandermonde(dC * dB, dA, L, backend=self.backend).real

    def _state_shape(self, batch_size: int) -> Tuple[int, ...]:
        return (batch_size, self.d_model, self.A_real.shape[-1])

    def _zero_input(self, state: torch.Tensor, L: int, rate: float) -> torch.Tensor:
        """Response to an initial state: y_l = s Re(sum_n dC_n dA_n^(l+1) x_n); (B, H, M) -> (B, H, L)."""
        dA, _, dC = self.discretize(rate)
        return self._scale * vandermonde(dC[0] * dA * state.to(dA.dtype), dA, L, backend=self.backend).real

    def _next_state(self, u: torch.Tensor, state: Optional[torch.Tensor], rate: float) -> torch.Tensor:
        """x_{L-1} = dA^L x_{-1} + sum_l dA^(L-1-l) dB u_l; u: (B, H, L) -> (B, H, M)."""
        dA, dB, _ = self.discretize(rate)
        L = u.shape[-1]
        # powers dA^m, m = 0..L-1, contracted with the reversed input (the Vandermonde transpose)
        powers = torch.exp(torch.log(dA).unsqueeze(-1) * torch.arange(L, device=u.device, dtype=u.dtype))  # (H, M, L)
        s = torch.einsum("bhl,hnl->bhn", u.flip(-1).to(dA.dtype), powers) * dB
        if state is not None:
            s = s + state.to(dA.dtype) * powers[..., -1] * dA
        return s

    def step(self, x_t: torch.Tensor, state: torch.Tensor, rate: float = 1.0) -> Tuple[torch.Tensor, torch.Tensor]:
        """x_t: (B, H), state: (B, H, M) -> y_t: (B, H), next state (B, H, M); O(H N) per step."""
        self._check_step(x_t, state, rate)
        dA, dB, dC = self.discretize(rate)
        u = x_t.to(real_dtype(x_t.dtype))
        state = dA * state.to(dA.dtype) + dB * u.unsqueeze(-1)
        y = self._scale * (dC[0] * state).sum(-1).real + self.D.to(u.dtype) * u
        return self.output(y.to(x_t.dtype)), state
