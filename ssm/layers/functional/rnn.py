"""Recurrent cells: the low-rank passthrough GRU and LSTM (Barone 2016) and the closed-form CfC update (Hasani 2022).

Low-rank passthrough: each gate's recurrent matrix is W = L R or L R + diag(D), applied as Q (P h) + D * h
(`lowrank_matvec`). GRU (gates [r, z, c], torch.nn.GRU's order):
    r, z = sigmoid(U x + W h + b),   c = tanh(U_c x + r * (W_c h + b_c))  [reset after, torch]
                                     c = tanh(U_c x + W_c (r * h) + b_c)  [reset before, Cho / Barone]
    h' = (1 - z) c + z h
LSTM (gates [i, f, g, o]): c' = sigmoid(f) c + sigmoid(i) tanh(g), h' = sigmoid(o) tanh(c').
CfC with head pre-activations f1, f2, a, b (from the backbone) and elapsed time ts:
    default: h' = tanh(f1) (1 - s) + s tanh(f2), s = sigmoid(a ts + b);   no_gate: h' = tanh(f1) + s tanh(f2)
    pure:    h' = -A exp(-ts (|w_tau| + |f1|)) f1 + A
The scans take the input projections of all steps at once and return every hidden state (time-major).
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import torch
from torch.nn import functional as F


def lowrank_matvec(h: torch.Tensor, P: torch.Tensor, Q: Optional[torch.Tensor], D: Optional[torch.Tensor]
                   ) -> torch.Tensor:
    """W h = Q (P h) + D * h (Q, D optional; D repeats over the stacked gates): h (..., m) -> (..., k n)."""
    a = F.linear(h, P)
    if Q is not None:
        a = F.linear(a, Q)
    if D is not None:
        a = a + h.repeat([1] * (h.dim() - 1) + [D.shape[0] // h.shape[-1]]) * D
    return a


def gru_cell(g: torch.Tensor, h: torch.Tensor, gh: torch.Tensor, bh: torch.Tensor) -> torch.Tensor:
    """One GRU update, reset after the matmul (torch.nn.GRU): input pre-activations g (B, 3n) [r, z, c], recurrent
    terms gh = W h (B, 3n), recurrent bias bh (3n,), h (B, n) -> h' (B, n)."""
    n = h.shape[1]
    gh = gh + bh
    rz = torch.sigmoid(g[:, : 2 * n] + gh[:, : 2 * n])
    c = torch.tanh(g[:, 2 * n:] + rz[:, :n] * gh[:, 2 * n:])
    z = rz[:, n:]
    return c + z * (h - c)


def gru_cell_reset_before(g: torch.Tensor, h: torch.Tensor, gh: torch.Tensor, bh: torch.Tensor, P: torch.Tensor,
                          Q: Optional[torch.Tensor], D: Optional[torch.Tensor]) -> torch.Tensor:
    """One GRU update, reset before the matmul (Cho, Barone): gh = W_[r,z] h (B, 2n); W_c = (P, Q, D) acts on r * h."""
    n = h.shape[1]
    rz = torch.sigmoid(g[:, : 2 * n] + gh + bh[: 2 * n])
    r, z = rz[:, :n], rz[:, n:]
    c = torch.tanh(g[:, 2 * n:] + lowrank_matvec(h * r, P, Q, D) + bh[2 * n:])
    return c + z * (h - c)


def gru_scan(gi: torch.Tensor, h: torch.Tensor, P1: torch.Tensor, Q1: Optional[torch.Tensor],
             D1: Optional[torch.Tensor], P2: Optional[torch.Tensor], Q2: Optional[torch.Tensor],
             D2: Optional[torch.Tensor], bh: torch.Tensor) -> torch.Tensor:
    """GRU over gi (L, B, 3n) input pre-activations from h (B, n) -> every h (L, B, n).

    (P1, Q1, D1) give the recurrent term of all 3 gates (reset after the matmul) when P2 is None, else of [r, z]
    only, with (P2, Q2, D2) applied to r * h for the candidate."""
    outs: List[torch.Tensor] = []
    for g in gi.unbind(0):  # unbind: one backward for all steps (indexing gi[t] costs O(L) each in backward)
        gh = lowrank_matvec(h, P1, Q1, D1)
        h = gru_cell(g, h, gh, bh) if P2 is None else gru_cell_reset_before(g, h, gh, bh, P2, Q2, D2)
        outs.append(h)
    return torch.stack(outs)


def lstm_cell(g: torch.Tensor, c: torch.Tensor, forget_offset: float = 0.0) -> Tuple[torch.Tensor, torch.Tensor]:
    """LSTM update from pre-activations g (B, 4n) in [i, f, g, o] order and c (B, n) -> (h', c')."""
    i, f, u, o = g.chunk(4, 1)
    c = torch.sigmoid(f + forget_offset) * c + torch.sigmoid(i) * torch.tanh(u)
    return torch.sigmoid(o) * torch.tanh(c), c


def lstm_scan(gi: torch.Tensor, h: torch.Tensor, c: torch.Tensor, P: torch.Tensor, Q: Optional[torch.Tensor],
              D: Optional[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
    """LSTM over gi (L, B, 4n) input pre-activations (both biases folded in) from (h, c) (B, n) -> every h, every c
    (L, B, n) each."""
    hs: List[torch.Tensor] = []
    cs: List[torch.Tensor] = []
    for g in gi.unbind(0):
        h, c = lstm_cell(g + lowrank_matvec(h, P, Q, D), c)
        hs.append(h)
        cs.append(c)
    return torch.stack(hs), torch.stack(cs)


def lecun_tanh(x: torch.Tensor) -> torch.Tensor:
    """1.7159 tanh(0.666 x)."""
    return 1.7159 * torch.tanh(0.666 * x)


def cfc_update(z: torch.Tensor, ts, mode: str = "default", A: Optional[torch.Tensor] = None,
               w_tau: Optional[torch.Tensor] = None) -> torch.Tensor:
    """CfC's closed-form update from head pre-activations z (B, heads * n) [f1, f2, a, b] (pure: [f1]) and elapsed
    time ts (float or (B, 1)) -> h' (B, n); `A`, `w_tau` (n,) for mode "pure"."""
    if mode == "pure":
        return -A * torch.exp(-ts * (w_tau.abs() + z.abs())) * z + A
    f1, f2, ta, tb = z.chunk(4, -1)
    f1, f2, s = torch.tanh(f1), torch.tanh(f2), torch.sigmoid(ta * ts + tb)
    return f1 + s * f2 if mode == "no_gate" else f1 * (1.0 - s) + s * f2
