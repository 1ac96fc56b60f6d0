"""S4: the diagonal-plus-low-rank (DPLR) state-space layer with its kernel by Cauchy + Woodbury (Gu et al. 2022).

State matrix A = Lambda - P Q* (Q = P) in the HiPPO eigenbasis, one of each conjugate pair of the N
states stored (M = N/2), bilinear discretization Abar = A1 A0 with A0 = 2/dt + A, A1 = (2/dt - A)^-1,
Bbar = 2 A1 B. The learned output weights are Ct = C (I - Abar^l_kernel) (they absorb the truncation of
the generating function); the kernel is K[l] = C Abar^l Bbar for l < l_kernel, computed from the
generating function at the roots of unity (REFERENCE.md section 3) and an inverse FFT.

discretization="zoh" is also offered, exactly but densely: exp(dt (Lambda - P P*)) is not DPLR, so its
kernel comes from Krylov powers of the dense N x N Abar (O(H N^2 L)) and its step is a dense O(N^2)
product: a reference for comparisons, not the fast path.
"""
from __future__ import annotations

import math
from typing import Dict, Optional, Tuple

import torch
from torch import nn

from .. import hippo
from ..kernels import cauchy
from .common import register_ssm_param
from .diagonal import (DT_TRANSFORMS, REAL_TRANSFORMS, ConvSSM, check_choice, dt_param, dt_value, real_param,
                       real_part, repeat_ssm)

Params = Dict[str, torch.Tensor]


def full(x: torch.Tensor) -> torch.Tensor:
    """Half (..., M) -> full (..., 2M): append the conjugate of each stored state."""
    return torch.cat([x, x.conj()], dim=-1)


