"""S5 (Smith et al. 2023) and S5-PTD (Yu et al. 2024): a MIMO diagonal SSM run by a parallel scan.

    x_l = Lambda_bar * x_{l-1} + B_bar u_l,    y_l = s * Re(Ct x_l) + D * u_l
with state size P' (P, or P/2 with `conj_sym`, then s = 2), one dt per state, Bt = V^-1 B, Ct = C V.
Lambda and V come from J blocks of HiPPO-LegS of size P/J: the normal part's eigendecomposition
(`hippo.nplr`, S5) or the perturb-then-diagonalize one (`hippo.ptd`, S5-PTD; all P states kept).
Training runs `ssm.kernels.scan` over L (`functional.s5_scan`); `step` is the O(P' H) recurrence (`s5_step`).
dt = exp(log_step) * step_rescale * rate: `step_rescale` is the layer's own factor, `rate` the call's.
"""
from __future__ import annotations

import math
from typing import Dict, Optional, Tuple

import torch
from torch import nn

from .. import hippo
from .base import SequenceLayer
from .checks import check_choice, check_int, check_rate
from .common import DropoutNd, OutputLayer, activation as make_activation
from .functional import diagonal_transfer, discretize, input_factor, s5_readout, s5_scan, s5_step
from .masking import gather_last, valid_mask
from .param import complex_dtype, hippo_init, log_dt_init, real_dtype, register_ssm_param

C_INITS = ("trunc_standard_normal", "lecun_normal", "complex_normal")
OUTPUTS = ("half_glu1", "half_glu2", "full_glu", "none")
BIDIRECTIONAL = ("sum", "concat")
# S5's optimizer setups: parameter -> "ssm" (ssm lr, no weight decay), "ssm_wd" (ssm lr, global weight
# decay), or None (global lr and weight decay). Lambda and log_step are always "ssm".
OPT_CONFIGS: Dict[str, Dict[str, Optional[str]]] = {
    "standard": {"B": "ssm", "C": None, "D": None},
    "BandCdecay": {"B": "ssm_wd", "C": None, "D": None},
    "BfastandCdecay": {"B": None, "C": None, "D": None},
    "noBCdecay": {"B": "ssm", "C": "ssm", "D": "ssm"},
}
_TRUNC_STD = 0.87962566103423978  # std of a standard normal truncated to [-2, 2]


def block_init(Lambda: torch.Tensor, V: torch.Tensor, V_inv: torch.Tensor, J: int):
    """Repeat one block's (Lambda (n,), V (N, n), V_inv (n, N)) over J blocks -> (Jn,), (JN, Jn), (Jn, JN)."""
    return Lambda.repeat(J), torch.block_diag(*[V] * J), torch.block_diag(*[V_inv] * J)


def trunc_lecun(shape: Tuple[int, ...], fan_in: int) -> torch.Tensor:
    """Normal truncated at 2 std, rescaled to variance 1/fan_in (JAX's lecun_normal)."""
    w = nn.init.trunc_normal_(torch.empty(shape, dtype=torch.float64), std=1.0, a=-2.0, b=2.0)
    return w / (_TRUNC_STD * math.sqrt(fan_in))


def half_glu_gate(kind: str, y: torch.Tensor, g: torch.Tensor, W: nn.Linear) -> torch.Tensor:
    """half_glu1: g * sigmoid(W g); half_glu2: y * sigmoid(W g), with g = dropout(activation(y))."""
    return (g if kind == "half_glu1" else y) * torch.sigmoid(W(g))


class S5Output(nn.Module):
    """S5's output block after the SSM: half_glu1 | half_glu2 | full_glu | none, around the pointwise `activation`,
    with time-tied dropout."""

    def __init__(self, d_model: int, output: str = "half_glu1", activation: Optional[str] = "gelu_tanh",
                 dropout: float = 0.0, tie_dropout: bool = True):
        super().__init__()
        check_choice("output", output, OUTPUTS)
        self.kind = output
        self.dropout = DropoutNd(dropout, tie=tie_dropout)
        if output in ("none", "full_glu"):  # activation -> dropout [-> Linear(H, 2H) + GLU]
            self.inner = OutputLayer(d_model, activation, dropout, "glu" if output == "full_glu" else "none",
                                     tie_dropout)
        else:
            self.act = make_activation(activation)
            self.W = nn.Linear(d_model, d_model)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """y: (..., H) -> (..., H)."""
        if self.kind == "none":
            return self.inner(y)
        if self.kind == "full_glu":
            return self.dropout(self.inner(y))
        g = self.dropout(self.act(y))
        return self.dropout(half_glu_gate(self.kind, y, g, self.W))


