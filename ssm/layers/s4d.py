"""Diagonal SSM layers: S4D (Gu et al. 2022), DSS (Gupta et al. 2022) and S4-PTD (Yu et al. 2024).

All three are `DiagonalSSM`s (kernel by Vandermonde, O(N) step, exact state passing); they differ
only in the initialisation of (Lambda, B, C) and, for DSS, in how C absorbs the discretization.
"""
from __future__ import annotations

from typing import Optional, Tuple

import torch

from .. import hippo
from .checks import check_choice, check_int
from .diagonal import DiagonalSSM
from .functional import log_abar
from .param import hippo_init

S4D_INITS = ("legs", "inv", "lin", "real")
DSS_VARIANTS = ("exp", "softmax")


class S4D(DiagonalSSM):
    """S4D layer: x (B, L, H) -> (y (B, L, H), state (B, H, N/2)); inits legs/inv/lin/real, ZOH or bilinear."""

    def __init__(self, d_model: int, d_state: int = 64, *, dt_min: float = 1e-3, dt_max: float = 1e-1,
                 init: str = "legs", discretization: str = "zoh", real_transform: str = "exp",
                 dt_transform: str = "exp", fold_B: bool = False, bidirectional: bool = False,
                 activation: Optional[str] = "gelu", dropout: float = 0.0, output: str = "glu",
                 lr: Optional[float] = 1e-3, tie_dropout: bool = True, backend: Optional[str] = None):
        super().__init__(d_model, d_state, bidirectional=bidirectional, activation=activation, dropout=dropout,
                         output=output, tie_dropout=tie_dropout, backend=backend, pairs=True)
        check_choice("init", init, S4D_INITS)
        self.init = init
        lam, B = hippo.diag_init(init, d_state)  # (N/2,) complex128 each
        H, M = d_model, d_state // 2
        C = torch.randn(self.n_directions, H, M, dtype=torch.complex128)
        Bh = B.expand(H, M)
        if fold_B:
            C, Bh = C * Bh, None
        self.register_diagonal(lam.expand(H, M), Bh, C, dt_min, dt_max, lr, real_transform, dt_transform,
                               discretization)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, init={self.init!r}, discretization={self.discretization!r}"


