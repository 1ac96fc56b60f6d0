"""S5: the MIMO diagonal SSM, as one step and in scan form.

    x_k = Lambda_bar * x_{k-1} + B_bar u_k,      y_k = s Re(Ct x_k) + D u_k
with x (P') complex, u, y (H) real, Lambda_bar (P',), B_bar (P', H), Ct (H, P') and s = 2 when only one of each
conjugate pair is stored (conj_sym), else 1. The scan form computes every x_k by the parallel associative scan of
(a, b) o (a', b') = (a' a, a' b + b') (`ssm.kernels.scan`).
"""
from __future__ import annotations

from typing import Optional

import torch

from ...kernels import scan


def s5_input(u: torch.Tensor, B_bar: torch.Tensor) -> torch.Tensor:
    """B_bar u: u (..., H) real, B_bar (P', H) complex -> (..., P') complex, by two real matmuls."""
    return torch.complex(u @ B_bar.real.T, u @ B_bar.imag.T)


def s5_readout(x: torch.Tensor, Ct: torch.Tensor, conj_sym: bool) -> torch.Tensor:
    """s Re(Ct x): x (..., P') complex, Ct (H_out, P') -> (..., H_out) real."""
    y = x.real @ Ct.real.T - x.imag @ Ct.imag.T
    return 2.0 * y if conj_sym else y


def s5_step(x: torch.Tensor, u: torch.Tensor, Lambda_bar: torch.Tensor, B_bar: torch.Tensor) -> torch.Tensor:
    """x' = Lambda_bar x + B_bar u: x (B, P'), u (B, H) -> (B, P')."""
    return Lambda_bar * x + s5_input(u, B_bar)


def s5_scan(Lambda_bar: torch.Tensor, B_bar: torch.Tensor, u: torch.Tensor, x0: Optional[torch.Tensor] = None,
            mask: Optional[torch.Tensor] = None, reverse: bool = False, backend: Optional[str] = None
            ) -> torch.Tensor:
    """Every state of the recurrence: u (B, L, H), x0 (B, P') or None, mask (B, L) (padded steps add no
    input) -> x (B, L, P'); `reverse` runs from the last step to the first."""
    Bu = s5_input(u, B_bar)
    if mask is not None:
        Bu = Bu * mask.unsqueeze(-1).to(u.dtype)
    return scan(Lambda_bar, Bu, x0, reverse=reverse, backend=backend)