class S5(SequenceLayer):
    """S5 layer: x (B, L, H) -> (y (B, L, H), state (B, P') complex); P' = P/2 with conj_sym, else P."""

    def __init__(self, d_model: int, d_state: int = 256, *, blocks: int = 8, conj_sym: bool = True,
                 init: str = "legs", dt_min: float = 1e-3, dt_max: float = 1e-1, discretization: str = "zoh",
                 C_init: str = "trunc_standard_normal", clip_eigs: bool = False, force_neg: bool = False,
                 bidirectional: bool = False, bidirectional_mode: str = "sum", output: str = "half_glu1",
                 activation: Optional[str] = "gelu_tanh", dropout: float = 0.0, tie_dropout: bool = True,
                 step_rescale: float = 1.0, lr: Optional[float] = 1e-3, opt_config: str = "standard",
                 backend: Optional[str] = None):
        super().__init__()
        self._check_sizes(d_model, d_state, blocks, conj_sym, bidirectional and bidirectional_mode == "concat")
        check_choice("discretization", discretization, ("zoh", "bilinear"))
        check_choice("C_init", C_init, C_INITS)
        check_choice("bidirectional_mode", bidirectional_mode, BIDIRECTIONAL)
        check_choice("opt_config", opt_config, tuple(OPT_CONFIGS))
        step_rescale = check_rate(step_rescale, "step_rescale")
        self.d_model, self.d_state, self.blocks, self.conj_sym, self.init = d_model, d_state, blocks, conj_sym, init
        self.discretization, self.C_init, self.clip_eigs, self.force_neg = discretization, C_init, clip_eigs, force_neg
        self.bidirectional, self.bidirectional_mode = bidirectional, bidirectional_mode
        self.step_rescale, self.backend, self.opt_config = step_rescale, backend, opt_config
        Lambda, V, V_inv = hippo_init(self.init_blocks, d_state // blocks, blocks)  # complex128
        self._register_params(Lambda, V, V_inv, dt_min, dt_max, lr)
        self.output = S5Output(d_model, output, activation, dropout, tie_dropout)

    @staticmethod
    def _check_sizes(H: int, P: int, J: int, conj_sym: bool, concat: bool) -> None:
        for name, v in (("d_model", H), ("d_state", P), ("blocks", J)):
            check_int(name, v)
        if P % J:
            raise ValueError(f"d_state must be divisible by blocks={J}, got d_state={P}")
        if conj_sym and (P // J) % 2:
            raise ValueError(f"conj_sym needs an even block size d_state/blocks, got {P}/{J} = {P // J}")
        if concat and H % 2:
            raise ValueError(f"bidirectional_mode='concat' needs an even d_model (H/2 per direction), got {H}")

    def init_blocks(self, N: int, J: int) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Lambda (P',), V (P, P'), V^-1 (P', P) from the normal part of the HiPPO matrix `init` of size N, J blocks."""
        Lambda, _, _, V = hippo.nplr(self.init, N)
        Lambda, V = Lambda.to(torch.complex128), V.to(torch.complex128)
        if self.conj_sym:  # one of each conjugate pair (the first N/2)
            Lambda, V = Lambda[: N // 2], V[:, : N // 2]
        return block_init(Lambda, V, V.conj().T, J)

    @property
    def n_states(self) -> int:
        """P': the number of stored (complex) states."""
        return self.Lambda_re.shape[-1]

    def _register(self, name: str, value: torch.Tensor, group: Optional[str], lr: Optional[float]) -> None:
        if group is None:
            self.register_parameter(name, nn.Parameter(value))
            return
        register_ssm_param(self, name, value, lr)
        p = getattr(self, name)
        if group == "ssm_wd" and isinstance(p, nn.Parameter):
            p._optim.pop("weight_decay")  # type: ignore[attr-defined]  # keep the global weight decay

    def _register_params(self, Lambda, V, V_inv, dt_min: float, dt_max: float, lr: Optional[float]) -> None:
        H, P, Pp = self.d_model, V.shape[0], Lambda.shape[0]
        groups = OPT_CONFIGS[self.opt_config]
        self._register("Lambda_re", Lambda.real.float().clone(), "ssm", lr)
        self._register("Lambda_im", Lambda.imag.float().clone(), "ssm", lr)
        self._register("log_step", log_dt_init(Pp, dt_min, dt_max), "ssm", lr)
        Bt = V_inv @ trunc_lecun((P, H), P).to(V.dtype)  # (P', H)
        self._register("B", torch.view_as_real(Bt.to(torch.complex64)).clone(), groups["B"], lr)
        self._register("C", torch.view_as_real(self._init_C(V, H)).clone(), groups["C"], lr)
        self._register("D", torch.randn(H), groups["D"], lr)

    def _init_C(self, V: torch.Tensor, H: int) -> torch.Tensor:
        """Ct (n_dir, H_out, P') complex64: C V with C trunc-standard / lecun normal, or complex normal."""
        n_dir = 2 if self.bidirectional else 1
        H_out = H // 2 if self.bidirectional and self.bidirectional_mode == "concat" else H
        P, Pp = V.shape
        if self.C_init == "complex_normal":
            Ct = torch.randn(n_dir, H_out, Pp, 2, dtype=torch.float64) * math.sqrt(0.5)
            return torch.view_as_complex(Ct).to(torch.complex64)
        fan_in = P if self.C_init == "trunc_standard_normal" else P * H_out
        C = torch.view_as_complex(trunc_lecun((n_dir, H_out, P, 2), fan_in).contiguous())
        return (C @ V).to(torch.complex64)

    # --- discretization -----------------------------------------------------------------------
    def Lambda(self) -> torch.Tensor:
        """Continuous eigenvalues (P',) with clip_eigs (Re <= -1e-4) and force_neg (Re -> -|Re|) applied."""
        re = self.Lambda_re
        if self.clip_eigs:
            re = re.clamp(max=-1e-4)
        if self.force_neg:
            re = -re.abs()
        return torch.complex(re, self.Lambda_im)

    def step_sizes(self, rate: float = 1.0) -> torch.Tensor:
        """One step size per state: exp(log_step) * step_rescale * rate, (P',)."""
        return torch.exp(self.log_step) * (self.step_rescale * self.check_rate(rate))

    def transfer_function(self, s: torch.Tensor, rate: float = 1.0) -> torch.Tensor:
        """Continuous-time G_hh(s) from input channel h to output channel h (the diagonal of the MIMO C (sI - A)^-1 B,
        first direction, no D): s (F,) -> (H, F); needs bidirectional_mode "sum" or a unidirectional layer."""
        if self.bidirectional and self.bidirectional_mode == "concat":
            raise ValueError("transfer_function needs bidirectional_mode='sum' (concat splits the channels), got 'concat'")
        A = self.Lambda()
        _, dB, Ct = self.discretize(rate)
        B = dB / input_factor(A.unsqueeze(-1), self.step_sizes(rate).unsqueeze(-1), self.discretization)  # (P', H)
        CB = Ct[0] * B.T  # (H, P'): Ct[h, p] B[p, h]
        return diagonal_transfer(CB, A.expand_as(CB), s, self.conj_sym)

    def discretize(self, rate: float = 1.0) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> Lambda_bar (P',), B_bar (P', H), Ct (n_dir, H_out, P') complex at dt = exp(log_step) step_rescale rate."""
        A = self.Lambda().unsqueeze(-1)
        dA, dB = discretize(A, torch.view_as_complex(self.B), self.step_sizes(rate).unsqueeze(-1), self.discretization)
        return dA.squeeze(-1), dB, torch.view_as_complex(self.C)

    def _discretized(self, dtype: torch.dtype, rate: float):
        cd = complex_dtype(dtype)
        return tuple(t.to(cd) for t in self.discretize(rate))

    # --- the layer contract -------------------------------------------------------------------
    def _ref(self) -> torch.Tensor:
        return self.D

    def state_dtype(self, dtype: Optional[torch.dtype] = None) -> torch.dtype:
        return complex_dtype(dtype or self.dtype)

    def state_shapes(self, batch_size: int) -> Tuple[Tuple[int, ...], ...]:
        return ((batch_size, self.n_states),)

    def forward(self, x: torch.Tensor, state: Optional[torch.Tensor] = None, *, rate: float = 1.0,
                lengths: Optional[torch.Tensor] = None, return_state: bool = True
                ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """x: (B, L, H), state: (B, P') or None, lengths: (B,) or None -> y (B, L, H), state (B, P') (None if
        bidirectional or not return_state); positions >= lengths add nothing and give y = 0."""
        rate, lengths, parts = self.check_forward(x, state, rate, lengths)
        if x.shape[0] == 0:
            return self.empty_output(x, return_state)
        state = None if parts is None else parts[0]
        mask = None if lengths is None else valid_mask(lengths, x.shape[1])
        with torch.autocast(device_type=x.device.type, enabled=False):
            u = x.to(real_dtype(x.dtype))
            dA, dB, Ct = self._discretized(u.dtype, rate)
            xs = s5_scan(dA, dB, u, state, mask, backend=self.backend)  # (B, L, P')
            y = s5_readout(xs, Ct[0], self.conj_sym)
            if self.bidirectional:
                y2 = s5_readout(s5_scan(dA, dB, u, None, mask, reverse=True, backend=self.backend), Ct[1],
                                self.conj_sym)
                y = y + y2 if self.bidirectional_mode == "sum" else torch.cat([y, y2], -1)
            y = y + self.D.to(u.dtype) * u
            next_state = None
            if return_state and not self.bidirectional:
                initial = torch.zeros_like(xs[:, 0]) if state is None else state
                next_state = gather_last(xs, lengths, initial)
        y = self.output(y.to(x.dtype))
        if mask is not None:
            y = y * mask.unsqueeze(-1).to(y.dtype)
        return y, next_state

    def step(self, x_t: torch.Tensor, state: Optional[torch.Tensor], *, rate: float = 1.0
             ) -> Tuple[torch.Tensor, torch.Tensor]:
        """x_t: (B, H), state: (B, P') or None -> y_t (B, H), next state (B, P'); O(P' H) per step."""
        rate, (state,) = self.check_step(x_t, state, rate)
        u = x_t.to(real_dtype(x_t.dtype))
        dA, dB, Ct = self._discretized(u.dtype, rate)
        state = s5_step(state, u, dA, dB)
        y = s5_readout(state, Ct[0], self.conj_sym) + self.D.to(u.dtype) * u
        return self.output(y.to(x_t.dtype)), state

    def extra_repr(self) -> str:
        return (f"d_model={self.d_model}, d_state={self.d_state}, blocks={self.blocks}, conj_sym={self.conj_sym}, "
                f"discretization={self.discretization!r}, bidirectional={self.bidirectional}")


class S5PTD(S5):
    """S5-PTD: S5 with perturb-then-diagonalize HiPPO-LegS blocks (all states kept, no conj_sym)."""

    def __init__(self, d_model: int, d_state: int = 256, *, blocks: int = 8, conj_sym: bool = False,
                 clip_eigs: bool = True, **kwargs):
        if conj_sym:
            raise ValueError("conj_sym must be False for S5-PTD (PTD eigenvalues are not conjugate pairs), got True")
        super().__init__(d_model, d_state, blocks=blocks, conj_sym=False, clip_eigs=clip_eigs, **kwargs)

    def init_blocks(self, N: int, J: int) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Lambda (P,), V (P, P), V^-1 (P, P) from `hippo.ptd` of the HiPPO matrix `init` of size N, J blocks."""
        ptd = hippo.ptd(self.init, N)
        c = torch.complex128
        return block_init(ptd.Lambda.to(c), ptd.V.to(c), ptd.V_inv.to(c), J)
