"""S4: the diagonal-plus-low-rank (DPLR) state-space layer (Gu et al. 2022); equations in `functional.dplr`.

State matrix A = Lambda - P P* in the HiPPO eigenbasis, one of each conjugate pair of the N states stored
(M = N/2), bilinear discretization. The learned output weights are Ct = C (I - Abar^m) with m = l_max / rate
kernel nodes (they absorb the truncation of the generating function). An input longer than m uses
m 2^k nodes with Ct (I + Abar^m)(I + Abar^2m)...(I + Abar^(m 2^(k-1))), the same SSM, computed on the fly
(no parameter changes in forward).

discretization="zoh" is also offered, exactly but densely: exp(dt (Lambda - P P*)) is not DPLR, so its
kernel comes from Krylov powers of the dense N x N Abar (O(H N^2 L)) and its step is a dense O(N^2)
product: a reference for comparisons, not the fast path.

convention="official" initialises as the official S4 code does: the HiPPO matrices of its "s4" convention, Im(B)
clipped to [-2, 2], and C drawn as the output vector of the SSM, stored as Ct = C (I - Abar^l_max) (`C_tilde`).
convention="ssm" stores the draw as Ct itself and keeps B unclipped.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import torch
from torch import nn

from .. import hippo
from .checks import check_choice, check_int, describe
from .conv import ConvSSM
from .functional import (C_tilde, bilinear_dplr, complex_vector, dense_final_state, discretize_dense, dplr_A0,
                         dplr_dense, dplr_generating, dplr_step, full, krylov, real_form, real_vector, squarings,
                         woodbury_setup)
from .param import (DT_TRANSFORMS, REAL_TRANSFORMS, clip_imag, dt_param, dt_value, hippo_init, real_dtype,
                    real_param, real_part, register_ssm_param, repeat_ssm)

Params = Dict[str, torch.Tensor]
CONVENTIONS = ("ssm", "official")
B_CLIP = 2.0  # the official init's bound on Im(B)
HIPPO_CONVENTION = {"ssm": "unit", "official": "s4"}  # the HiPPO matrices each convention starts from


class S4(ConvSSM):
    """S4 layer: x (B, L, H) -> (y (B, L, H), state (B, H, N/2)); DPLR kernel by Cauchy, O(N) bilinear `step`."""

    def __init__(self, d_model: int, d_state: int = 64, *, l_max: int = 1024, n_ssm: Optional[int] = 1,
                 rank: int = 1, init: str = "legs", dt_min: float = 1e-3, dt_max: float = 1e-1,
                 dt_transform: str = "softplus", real_transform: str = "exp", discretization: str = "bilinear",
                 bidirectional: bool = False, activation: Optional[str] = "gelu", dropout: float = 0.0,
                 output: str = "glu", lr: Optional[float] = 1e-3, tie_dropout: bool = True,
                 backend: Optional[str] = None, convention: str = "ssm"):
        super().__init__(d_model, d_state, bidirectional=bidirectional, activation=activation, dropout=dropout,
                         output=output, tie_dropout=tie_dropout, backend=backend, pairs=True)
        check_choice("convention", convention, CONVENTIONS)
        check_choice("discretization", discretization, ("bilinear", "zoh"))
        check_choice("dt_transform", dt_transform, DT_TRANSFORMS)
        check_choice("real_transform", real_transform, REAL_TRANSFORMS)
        n_ssm = d_model if n_ssm is None else n_ssm
        if isinstance(n_ssm, bool) or not isinstance(n_ssm, int) or n_ssm < 1 or d_model % n_ssm:
            raise ValueError(f"n_ssm must be a positive divisor of d_model={d_model} (or None), got {n_ssm!r}")
        check_int("l_max", l_max)
        self.discretization, self.dt_transform, self.real_transform = discretization, dt_transform, real_transform
        self.init, self.n_ssm, self.rank, self.convention = init, n_ssm, rank, convention
        M = d_state // 2
        Lambda, P, B, _ = hippo_init(hippo.nplr, init, d_state, rank=rank, convention=HIPPO_CONVENTION[convention])
        if convention == "official":
            B = clip_imag(B, B_CLIP)
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
        self.register_buffer("l_kernel", torch.tensor(l_max))  # the truncation Ct absorbs (saved with the weights)
        self._l_kernel = l_max
        self._cache: Tuple[Optional[tuple], Optional[tuple]] = (None, None)
        if convention == "official":
            self.set_output_matrix(C)

    @torch.no_grad()
    def set_output_matrix(self, C: torch.Tensor) -> None:
        """Make C (C, H, N/2) complex the SSM's output vector: stores Ct = C (I - Abar^m), m = l_kernel (float64)."""
        shape = tuple(self.C.shape[:-1])
        if not isinstance(C, torch.Tensor) or not C.is_complex() or tuple(C.shape) != shape:
            raise ValueError(f"C must be a complex tensor of shape {shape}, got {describe(C)} "
                             f"{getattr(C, 'dtype', '')}".rstrip())
        p = {k: v.to(torch.complex128 if v.is_complex() else torch.float64) for k, v in self.ssm_params().items()}
        Ct = C_tilde(C.to(torch.complex128), self.discrete_dense(p)[0], self.nodes(1)[0])
        self.C.copy_(torch.view_as_real(Ct).to(self.C.dtype))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._l_kernel = int(self.l_kernel)

    def n_stored(self) -> int:
        return self.d_state // 2

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
        return dt_value(self.inv_dt, self.dt_transform) * self.check_rate(rate)

    def transfer_function(self, s: torch.Tensor, rate: float = 1.0) -> torch.Tensor:
        """Continuous-time G_h(s) = C (sI - Lambda + P P*)^-1 B per channel (first direction, no D), by Woodbury
        over the full states: s (F,) -> (H, F)."""
        p = self.ssm_params(self.check_rate(rate))
        C = self.dense(rate, p)[2][0]  # (H, N): the output vector with the kernel truncation undone
        lam, P, B = full(p["Lambda"]), full(p["P"]), full(p["B"])
        R = 1 / (s.to(lam.dtype).reshape(-1, 1, 1) - lam)  # (F, H, N)
        CRB = (C * R * B).sum(-1)  # (F, H)
        CRP = torch.einsum("hn,fhn,rhn->fhr", C, R, P)
        PRB = torch.einsum("rhn,fhn,hn->fhr", P.conj(), R, B)
        PRP = torch.einsum("ihn,fhn,jhn->fhij", P.conj(), R, P) + torch.eye(P.shape[0], dtype=R.dtype)
        G = CRB - (CRP.unsqueeze(-2) @ torch.linalg.solve(PRP, PRB.unsqueeze(-1))).squeeze(-1).squeeze(-1)
        return G.T

    def nodes(self, L: int, rate: float = 1.0) -> Tuple[int, int]:
        """(m, k): m = round(l_kernel / rate) base nodes, doubled k times until m 2^k >= L."""
        m, k = max(1, round(self._l_kernel / rate)), 0
        while m << k < L:
            k += 1
        return m, k

    # --- dense matrices (full N states): state, step setup, long inputs, tests ---------------------
    def discrete_dense(self, p: Params) -> Tuple[torch.Tensor, torch.Tensor]:
        """Abar (H, N, N), Bbar (H, N) by the layer's discretization of A = Lambda - P P* (full states)."""
        if self.discretization == "zoh":
            A = dplr_dense(p["Lambda"], p["P"])
            return discretize_dense(A, full(p["B"]), p["dt"][..., 0], "zoh")
        return bilinear_dplr(p["Lambda"], p["P"], p["B"], p["dt"])

    def dense(self, rate: float = 1.0, p: Optional[Params] = None) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Abar (H, N, N), Bbar (H, N), C = Ct (I - Abar^m)^-1 (C, H, N) of the discrete SSM at `rate` (full states)."""
        p = p or self.ssm_params(rate)
        Abar, Bbar = self.discrete_dense(p)
        eye = torch.eye(Abar.shape[-1], dtype=Abar.dtype, device=Abar.device)
        AL = torch.linalg.matrix_power(Abar, self.nodes(1, rate)[0])
        C = torch.linalg.solve(eye - AL, full(p["Ct"]).unsqueeze(-2), left=False).squeeze(-2)
        return Abar, Bbar, C

    def extended_Ct(self, p: Params, m: int, k: int, rate: float) -> torch.Tensor:
        """Ct for m 2^k nodes: Ct (I + Abar^m)(I + Abar^2m)... (k factors) -> (C, H, M); the same SSM."""
        if k == 0:
            return p["Ct"]
        Am = torch.linalg.matrix_power(self.discrete_dense(p)[0], m)
        Ct = full(p["Ct"])
        for _ in range(k):
            Ct = Ct + torch.einsum("chn,hnm->chm", Ct, Am)
            Am = Am @ Am
        return Ct[..., : self.n_stored()]

    # --- kernel, initial response, final state ---------------------------------------------------
    def kernel(self, L: int, rate: float = 1.0) -> torch.Tensor:
        """The convolution kernel K: (C, H, L) real, C = 2 if bidirectional else 1."""
        with torch.autocast(device_type=self.D.device.type, enabled=False):
            p = self.ssm_params(rate)
            if self.discretization == "zoh":
                Abar, Bbar, C = self.dense(rate, p)
                return torch.einsum("chn,hnl->chl", C, self._krylov(Abar, Bbar, L)).real
            m, k = self.nodes(L, rate)
            Ct = self.extended_Ct(p, m, k, rate)
            return dplr_generating(p["B"].unsqueeze(0), Ct, p["Lambda"], p["P"], p["dt"], m << k,
                                   self.backend)[:, 0, :, :L]

    @staticmethod
    def _krylov(Abar: torch.Tensor, b: torch.Tensor, L: int) -> torch.Tensor:
        """[b, Abar b, ..., Abar^(L-1) b]: (..., H, N, L)."""
        T = 1 << max(L - 1, 1).bit_length()
        return krylov(b, squarings(Abar, T.bit_length() - 1), T)[..., :L]

    def initial_response(self, state: torch.Tensor, L: int, rate: float) -> torch.Tensor:
        """y_l = C Abar^(l+1) x: the state enters the B slot as A0 x / 2 (Abar x = 2 A1 (A0 x / 2))."""
        p = self.ssm_params(rate)
        if self.discretization == "zoh":
            Abar, _, C = self.dense(rate, p)
            x = torch.einsum("hnm,bhm->bhn", Abar, full(state))
            return torch.einsum("hn,bhnl->bhl", C[0], self._krylov(Abar, x, L)).real
        m, k = self.nodes(L, rate)
        b = dplr_A0(state, p["Lambda"], p["P"], p["dt"]) / 2
        Ct = self.extended_Ct(p, m, k, rate)[:1]
        return dplr_generating(b, Ct, p["Lambda"], p["P"], p["dt"], m << k, self.backend)[0, :, :, :L]

    def final_state(self, u: torch.Tensor, state: Optional[torch.Tensor], rate: float,
                    lengths: Optional[torch.Tensor]) -> torch.Tensor:
        """The state at each example's length by chunked Krylov products in real arithmetic (no loop over L)."""
        Abar, Bbar = self.discrete_dense(self.ssm_params(rate))
        M = self.n_stored()
        x0 = None if state is None else real_vector(state)
        x = dense_final_state(real_form(Abar), real_vector(Bbar[..., :M]), u, x0, lengths)
        return complex_vector(x)

    # --- recurrence: O(N r) per step via the DPLR form ---------------------------------------------
    def _step_setup(self, rate: float) -> Tuple[Params, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(parameters with the Woodbury terms, dense(rate)); cached while the parameters are unchanged and
        gradients are off, so a step costs O(H N r) (ZOH: O(H N^2))."""
        caching = not torch.is_grad_enabled() and not torch.compiler.is_compiling()
        if caching:
            key = (rate, self._l_kernel, self.D.dtype, str(self.D.device),
                   tuple(t._version for t in (self.inv_dt, self.A_real, self.A_imag, self.P, self.B, self.C)))
            if self._cache[0] == key:
                return self._cache[1]
        p = self.ssm_params(rate)
        value = ({**p, **woodbury_setup(p["Lambda"], p["P"], p["dt"])}, *self.dense(rate, p))
        if caching:
            self._cache = (key, value)
        return value

    def step(self, x_t: torch.Tensor, state: Optional[torch.Tensor], *, rate: float = 1.0
             ) -> Tuple[torch.Tensor, torch.Tensor]:
        """x_t: (B, H), state: (B, H, N/2) or None -> y_t: (B, H), next state; O(H N r) per step (ZOH: O(H N^2))."""
        rate, (state,) = self.check_step(x_t, state, rate)
        p, Abar, Bbar, C = self._step_setup(rate)
        u = x_t.to(real_dtype(x_t.dtype))
        M = self.n_stored()
        if self.discretization == "zoh":
            x = (torch.einsum("hnm,bhm->bhn", Abar, full(state)) + Bbar * u.unsqueeze(-1))[..., :M]
        else:
            x = dplr_step(state, u, p["Lambda"], p["P"], p["B"], p["dt"], p["D"], p["G_inv"])
        y = 2 * (C[0, :, :M] * x).sum(-1).real
        return self.finish_step(y, u, x_t), x

    def extra_repr(self) -> str:
        return (f"{super().extra_repr()}, l_max={self._l_kernel}, n_ssm={self.n_ssm}, rank={self.rank}, "
                f"init={self.init!r}, convention={self.convention!r}")
