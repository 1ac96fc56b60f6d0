"""S4D: diagonal state-space layer with its kernel by Vandermonde (Gu et al. 2022)."""
from __future__ import annotations

import math
from typing import Optional, Tuple

import torch

from .common import log_dt_init, register_ssm_param
from .diagonal import DiagonalSSM


def s4d_lambda(init: str, N: int) -> torch.Tensor:
    """Diagonal init of N/2 eigenvalues (one per conjugate pair): "lin" or "inv" -> (N/2,) complex128."""
    n = torch.arange(N // 2, dtype=torch.float64)
    if init == "lin":
        imag = math.pi * n
    elif init == "inv":
        imag = (N / math.pi) * (N / (2 * n + 1) - 1)
    else:
        raise ValueError(f"init must be one of ['lin', 'inv'], got {init!r}")
    return torch.complex(torch.full_like(n, -0.5), imag)


class S4D(DiagonalSSM):
    """S4D layer: x (B, L, H) -> (y (B, L, H), state (B, H, N/2)); ZOH or bilinear, S4D-Lin/Inv init."""

    def __init__(self, d_model: int, d_state: int = 64, dt_min: float = 1e-3, dt_max: float = 1e-1,
                 init: str = "lin", discretization: str = "zoh", bidirectional: bool = False,
                 activation: Optional[str] = "gelu", dropout: float = 0.0, output: str = "glu",
                 lr: Optional[float] = 1e-3, tie_dropout: bool = True, backend: Optional[str] = None):
        super().__init__(d_model, d_state, bidirectional, activation, dropout, output, tie_dropout, backend)
        if d_state % 2:
            raise ValueError(f"d_state must be even (conjugate pairs are stored once), got {d_state}")
        if discretization not in ("zoh", "bilinear"):
            raise ValueError(f"discretization must be 'zoh' or 'bilinear', got {discretization!r}")
        self.discretization = discretization
        H, N2 = d_model, d_state // 2
        lam = s4d_lambda(init, d_state).to(torch.complex64).expand(H, N2)
        register_ssm_param(self, "log_dt", log_dt_init(H, dt_min, dt_max), lr)
        register_ssm_param(self, "log_A_real", torch.log(-lam.real).clone(), lr)
        register_ssm_param(self, "A_imag", lam.imag.clone(), lr)
        register_ssm_param(self, "B", torch.view_as_real(torch.ones(H, N2, dtype=torch.cfloat)).clone(), lr)
        C = torch.randn(self.n_directions, H, N2, dtype=torch.cfloat)
        self.C = torch.nn.Parameter(torch.view_as_real(C).clone())

    def discretize(self, rate: float = 1.0) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> dA (H, N/2), dB (H, N/2), dC (C, H, N/2) complex."""
        dt = torch.exp(self.log_dt).unsqueeze(-1) * rate  # (H, 1)
        A = torch.complex(-torch.exp(self.log_A_real), self.A_imag)
        B, C = torch.view_as_complex(self.B), torch.view_as_complex(self.C)
        dtA = dt * A
        if self.discretization == "zoh":
            dA = torch.exp(dtA)
            dB = B * (dA - 1.0) / A
        else:
            dA = (1.0 + dtA / 2) / (1.0 - dtA / 2)
            dB = B * dt / (1.0 - dtA / 2)
        return dA, dB, C