class DSS(DiagonalSSM):
    """DSS layer: diagonal-LegS Lambda, C and B folded into W; "exp" or "softmax" kernel normalisation.

    exp:     K[l] = 2 Re sum_n W_n (exp(dt Lambda_n) - 1) / Lambda_n exp(l dt Lambda_n), Re(Lambda) < 0.
    softmax: K[l] = 2 Re sum_n W_n / Lambda_n softmax_l(l dt Lambda_n), normalised over `l_max` steps
             (at rate 1), Re(Lambda) free (states with Re > 0 enter the kernel time-reversed, so it stays
             exact in float32). With the normalisation length fixed the layer stays an exact
             linear recurrence, so `step` and state passing agree with the convolution at any length.
    W starts at C B / 2 (C, B standard complex normal): the official kernel takes Re once where this one counts
    both states of a conjugate pair (2 Re), so at L = l_max the two kernels are equal at init.
    """

    def __init__(self, d_model: int, d_state: int = 64, *, variant: str = "softmax", l_max: int = 1024,
                 dt_min: float = 1e-3, dt_max: float = 1e-1, real_transform: Optional[str] = None,
                 bidirectional: bool = False, activation: Optional[str] = "gelu", dropout: float = 0.0,
                 output: str = "glu", lr: Optional[float] = 1e-3, tie_dropout: bool = True,
                 backend: Optional[str] = None):
        super().__init__(d_model, d_state, bidirectional=bidirectional, activation=activation, dropout=dropout,
                         output=output, tie_dropout=tie_dropout, backend=backend, pairs=True)
        check_choice("variant", variant, DSS_VARIANTS)
        check_int("l_max", l_max)
        self.variant, self.l_max = variant, l_max
        lam, B = hippo.diag_init("dss", d_state)
        H, M = d_model, d_state // 2
        W = torch.randn(self.n_directions, H, M, dtype=torch.complex128) * B / 2  # 2 Re(.) of this = official Re(C B)
        transform = real_transform or ("exp" if variant == "exp" else "none")
        self.register_diagonal(lam.expand(H, M), None, W, dt_min, dt_max, lr, transform, "exp", "zoh")

    def _discretize_fp64(self, rate: float) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> log Abar = dt Lambda (H, M), Bbar = 1 (H, M), Cbar = W * normalisation (C, H, M), in float64."""
        A, dt = self.Lambda(torch.float64), self.dt(rate, torch.float64)
        if self.variant == "softmax":  # 1 / (A sum_{l < l_max} exp(l dt A))
            norm = _inv_geometric_sum(dt * A, self.l_max / rate) / A
        else:  # (exp(dt A) - 1) / A, the ZOH input factor
            norm = torch.expm1(dt * A) / A
        return log_abar(A, dt, "zoh"), torch.ones_like(A), self.output_matrix(torch.float64) * norm

    def _kernel_terms_fp64(self, L: int, rate: float
                           ) -> Tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
        """softmax: -> y = -|Re| form of dt Lambda (H, M), W, W_rev (C, H, M); states with Re(dt Lambda) > 0 in W_rev.

        For those, W_n softmax_l = W_n r(y) exp((L_max - L) y) / Lambda_n * exp((L-1-l) y) with y = -dt Lambda:
        every exponent has Re <= 0, so no huge power meets a tiny normaliser (exact at any (L-1) Re(dt Lambda))."""
        if self.variant != "softmax":
            return super()._kernel_terms_fp64(L, rate)
        A, dt = self.Lambda(torch.float64), self.dt(rate, torch.float64)
        x = log_abar(A, dt, "zoh")
        pos = x.real > 0
        y = torch.where(pos, -x, x)
        L_max = self.l_max / rate
        shift = torch.exp(torch.where(pos, (L_max - L) * y, torch.zeros_like(y)))  # 1 where Re(x) <= 0
        W = self.output_matrix(torch.float64) * (_geometric_ratio(y, L_max) * shift / A)
        zero = torch.zeros_like(W)
        return y, torch.where(pos, zero, W), torch.where(pos, W, zero)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, variant={self.variant!r}, l_max={self.l_max}"


def _inv_geometric_sum(x: torch.Tensor, L: float) -> torch.Tensor:
    """(exp(x) - 1) / (exp(L x) - 1) = 1 / sum_{l<L} exp(l x), stable for either sign of Re(x): x (...) -> (...).

    With y = -x where Re(x) > 0 (else y = x), Re(y) <= 0 and the value is r(y) exp((L-1) y) (Re(x) > 0) or r(y),
    r(y) = (exp(y) - 1) / (exp(L y) - 1). Every exponent has Re <= 0, so neither branch of the `where` overflows
    and its backward has no 0 * inf."""
    pos = x.real > 0
    y = torch.where(pos, -x, x)
    return _geometric_ratio(y, L) * torch.where(pos, torch.exp((L - 1) * y), torch.ones_like(y))


def _geometric_ratio(y: torch.Tensor, L: float) -> torch.Tensor:
    """r(y) = (exp(y) - 1) / (exp(L y) - 1) for Re(y) <= 0 (finite at y = 0): y (...) -> (...)."""
    den = torch.expm1(y * L)
    return torch.expm1(y) * den.conj() / (den.abs() ** 2 + 1e-12)


class S4PTD(DiagonalSSM):
    """S4-PTD layer: the S4D kernel (ZOH) with the perturb-then-diagonalize init of HiPPO (all N states kept).

    `init` names the HiPPO matrix that is perturbed and diagonalised (default "legs").

    Lambda (N,) = eig(A_H + E) is shared by all channels with Re(Lambda) kept negative; Bt = V^-1 B_H
    is folded into Ct = C V, so the learned output weights are W = Ct * Bt of shape (C, H, N).
    """

    conj = False

    def __init__(self, d_model: int, d_state: int = 64, *, init: str = "legs", dt_min: float = 1e-3,
                 dt_max: float = 1e-1, discretization: str = "zoh", real_transform: str = "exp",
                 dt_transform: str = "exp", bidirectional: bool = False, activation: Optional[str] = "gelu",
                 dropout: float = 0.0, output: str = "glu", lr: Optional[float] = 1e-3, tie_dropout: bool = True,
                 backend: Optional[str] = None):
        super().__init__(d_model, d_state, bidirectional=bidirectional, activation=activation, dropout=dropout,
                         output=output, tie_dropout=tie_dropout, backend=backend)
        if real_transform == "none":
            raise ValueError("real_transform must keep Re(Lambda) negative for S4-PTD (exp, relu, softplus), got 'none'")
        ptd = hippo_init(hippo.ptd, init, d_state)
        _, B = hippo.transition(init, d_state)
        Bt = ptd.V_inv.to(torch.complex128) @ B.reshape(-1).to(torch.complex128)  # (N,)
        C = torch.randn(self.n_directions, d_model, d_state, dtype=torch.float64).to(torch.complex128)
        W = (C @ ptd.V.to(torch.complex128)) * Bt
        self.init = init
        self.register_diagonal(ptd.Lambda.reshape(1, -1).to(torch.complex128), None, W, dt_min, dt_max, lr,
                               real_transform, dt_transform, discretization)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, init={self.init!r}, discretization={self.discretization!r}"
