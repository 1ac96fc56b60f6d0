"""The diagonal SSM (S4D, DSS, S4-PTD) in closed form: kernel, final state, response to an initial state, G(s).

With Abar = exp(log_Abar) diagonal, per channel and state n:
    x_l = Abar x_{l-1} + Bbar u_l,      y_l = s Re(sum_n C_n x_l[n])
(s = 2 when only one of each conjugate pair of states is stored, else 1). Unrolled:
    kernel           K[l] = s Re sum_n C_n Bbar_n Abar_n^l                       (Vandermonde)
                          = s Re sum_n C_n Bbar_n Abar_n^(L-1) (1/Abar_n)^(L-1-l) (reversed; for |Abar_n| > 1)
    final state      x_{L-1} = sum_l Abar^(L-1-l) Bbar u_l + Abar^L x_{-1}        (transposed Vandermonde)
    initial response y_l = s Re sum_n C_n Abar_n^(l+1) x_{-1}[n]
The powers are formed from log(Abar) by `ssm.kernels.log_vandermonde[_transpose]`, never from a rounded Abar, so
complex64 kernels stay accurate at long L; no (H, N, L) tensor is formed here.
"""
from __future__ import annotations

from typing import Optional

import torch

from ...kernels import log_vandermonde, log_vandermonde_transpose
from ..masking import reverse_valid


def vandermonde_kernel(W: torch.Tensor, log_Abar: torch.Tensor, L: int, scale: float = 2.0,
                       backend: Optional[str] = None) -> torch.Tensor:
    """K[l] = scale * Re sum_n W_n exp(l log_Abar_n); W = C Bbar (..., H, N), log_Abar (H, N) -> (..., H, L) real."""
    return scale * log_vandermonde(W, log_Abar, L, backend=backend).real


def reversed_vandermonde_kernel(W: torch.Tensor, W_rev: torch.Tensor, log_Abar: torch.Tensor, L: int,
                                scale: float = 2.0, backend: Optional[str] = None) -> torch.Tensor:
    """K[l] = scale * Re sum_n (W_n exp(l log_Abar_n) + W_rev_n exp((L-1-l) log_Abar_n)): W, W_rev (..., H, N),
    log_Abar (H, N) -> (..., H, L) real. One Vandermonde product over both; the W_rev half is read backwards in time,
    so growing states (Re > 0) can be passed as decaying ones (Re <= 0) whose coefficient holds exp((L-1) Re)."""
    K = log_vandermonde(torch.stack([W, W_rev]), log_Abar, L, backend=backend)
    return scale * (K[0] + K[1].flip(-1)).real


def diagonal_final_state(u: torch.Tensor, log_Abar: torch.Tensor, Bbar: torch.Tensor,
                         x0: Optional[torch.Tensor] = None, lengths: Optional[torch.Tensor] = None,
                         backend: Optional[str] = None) -> torch.Tensor:
    """The state after each example's last valid input: u (B, H, L) real, log_Abar, Bbar (H, N), x0 (B, H, N) or None,
    lengths (B,) or None -> (B, H, N) = sum_j Abar^j Bbar u_(n-1-j) + Abar^n x0 with n = length (or L)."""
    ur = reverse_valid(u, lengths)  # ur[j] = u[n - 1 - j], zero for j >= n
    x = log_vandermonde_transpose(ur, log_Abar, backend=backend) * Bbar
    if x0 is None:
        return x
    n = u.new_full((u.shape[0],), u.shape[-1]) if lengths is None else lengths.to(u.dtype)
    return x + x0.to(x.dtype) * torch.exp(n.reshape(-1, 1, 1) * log_Abar)


def diagonal_initial_response(x0: torch.Tensor, log_Abar: torch.Tensor, C: torch.Tensor, L: int, scale: float = 2.0,
                              backend: Optional[str] = None) -> torch.Tensor:
    """y_l = scale * Re sum_n C_n Abar_n^(l+1) x0_n: x0 (B, H, N), log_Abar, C (H, N) -> (B, H, L) real."""
    v = C * torch.exp(log_Abar) * x0.to(C.dtype)
    return scale * log_vandermonde(v, log_Abar, L, backend=backend).real


def diagonal_step(x: torch.Tensor, u: torch.Tensor, Abar: torch.Tensor, Bbar: torch.Tensor) -> torch.Tensor:
    """One step x' = Abar x + Bbar u: x (B, H, N), u (B, H) real, Abar, Bbar (H, N) -> (B, H, N)."""
    return Abar * x + Bbar * u.unsqueeze(-1)


def diagonal_readout(x: torch.Tensor, C: torch.Tensor, scale: float = 2.0) -> torch.Tensor:
    """y = scale * Re sum_n C_n x_n: x (B, H, N), C (H, N) -> (B, H) real."""
    return scale * (C * x).sum(-1).real


def diagonal_transfer(CB: torch.Tensor, Lambda: torch.Tensor, s: torch.Tensor, conj: bool) -> torch.Tensor:
    """Continuous-time G(s) = sum_n CB_n / (s - Lambda_n) of a diagonal SSM read out through a real part.

    CB, Lambda (..., N), s (F,) -> (..., F) complex. conj: stored states stand for conjugate pairs
    (y = 2 Re(C x)), G = sum CB/(s - Lambda) + conj(CB)/(s - conj Lambda); otherwise y = Re(C x) and G is half that.
    """
    s = s.to(Lambda.dtype).reshape(-1, 1)  # (F, 1)
    G = (CB.unsqueeze(-2) / (s - Lambda.unsqueeze(-2))).sum(-1)
    G = G + (CB.conj().unsqueeze(-2) / (s - Lambda.conj().unsqueeze(-2))).sum(-1)
    return G if conj else G / 2
