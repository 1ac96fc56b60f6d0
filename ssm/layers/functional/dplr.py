"""S4's diagonal-plus-low-rank (DPLR) SSM: A = Lambda - P Q* (here Q = P), bilinear discretization.

Kernel by Cauchy and Woodbury. The truncated generating function sum_{l<L} Ct Abar^l Bbar w^l, with the
truncation absorbed in Ct = C (I - Abar^L), is evaluated at the L roots of unity w_k and inverted by an FFT:
    K_hat(w) = 2/(1 + w) [k00 - k01 (I + k11)^-1 k10],    k_ab(w) = sum_n v_ab[n] / (g(w) - Lambda_n dt/2) dt/2,
with g(w) = (1 - w)/(1 + w), v_00 = Ct* B, v_01 = Ct* P, v_10 = Q* B, v_11 = Q* P: the resolvent of the
low-rank-corrected A by the Woodbury identity (`woodbury`), each k_ab a Cauchy sum (`ssm.kernels.cauchy`).

Step. Abar = A1 A0 with A0 = 2/dt + A and A1 = (2/dt - A)^-1 = D - D P (I + Q* D P)^-1 Q* D, D = (2/dt - Lambda)^-1
(Woodbury again), Bbar = 2 A1 B: x' = A1 (A0 x + 2 B u) costs O(N r) per channel.

States: only one of each conjugate pair is stored ("half" (..., M), M = N/2); `full` appends the conjugates.
"""
from __future__ import annotations

import math
from typing import Dict, Optional, Tuple

import torch

from ...kernels import cauchy


def full(x: torch.Tensor) -> torch.Tensor:
    """Half (..., M) -> full (..., 2M): append the conjugate of each stored state."""
    return torch.cat([x, x.conj()], dim=-1)


