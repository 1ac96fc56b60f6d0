"""Discretization of x'(t) = A x + B u with step dt: zero-order hold and bilinear (Tustin).

    ZOH:      Abar = exp(dt A),                      Bbar = A^-1 (exp(dt A) - I) B
    bilinear: Abar = (I - dt/2 A)^-1 (I + dt/2 A),   Bbar = (I - dt/2 A)^-1 dt B

`zoh`, `bilinear` and `discretize` take a diagonal A given by its eigenvalues Lambda (elementwise, any
broadcastable shapes); `discretize_dense` takes full matrices. `log_abar` gives log(Abar) for the diagonal case,
the exponent of the log-space Vandermonde kernels (Abar^l = exp(l log Abar), never rounding Abar first).
"""
from __future__ import annotations

from typing import Tuple

import torch

METHODS = ("zoh", "bilinear")


def zoh(Lambda: torch.Tensor, B: torch.Tensor, dt: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Diagonal ZOH: Lambda, B, dt broadcastable (..., N) -> Abar = exp(dt Lambda), Bbar = (Abar - 1) / Lambda * B."""
    dtA = dt * Lambda
    return torch.exp(dtA), B * torch.expm1(dtA) / Lambda


def bilinear(Lambda: torch.Tensor, B: torch.Tensor, dt: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Diagonal bilinear: -> Abar = (1 + dt Lambda / 2) / (1 - dt Lambda / 2), Bbar = dt B / (1 - dt Lambda / 2)."""
    half = dt * Lambda / 2
    return (1.0 + half) / (1.0 - half), B * dt / (1.0 - half)


def discretize(Lambda: torch.Tensor, B: torch.Tensor, dt: torch.Tensor, method: str = "zoh"
               ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Diagonal discretization by `method` ("zoh" or "bilinear"): (..., N) -> Abar, Bbar (..., N)."""
    return zoh(Lambda, B, dt) if method == "zoh" else bilinear(Lambda, B, dt)


def log_abar(Lambda: torch.Tensor, dt: torch.Tensor, method: str = "zoh") -> torch.Tensor:
    """log(Abar) of a diagonal discretization: dt Lambda (ZOH) or log(1 + dt Lambda/2) - log(1 - dt Lambda/2)."""
    dtA = dt * Lambda
    if method == "zoh":
        return dtA
    return torch.log1p(dtA / 2) - torch.log1p(-dtA / 2)


def input_factor(Lambda: torch.Tensor, dt: torch.Tensor, method: str = "zoh") -> torch.Tensor:
    """Bbar / B of a diagonal discretization: (exp(dt Lambda) - 1) / Lambda (ZOH) or dt / (1 - dt Lambda / 2)."""
    return torch.expm1(dt * Lambda) / Lambda if method == "zoh" else dt / (1.0 - dt * Lambda / 2)


def discretize_dense(A: torch.Tensor, B: torch.Tensor, dt: torch.Tensor, method: str = "zoh"
                     ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Dense discretization: A (..., N, N), B (..., N), dt (...) -> Abar (..., N, N), Bbar (..., N)."""
    dt = dt[..., None, None]
    eye = torch.eye(A.shape[-1], dtype=A.dtype, device=A.device)
    if method == "zoh":
        Abar = torch.linalg.matrix_exp(dt * A)
        return Abar, torch.linalg.solve(A, ((Abar - eye) @ B.unsqueeze(-1))).squeeze(-1)
    Abar = torch.linalg.solve(eye - dt / 2 * A, eye + dt / 2 * A)
    return Abar, torch.linalg.solve(eye - dt / 2 * A, dt[..., 0] * B)