def re_inner(a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Full-state inner product a* x = 2 Re(sum_m conj(a_m) x_m) over the last dim (real)."""
    return 2 * (a.conj() * x).sum(-1).real


class S4(ConvSSM):
    """S4 layer: x (B, L, H) -> (y (B, L, H), state (B, H, N/2)); DPLR kernel by Cauchy, O(N) bilinear `step`."""

    def __init__(self, d_model: int, d_state: int = 64, l_max: int = 1024, n_ssm: Optional[int] = 1, rank: int = 1,
                 init: str = "legs", dt_min: float = 1e-3, dt_max: float = 1e-1, dt_transform: str = "softplus",
                 real_transform: str = "exp", discretization: str = "bilinear", bidirectional: bool = False,
                 activation: Optional[str] = "gelu", dropout: float = 0.0, output: str = "glu",
                 lr: Optional[float] = 1e-3, tie_dropout: bool = True, backend: Optional[str] = None):
        super().__init__(d_model, d_state, bidirectional, activation, dropout, output, tie_dropout, backend, pairs=True)
        check_choice("discretization", discretization, ("bilinear", "zoh"))
        check_choice("dt_transform", dt_transform, DT_TRANSFORMS)
        check_choice("real_transform", real_transform, REAL_TRANSFORMS)
        n_ssm = d_model if n_ssm is None else n_ssm
        if not isinstance(n_ssm, int) or n_ssm < 1 or d_model % n_ssm:
            raise ValueError(f"n_ssm must be a positive divisor of d_model={d_model} (or None), got {n_ssm!r}")
        if not isinstance(l_max, int) or l_max < 1:
            raise ValueError(f"l_max must be a positive int, got {l_max!r}")
        self.discretization, self.dt_transform, self.real_transform = discretization, dt_transform, real_transform
        self.init, self.n_ssm, self.rank = init, n_ssm, rank
        M = d_state // 2
        Lambda, P, B, _ = hippo.nplr(init, d_state, rank=rank)
        lam = Lambda[:M].to(torch.complex64).expand(n_ssm, M)
        P = P.reshape(rank, d_state)[:, :M].to(torch.complex64).unsqueeze(1).expand(rank, n_ssm, M)
        B = B.reshape(-1)[:M].to(torch.complex64).expand(n_ssm, M)
        register_ssm_param(self, "inv_dt", dt_param(d_model, dt_min, dt_max, dt_transform), lr)
        register_ssm_param(self, "A_real", real_param(lam.real, real_transform).clone(), lr)
        register_ssm_param(self, "A_imag", lam.imag.clone(), lr)
        register_ssm_param(self, "P", torch.view_as_real(P).clone(), lr)
        register_ssm_param(self, "B", torch.view_as_real(B).clone(), lr)
        C = torch.randn(self.n_directions, d_model, M, dtype=torch.complex64)
        self.C = nn.Parameter(torch.view_as_real(C).clone())  # Ct = C (I - Abar^l_kernel)
        self.register_buffer("l_kernel", torch.tensor(l_max))
        self._cache: Tuple[Optional[tuple], Optional[tuple]] = (None, None)

    # --- parameters -----------------------------------------------------------------------------
    def ssm_params(self, rate: float = 1.0) -> Params:
        """dt (H, 1), Lambda (H, M), P (r, H, M), B (H, M), Ct (C, H, M): the continuous DPLR SSM at `rate`."""
        H = self.d_model
        return {
            "dt": dt_value(self.inv_dt, self.dt_transform).unsqueeze(-1) * rate,
            "Lambda": repeat_ssm(torch.complex(real_part(self.A_real, self.real_transform), self.A_imag), H),
            "P": repeat_ssm(torch.view_as_complex(self.P), H),
            "B": repeat_ssm(torch.view_as_complex(self.B), H),
            "Ct": torch.view_as_complex(self.C),
        }

    def step_sizes(self, rate: float = 1.0) -> torch.Tensor:
        """One step size per channel: (H,)."""
        return dt_value(self.inv_dt, self.dt_transform) * rate

    def transfer_function(self, s: torch.Tensor, rate: float = 1.0) -> torch.Tensor:
        """Continuous-time G_h(s) = C (sI - Lambda + P P*)^-1 B per channel (first direction, no D), by Woodbury
        over the full states: s (F,) -> (H, F)."""
        p = self.ssm_params(rate)
        C = self.dense(rate, p)[2][0]  # (H, N): the output vector with the kernel truncation undone
        lam, P, B = full(p["Lambda"]), full(p["P"]), full(p["B"])
        R = 1 / (s.to(lam.dtype).reshape(-1, 1, 1) - lam)  # (F, H, N)
        CRB = (C * R * B).sum(-1)  # (F, H)
        CRP = torch.einsum("hn,fhn,rhn->fhr", C, R, P)
        PRB = torch.einsum("rhn,fhn,hn->fhr", P.conj(), R, B)
        PRP = torch.einsum("ihn,fhn,jhn->fhij", P.conj(), R, P) + torch.eye(P.shape[0], dtype=R.dtype)
        G = CRB - (CRP.unsqueeze(-2) @ torch.linalg.solve(PRP, PRB.unsqueeze(-1))).squeeze(-1).squeeze(-1)
        return G.T

    def kernel_length(self, L: int, rate: float = 1.0) -> int:
        """The number of roots of unity used at `rate` (>= L; doubles l_kernel in place when L is longer)."""
        while round(int(self.l_kernel) / rate) < L:
            self.double_length()
        return max(1, round(int(self.l_kernel) / rate))

    # --- dense matrices (full N states): setup of `step`, length doubling, tests ----------------
    def dense(self, rate: float = 1.0, p: Optional[Params] = None) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Abar (H, N, N), Bbar (H, N), C (C, H, N) of the discrete SSM at `rate` (full complex states)."""
        p = p or self.ssm_params(rate)
        Abar, Bbar = self._discrete_dense(p)
        eye = torch.eye(Abar.shape[-1], dtype=Abar.dtype, device=Abar.device)
        AL = torch.linalg.matrix_power(Abar, self.kernel_length(1, rate))
        C = torch.linalg.solve(eye - AL, full(p["Ct"]).unsqueeze(-2), left=False).squeeze(-2)
        return Abar, Bbar, C

    def _discrete_dense(self, p: Params) -> Tuple[torch.Tensor, torch.Tensor]:
        """Abar (H, N, N), Bbar (H, N) by the layer's discretization of A = Lambda - P P* (full states)."""
        dt = p["dt"].unsqueeze(-1)
        Pf = full(p["P"])
        A = torch.diag_embed(full(p["Lambda"])) - torch.einsum("rhn,rhm->hnm", Pf, Pf.conj())
        eye = torch.eye(A.shape[-1], dtype=A.dtype, device=A.device)
        if self.discretization == "zoh":
            Abar = torch.linalg.matrix_exp(dt * A)
            return Abar, torch.linalg.solve(A, ((Abar - eye) @ full(p["B"]).unsqueeze(-1))).squeeze(-1)
        Abar = torch.linalg.solve(eye - dt / 2 * A, eye + dt / 2 * A)
        return Abar, torch.linalg.solve(eye - dt / 2 * A, dt[..., 0] * full(p["B"]))

    @staticmethod
    def _krylov(Abar: torch.Tensor, b: torch.Tensor, L: int) -> torch.Tensor:
        """[b, Abar b, ..., Abar^(L-1) b] by doubling: Abar (H, N, N), b (..., H, N) -> (..., H, N, L)."""
        K, P = b.unsqueeze(-1), Abar
        while K.shape[-1] < L:
            K = torch.cat([K, P @ K], dim=-1)
            P = P @ P
        return K[..., :L]

    @torch.no_grad()
    def double_length(self) -> None:
        """Double l_kernel keeping the SSM: Ct <- Ct (I + Abar^l_kernel) (at rate 1)."""
        p = self.ssm_params()
        AL = torch.linalg.matrix_power(self._discrete_dense(p)[0], int(self.l_kernel))
        Ct = full(p["Ct"])
        Ct = Ct + torch.einsum("chn,hnm->chm", Ct, AL)
        self.C.copy_(torch.view_as_real(Ct[..., : Ct.shape[-1] // 2]))
        self.l_kernel.mul_(2)

    # --- kernel by Cauchy + Woodbury --------------------------------------------------------------
    def _generating(self, b: torch.Tensor, c: torch.Tensor, Lk: int, p: Params) -> torch.Tensor:
        """sum_l c Abar^l Bbar(b) for b (K, H, M) in the B slot, c (C, H, M) -> kernels (C, K, H, Lk) real."""
        dt, lam, P = p["dt"], p["Lambda"], p["P"]
        r = P.shape[0]
        k = torch.arange(Lk // 2 + 1, device=lam.device, dtype=dt.dtype)
        omega = torch.exp(torch.complex(torch.zeros_like(k), -2 * math.pi * k / Lk))
        g = (1 - omega) / (1 + omega)  # z = (2 / dt) g: the bilinear image of omega
        left = torch.cat([c, P.conj()], dim=0)  # (C + r, H, M): rows Ct*, Q*
        right = torch.cat([b, P], dim=0)  # (K + r, H, M): columns B (or state), P
        v = left.unsqueeze(1) * right.unsqueeze(0)  # (C + r, K + r, H, M)
        w = (lam * dt / 2).expand_as(v)
        kk = cauchy(v, g, w, conj=True, backend=self.backend) * (dt / 2)  # resolvent (z - A)^-1 terms
        nc, nb = c.shape[0], b.shape[0]
        k00, k01, k10, k11 = kk[:nc, :nb], kk[:nc, nb:], kk[nc:, :nb], kk[nc:, nb:]
        if r == 1:
            kh = k00 - k01 * k10 / (1 + k11)
        else:  # Woodbury with an r x r solve per (channel, frequency)
            k11 = k11.permute(2, 3, 0, 1) + torch.eye(r, dtype=kk.dtype, device=kk.device)
            rhs = torch.linalg.solve(k11, k10.permute(2, 3, 0, 1))  # (H, F, r, K)
            kh = k00 - torch.einsum("ajhf,hfjb->abhf", k01, rhs)
        kh = kh * 2 / (1 + omega)
        return torch.fft.irfft(kh, n=Lk)

    def kernel(self, L: int, rate: float = 1.0) -> torch.Tensor:
        """The convolution kernel K: (C, H, L) real, C = 2 if bidirectional else 1."""
        with torch.autocast(device_type=self.D.device.type, enabled=False):
            Lk = self.kernel_length(L, rate)
            p = self.ssm_params(rate)
            if self.discretization == "zoh":
                Abar, Bbar, C = self.dense(rate, p)
                return torch.einsum("chn,hnl->chl", C, self._krylov(Abar, Bbar, L)).real
            return self._generating(p["B"].unsqueeze(0), p["Ct"], Lk, p)[:, 0, :, :L]

    # --- recurrence: O(N r) per step via the DPLR form ---------------------------------------------
    def _A0(self, x: torch.Tensor, p: Params) -> torch.Tensor:
        """(2/dt + A) x for half states x (..., H, M)."""
        s = re_inner(p["P"].unsqueeze(1), x.unsqueeze(0))  # (r, ..., H)
        return (2 / p["dt"] + p["Lambda"]) * x - (p["P"].unsqueeze(1) * s.unsqueeze(-1)).sum(0)

    @staticmethod
    def _woodbury(p: Params) -> Params:
        """Add D = (2/dt - Lambda)^-1 (H, M) and G^-1 = (I + Q* D P)^-1 (H, r, r) (real) to the parameters."""
        P, D = p["P"], 1 / (2 / p["dt"] - p["Lambda"])
        G = 2 * torch.einsum("ihm,hm,jhm->hij", P.conj(), D, P).real
        G = G + torch.eye(P.shape[0], dtype=G.dtype, device=G.device)
        return {**p, "D": D, "G_inv": 1 / G if P.shape[0] == 1 else torch.linalg.inv(G)}

    def _A1(self, y: torch.Tensor, p: Params) -> torch.Tensor:
        """(2/dt - A)^-1 y by Woodbury: D y - D P G^-1 Q* D y, for half states y (B, H, M) (`p` from _woodbury)."""
        P, D = p["P"], p["D"]
        t = re_inner(P.unsqueeze(1), (D * y).unsqueeze(0))  # (r, B, H)
        s = torch.einsum("hij,jbh->ibh", p["G_inv"], t)
        return D * y - D * (P.unsqueeze(1) * s.unsqueeze(-1)).sum(0)

    def _advance(self, x: torch.Tensor, u: torch.Tensor, p: Params) -> torch.Tensor:
        """x_l = Abar x_{l-1} + Bbar u_l = A1 (A0 x + 2 B u); x (B, H, M), u (B, H); `p` from _woodbury."""
        return self._A1(self._A0(x, p) + 2 * p["B"] * u.unsqueeze(-1), p)

    def _state_shape(self, batch_size: int) -> Tuple[int, ...]:
        return (batch_size, self.d_model, self.d_state // 2)

    def _zero_input(self, state: torch.Tensor, L: int, rate: float) -> torch.Tensor:
        """y_l = C Abar^(l+1) x: the state enters the B slot as A0 x / 2 (Abar x = 2 A1 (A0 x / 2))."""
        p = self.ssm_params(rate)
        if self.discretization == "zoh":
            Abar, _, C = self.dense(rate, p)
            x = torch.einsum("hnm,bhm->bhn", Abar, full(state.to(Abar.dtype)))
            return torch.einsum("hn,bhnl->bhl", C[0], self._krylov(Abar, x, L)).real
        b = self._A0(state.to(p["Lambda"].dtype), p) / 2
        return self._generating(b, p["Ct"][:1], self.kernel_length(L, rate), p)[0, :, :, :L]

    def _next_state(self, u: torch.Tensor, state: Optional[torch.Tensor], rate: float) -> torch.Tensor:
        """The state after u: (B, H, L), by L steps of the O(N) recurrence."""
        p = self.ssm_params(rate)
        x = torch.zeros(self._state_shape(u.shape[0]), dtype=p["Lambda"].dtype, device=u.device)
        x = x if state is None else state.to(x.dtype)
        if self.discretization == "zoh":  # sum_m Abar^m Bbar u_(L-1-m) + Abar^L x
            Abar, Bbar = self._discrete_dense(p)
            L, M = u.shape[-1], x.shape[-1]
            s = torch.einsum("hnl,bhl->bhn", self._krylov(Abar, Bbar, L), u.flip(-1).to(Abar.dtype))
            return s[..., :M] + torch.einsum("hnm,bhm->bhn", torch.linalg.matrix_power(Abar, L), full(x))[..., :M]
        p = self._woodbury(p)
        for u_l in u.unbind(-1):
            x = self._advance(x, u_l, p)
        return x

    def _step_setup(self, rate: float) -> Tuple[Params, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(Woodbury parameters, dense(rate)); C undoes the truncation in Ct. Cached while the parameters are
        unchanged and gradients are off, so a step costs O(H N r) (ZOH: O(H N^2))."""
        key = (rate, int(self.l_kernel), self.D.dtype, str(self.D.device),
               tuple(t._version for t in (self.inv_dt, self.A_real, self.A_imag, self.P, self.B, self.C)))
        if torch.is_grad_enabled() or self._cache[0] != key:
            p = self.ssm_params(rate)
            value = (self._woodbury(p), *self.dense(rate, p))
            if torch.is_grad_enabled():
                return value
            self._cache = (key, value)
        return self._cache[1]

    def step(self, x_t: torch.Tensor, state: torch.Tensor, rate: float = 1.0) -> Tuple[torch.Tensor, torch.Tensor]:
        """x_t: (B, H), state: (B, H, N/2) -> y_t: (B, H), next state; O(H N r) per step (ZOH: dense O(H N^2))."""
        self._check_step(x_t, state, rate)
        p, Abar, Bbar, C = self._step_setup(rate)
        u = x_t.to(p["dt"].dtype)
        M = self.d_state // 2
        if self.discretization == "zoh":
            x = (torch.einsum("hnm,bhm->bhn", Abar, full(state.to(Abar.dtype))) + Bbar * u.unsqueeze(-1))[..., :M]
        else:
            x = self._advance(state.to(p["Lambda"].dtype), u, p)
        y = 2 * (C[0, :, :M] * x).sum(-1).real + self.D.to(u.dtype) * u
        return self.output(y.to(x_t.dtype)), x

    def extra_repr(self) -> str:
        return (f"{super().extra_repr()}, l_kernel={int(self.l_kernel)}, n_ssm={self.n_ssm}, rank={self.rank}, "
                f"init={self.init!r}")