def re_inner(a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Full-state inner product a* x = 2 Re(sum_m conj(a_m) x_m) of half states (..., M) -> (...) real."""
    return 2 * (a.conj() * x).sum(-1).real


def woodbury(k00: torch.Tensor, k01: torch.Tensor, k10: torch.Tensor, k11: torch.Tensor) -> torch.Tensor:
    """The Woodbury identity's correction k00 - k01 (I + k11)^-1 k10 for rank r, batched over trailing dims.

    k00 (C, K, ...), k01 (C, r, ...), k10 (r, K, ...), k11 (r, r, ...) -> (C, K, ...)."""
    r = k11.shape[0]
    if r == 1:
        return k00 - k01 * k10 / (1 + k11)
    perm = lambda t: t.movedim((0, 1), (-2, -1))  # noqa: E731  (a, b, ...) -> (..., a, b)
    eye = torch.eye(r, dtype=k11.dtype, device=k11.device)
    sol = torch.linalg.solve(perm(k11) + eye, perm(k10))  # (..., r, K)
    return k00 - (perm(k01) @ sol).movedim((-2, -1), (0, 1))


def dplr_generating(b: torch.Tensor, c: torch.Tensor, Lambda: torch.Tensor, P: torch.Tensor, dt: torch.Tensor,
                    L: int, backend: Optional[str] = None) -> torch.Tensor:
    """Kernels of the truncated generating function: b (K, H, M) in the B slot, c (C, H, M) in the Ct slot,
    Lambda (H, M), P (r, H, M), dt (H, 1) -> (C, K, H, L) real, K[l] = c Abar^l Bbar(b) (with Ct's truncation)."""
    k = torch.arange(L // 2 + 1, device=Lambda.device, dtype=dt.dtype)
    omega = torch.exp(torch.complex(torch.zeros_like(k), -2 * math.pi * k / L))
    g = (1 - omega) / (1 + omega)  # the bilinear image of omega, times dt/2
    left = torch.cat([c, P.conj()], dim=0)  # (C + r, H, M): rows Ct*, Q*
    right = torch.cat([b, P], dim=0)  # (K + r, H, M): columns B, P
    v = left.unsqueeze(1) * right.unsqueeze(0)  # (C + r, K + r, H, M)
    w = (Lambda * dt / 2).expand_as(v)
    kk = cauchy(v, g, w, conj=True, backend=backend) * (dt / 2)  # resolvent terms (C + r, K + r, H, L/2 + 1)
    nc, nb = c.shape[0], b.shape[0]
    kh = woodbury(kk[:nc, :nb], kk[:nc, nb:], kk[nc:, :nb], kk[nc:, nb:]) * (2 / (1 + omega))
    return torch.fft.irfft(kh, n=L)


def dplr_kernel(Lambda: torch.Tensor, P: torch.Tensor, B: torch.Tensor, Ct: torch.Tensor, dt: torch.Tensor, L: int,
                backend: Optional[str] = None) -> torch.Tensor:
    """S4's convolution kernel from L roots of unity: Lambda, B (H, M), P (r, H, M), Ct (C, H, M) -> (C, H, L)."""
    return dplr_generating(B.unsqueeze(0), Ct, Lambda, P, dt, L, backend)[:, 0]


def C_tilde(C: torch.Tensor, Abar: torch.Tensor, L: int) -> torch.Tensor:
    """Ct = C (I - Abar^L), the output vector that absorbs the truncation of the kernel at L nodes:
    C (..., H, M) half states, Abar (H, N, N) full states -> (..., H, M)."""
    Cf = full(C)
    AL = torch.linalg.matrix_power(Abar, L)
    return (Cf - torch.einsum("...hn,hnm->...hm", Cf, AL))[..., : C.shape[-1]]


def dplr_dense(Lambda: torch.Tensor, P: torch.Tensor) -> torch.Tensor:
    """A = diag(Lambda) - P P* over full states: Lambda (H, M), P (r, H, M) -> (H, N, N)."""
    Pf = full(P)
    return torch.diag_embed(full(Lambda)) - torch.einsum("rhn,rhm->hnm", Pf, Pf.conj())


def bilinear_dplr(Lambda: torch.Tensor, P: torch.Tensor, B: torch.Tensor, dt: torch.Tensor
                  ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Dense bilinear Abar = A1 A0 (H, N, N) and Bbar = 2 A1 B (H, N) over full states in O(H N^2 r).

    Lambda, B (H, M), P (r, H, M), dt (H, 1). With D = (2/dt - Lambda)^-1, G = I + P* D P and A0 = diag(a0) - P P*
    (a0 = 2/dt + Lambda), Woodbury gives A1 = D - D P G^-1 P* D, A1 P = D P G^-1, hence
    Abar = diag(D a0) - D P G^-1 (P* D diag(a0) + P*): a diagonal plus one rank-r product."""
    lam, Pf, Bf = full(Lambda), full(P).permute(1, 2, 0), full(B)  # (H, N), (H, N, r), (H, N)
    d, a0 = 1 / (2 / dt - lam), 2 / dt + lam
    DP, PD = d.unsqueeze(-1) * Pf, Pf.mT.conj() * d.unsqueeze(-2)  # D P (H, N, r), P* D (H, r, N)
    G = torch.eye(Pf.shape[-1], dtype=Pf.dtype, device=Pf.device) + PD @ Pf  # (H, r, r)
    U = DP / G if G.shape[-1] == 1 else torch.linalg.solve(G.mT, DP.mT).mT  # D P G^-1 (H, N, r)
    V = PD * a0.unsqueeze(-2) + Pf.mT.conj()  # (H, r, N)
    Abar = torch.diag_embed(d * a0) - (U * V if U.shape[-1] == 1 else U @ V)
    Bbar = 2 * (d * Bf - (U @ (PD @ Bf.unsqueeze(-1))).squeeze(-1))
    return Abar, Bbar


# --- the O(N r) bilinear step on half states -------------------------------------------------------------------
def woodbury_setup(Lambda: torch.Tensor, P: torch.Tensor, dt: torch.Tensor) -> Dict[str, torch.Tensor]:
    """D = (2/dt - Lambda)^-1 (H, M) and G^-1 = (I + Q* D P)^-1 (H, r, r) (real on full states) for `dplr_A1`."""
    D = 1 / (2 / dt - Lambda)
    G = 2 * torch.einsum("ihm,hm,jhm->hij", P.conj(), D, P).real
    G = G + torch.eye(P.shape[0], dtype=G.dtype, device=G.device)
    return {"D": D, "G_inv": 1 / G if P.shape[0] == 1 else torch.linalg.inv(G)}


def dplr_A0(x: torch.Tensor, Lambda: torch.Tensor, P: torch.Tensor, dt: torch.Tensor) -> torch.Tensor:
    """(2/dt + A) x for half states x (..., H, M)."""
    s = re_inner(P.unsqueeze(1), x.unsqueeze(0))  # (r, ..., H)
    return (2 / dt + Lambda) * x - (P.unsqueeze(1) * s.unsqueeze(-1)).sum(0)


def dplr_A1(y: torch.Tensor, P: torch.Tensor, D: torch.Tensor, G_inv: torch.Tensor) -> torch.Tensor:
    """(2/dt - A)^-1 y = D y - D P G^-1 Q* D y (Woodbury) for half states y (B, H, M)."""
    t = re_inner(P.unsqueeze(1), (D * y).unsqueeze(0))  # (r, B, H)
    s = torch.einsum("hij,jbh->ibh", G_inv, t)
    return D * y - D * (P.unsqueeze(1) * s.unsqueeze(-1)).sum(0)


def dplr_step(x: torch.Tensor, u: torch.Tensor, Lambda: torch.Tensor, P: torch.Tensor, B: torch.Tensor,
              dt: torch.Tensor, D: torch.Tensor, G_inv: torch.Tensor) -> torch.Tensor:
    """x' = Abar x + Bbar u = A1 (A0 x + 2 B u): x (B, H, M) half states, u (B, H); D, G_inv from `woodbury_setup`."""
    return dplr_A1(dplr_A0(x, Lambda, P, dt) + 2 * B * u.unsqueeze(-1), P, D, G_inv)
