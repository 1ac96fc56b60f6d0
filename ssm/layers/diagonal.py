"""Diagonal convolutional SSMs (S4D, DSS, S4-PTD): parameters and the calls into `functional.diagonal`.

A subclass registers Lambda, B, C with `register_diagonal`; `discretize(rate) -> (log Abar, Bbar, Cbar)` with
log Abar, Bbar (H, M) and Cbar (C, H, M) complex, C = 2 directions if bidirectional. The layer computes
    x_l = Abar x_{l-1} + Bbar u_l,   y_l = s Re(sum_n Cbar_n x_l[n]) + D u_l
(s = 2 when only one of each conjugate pair is stored), with the kernel by a log-space Vandermonde product, the
final state by its transpose, and an O(H N) `step`.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import nn

from .checks import check_choice
from .conv import ConvSSM
from .functional import (METHODS, diagonal_final_state, diagonal_initial_response, diagonal_readout, diagonal_step,
                         diagonal_transfer, discretize, input_factor, log_abar, reversed_vandermonde_kernel,
                         vandermonde_kernel)
from .param import (DT_TRANSFORMS, REAL_TRANSFORMS, complex_dtype, dt_param, dt_value, real_dtype, real_param,
                    real_part, register_ssm_param, repeat_ssm)


class DiagonalSSM(ConvSSM):
    """Diagonal SSM layer (S4D, DSS, S4-PTD): kernel by Vandermonde, O(H N) `step`, exact state passing."""

    def register_diagonal(self, Lambda: torch.Tensor, B: Optional[torch.Tensor], C: torch.Tensor, dt_min: float,
                          dt_max: float, lr: Optional[float], real_transform: str = "exp", dt_transform: str = "exp",
                          discretization: str = "zoh") -> None:
        """Register the SSM parameters: Lambda (S, M) complex (S divides H), B (S, M) or None (folded), C (C, H, M)."""
        check_choice("real_transform", real_transform, REAL_TRANSFORMS)
        check_choice("dt_transform", dt_transform, DT_TRANSFORMS)
        check_choice("discretization", discretization, METHODS)
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

    def n_stored(self) -> int:
        return self.A_real.shape[-1]

    def dt(self, rate: float = 1.0, dtype: Optional[torch.dtype] = None) -> torch.Tensor:
        """Step sizes (H, 1) times `rate` (computed in `dtype`, default the layer's)."""
        return dt_value(self.inv_dt.to(dtype or self.dtype), self.dt_transform).unsqueeze(-1) * rate

    def step_sizes(self, rate: float = 1.0) -> torch.Tensor:
        """One step size per channel: (H,)."""
        return self.dt(self.check_rate(rate)).squeeze(-1)

    def Lambda(self, dtype: Optional[torch.dtype] = None) -> torch.Tensor:
        """Continuous eigenvalues (H, M) complex (from parameters in `dtype`, default the layer's)."""
        dtype = dtype or self.dtype
        A = torch.complex(real_part(self.A_real.to(dtype), self.real_transform), self.A_imag.to(dtype))
        return repeat_ssm(A, self.d_model)

    def input_matrix(self, dtype: Optional[torch.dtype] = None) -> torch.Tensor:
        """B (H, M) complex (ones when folded into C)."""
        if self.fold_B:
            return torch.ones_like(self.Lambda(dtype))
        return repeat_ssm(torch.view_as_complex(self.B.to(dtype or self.dtype)), self.d_model)

    def output_matrix(self, dtype: Optional[torch.dtype] = None) -> torch.Tensor:
        """C (C, H, M) complex."""
        return torch.view_as_complex(self.C.to(dtype or self.dtype))

    def discretize(self, rate: float = 1.0) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> log Abar (H, M), Bbar (H, M), Cbar (C, H, M) complex, in the layer's precision (formed in float64 and
        rounded once)."""
        cd = complex_dtype(self.dtype)
        return tuple(t.to(cd) for t in self._discretize_fp64(rate))

    def _discretize_fp64(self, rate: float) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        f64 = torch.float64
        A, dt = self.Lambda(f64), self.dt(rate, f64)
        _, Bbar = discretize(A, self.input_matrix(f64), dt, self.discretization)
        return log_abar(A, dt, self.discretization), Bbar, self.output_matrix(f64)

    def transfer_function(self, s: torch.Tensor, rate: float = 1.0) -> torch.Tensor:
        """Continuous-time G_h(s) = C (sI - A)^-1 B of each channel (first direction, no D): s (F,) -> (H, F)."""
        rate = self.check_rate(rate)
        A = self.Lambda()
        _, Bbar, Cbar = self.discretize(rate)
        CB = Cbar[0] * Bbar / input_factor(A, self.dt(rate), self.discretization)
        return diagonal_transfer(CB, A, s, self.conj)

    def kernel(self, L: int, rate: float = 1.0) -> torch.Tensor:
        """The convolution kernel K: (C, H, L) real, C = 2 if bidirectional else 1.

        log Abar goes to the Vandermonde product in float64 precision: the phase l * log Abar then carries no
        rounding of log Abar (complex64 would cost ~l * 6e-8 * |log Abar|, ~8e-6 relative at l = 16384)."""
        with torch.autocast(device_type=self.D.device.type, enabled=False):
            log_A, W, W_rev = self._kernel_terms_fp64(L, rate)
            cd = complex_dtype(self.dtype)
            if W_rev is None:
                K = vandermonde_kernel(W.to(cd), log_A, L, self.scale, self.backend)
            else:
                K = reversed_vandermonde_kernel(W.to(cd), W_rev.to(cd), log_A, L, self.scale, self.backend)
            return K.to(real_dtype(self.dtype))

    def _kernel_terms_fp64(self, L: int, rate: float
                           ) -> Tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
        """-> log Abar (H, M), W = Cbar Bbar (C, H, M), W_rev (C, H, M) or None for `reversed_vandermonde_kernel`."""
        log_A, Bbar, Cbar = self._discretize_fp64(rate)
        return log_A, Cbar * Bbar, None

    def initial_response(self, state: torch.Tensor, L: int, rate: float) -> torch.Tensor:
        log_A, _, Cbar = self.discretize(rate)
        return diagonal_initial_response(state, log_A, Cbar[0], L, self.scale, self.backend)

    def final_state(self, u: torch.Tensor, state: Optional[torch.Tensor], rate: float,
                    lengths: Optional[torch.Tensor]) -> torch.Tensor:
        log_A, Bbar, _ = self.discretize(rate)
        return diagonal_final_state(u, log_A, Bbar, state, lengths, self.backend)

    def step(self, x_t: torch.Tensor, state: Optional[torch.Tensor], *, rate: float = 1.0
             ) -> Tuple[torch.Tensor, torch.Tensor]:
        """x_t: (B, H), state: (B, H, M) or None (zero) -> y_t: (B, H), next state (B, H, M); O(H N) per step."""
        rate, (state,) = self.check_step(x_t, state, rate)
        log_A, Bbar, Cbar = self.discretize(rate)
        u = x_t.to(real_dtype(x_t.dtype))
        state = diagonal_step(state, u, torch.exp(log_A), Bbar)
        return self.finish_step(diagonal_readout(state, Cbar[0], self.scale), u, x_t), state
