"""Closed-form continuous-time (CfC) cells and the CfC sequence layer, dense or wired (Hasani et al. 2022).

With z = [x; h] split as W_in x + W_rec h + b (so the input part of all time steps is one matmul) and
f = backbone(z) (Linear + activation layers; none in wired mode, where the heads read z directly):
    ff1 = tanh(W1 f), ff2 = tanh(W2 f), g = sigmoid((Wa f) ts + Wb f)
    default: h' = ff1 (1 - g) + g ff2;   no_gate: h' = ff1 + g ff2
    pure:    h' = -A exp(-ts (|w_tau| + |W1 f|)) (W1 f) + A
ts is the time elapsed since the previous step (1 when no `timespans` are given) times `rate`; the closed form is
`functional.cfc_update`. Numerics equal ncps.torch.CfC
for the same weights (tested), except that a wired CfC uses the wiring's within-layer synapses as its recurrent
mask (ncps uses all ones there; `dense_recurrent=True` restores that).
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import torch
from torch import nn
from torch.nn import functional as F

from .base import SequenceLayer
from .checks import check_choice, check_finite, check_int, describe
from .common import activation as make_activation
from .functional import cfc_update, lecun_tanh, lstm_cell
from .masking import gather_last, valid_mask
from .param import glorot_
from .wirings import LowRankSparse, MaskedWeight, Wiring, make_wiring

MODES = ("default", "no_gate", "pure")
BACKBONE_ACTIVATIONS = ("lecun_tanh", "silu", "relu", "tanh", "gelu")


class LeCunTanh(nn.Module):
    """1.7159 tanh(0.666 x)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return lecun_tanh(x)


def _backbone_activation(name: str) -> nn.Module:
    """The backbone activation called `name` (lecun_tanh, silu, relu, tanh, gelu)."""
    check_choice("backbone_activation", name, BACKBONE_ACTIVATIONS)
    return LeCunTanh() if name == "lecun_tanh" else make_activation(name)


class CfCCell(nn.Module):
    """One CfC cell: x_t (B, input_size), h (B, hidden_size), ts -> h' (B, hidden_size).

    `input_mask` (hidden, input) and `recurrent_mask` (hidden, hidden) are wiring masks on the ff1/ff2 heads
    (all four heads if `mask_gates`); they need backbone_layers=0. `recurrent=LowRankSparse(...)` makes the
    recurrent part of the first layer (W_rec: first-layer width x hidden) low-rank sparse.
    """

    def __init__(self, input_size: int, hidden_size: int, mode: str = "default",
                 backbone_activation: str = "lecun_tanh",
                 backbone_units: int = 128, backbone_layers: int = 1, backbone_dropout: float = 0.0,
                 input_mask: Optional[torch.Tensor] = None, recurrent_mask: Optional[torch.Tensor] = None,
                 recurrent: Optional[LowRankSparse] = None, mask_gates: bool = False):
        super().__init__()
        for name, v, low in (("input_size", input_size, 1), ("hidden_size", hidden_size, 1),
                             ("backbone_units", backbone_units, 1), ("backbone_layers", backbone_layers, 0)):
            check_int(name, v, low)
        check_choice("mode", mode, MODES)
        if not 0.0 <= backbone_dropout < 1.0:
            raise ValueError(f"backbone_dropout must be in [0, 1), got {backbone_dropout!r}")
        if backbone_layers > 0 and (input_mask is not None or recurrent_mask is not None):
            raise ValueError(f"wiring masks need backbone_layers=0, got backbone_layers={backbone_layers}")
        self.input_size, self.hidden_size, self.mode = input_size, hidden_size, mode
        self.n_heads = 1 if mode == "pure" else 4
        first = backbone_units if backbone_layers > 0 else self.n_heads * hidden_size
        W = glorot_(torch.empty(first, input_size + hidden_size))
        self.w_in = MaskedWeight(W[:, :input_size], self._head_mask(input_mask, mask_gates))
        self.w_rec = (MaskedWeight(W[:, input_size:], self._head_mask(recurrent_mask, mask_gates)) if recurrent is None
                      else recurrent.build(W[:, input_size:]))
        self.bias = nn.Parameter(torch.zeros(first))
        self.act = _backbone_activation(backbone_activation)
        self.drop = nn.Dropout(backbone_dropout)
        self.backbone = nn.ModuleList(nn.Linear(backbone_units, backbone_units) for _ in range(backbone_layers - 1))
        self.heads = nn.Linear(backbone_units, self.n_heads * hidden_size) if backbone_layers > 0 else None
        for lin in list(self.backbone) + ([self.heads] if self.heads is not None else []):
            glorot_(lin.weight)
        if mode == "pure":
            self.w_tau = nn.Parameter(torch.zeros(hidden_size))
            self.A = nn.Parameter(torch.ones(hidden_size))

    def _head_mask(self, mask: Optional[torch.Tensor], mask_gates: bool) -> Optional[torch.Tensor]:
        """Stack a (hidden, k) wiring mask over the heads [ff1, ff2, time_a, time_b] (gates unmasked unless asked)."""
        if mask is None:
            return None
        ones = torch.ones_like(mask)
        return torch.cat([mask if i < 2 or mask_gates else ones for i in range(self.n_heads)])

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """x: (..., input_size) -> W_in x + b: (..., first-layer width); for all time steps at once."""
        return F.linear(x, self.w_in(), self.bias)

    def recur(self, u: torch.Tensor, h: torch.Tensor, ts, w_rec: Optional[torch.Tensor] = None) -> torch.Tensor:
        """u: (B, first) projected input, h: (B, hidden), ts: float or (B, 1) -> h' (B, hidden)."""
        z = u + F.linear(h, self.w_rec() if w_rec is None else w_rec)
        if self.heads is not None:
            z = self.drop(self.act(z))
            for lin in self.backbone:
                z = self.drop(self.act(lin(z)))
            z = self.heads(z)
        return self.combine(z, ts)

    def combine(self, z: torch.Tensor, ts) -> torch.Tensor:
        """Head pre-activations z: (B, heads * hidden) -> h' by the closed form of `mode`."""
        if self.mode == "pure":
            return cfc_update(z, ts, "pure", self.A, self.w_tau)
        return cfc_update(z, ts, self.mode)

    def forward(self, x_t: torch.Tensor, h: torch.Tensor, ts=1.0) -> torch.Tensor:
        """x_t: (B, input_size), h: (B, hidden), ts -> h' (B, hidden)."""
        return self.recur(self.project(x_t), h, ts)

    def extra_repr(self) -> str:
        return f"input_size={self.input_size}, hidden_size={self.hidden_size}, mode={self.mode!r}"


class CfC(SequenceLayer):
    """CfC layer: x (B, L, d_model), timespans (B, L) or (B, L, 1) -> (y (B, L, proj_size or d_model), state).

    `units` (default d_model) neurons; `wiring`: None/"full" (dense cell with a backbone), a neuron `Wiring`
    (one backbone-free cell per wiring layer; output = the motor neurons), `LowRankSparse` (dense cell whose
    first-layer recurrent matrix is (W1 W2) * M), or a registry config (name or {"name": ..., **kwargs}).
    The readout is the identity when the output (units, or the motor neurons) is already d_model wide and
    `proj_size` is None, else Linear(output, proj_size or d_model). State: h (B, units), or (h, c) with
    `mixed_memory` (an LSTM cell in front, as ncps). `self_loops` keeps each wired neuron's own state.
    `rate` multiplies the elapsed times (a signal sampled r times more sparsely: rate = r).
    """

    def __init__(self, d_model: int, *, units: Optional[int] = None, proj_size: Optional[int] = None, wiring=None,
                 mode: str = "default", backbone_activation: str = "lecun_tanh",
                 backbone_units: Optional[int] = None, backbone_layers: Optional[int] = None,
                 backbone_dropout: Optional[float] = None, mixed_memory: bool = False, mask_gates: bool = False,
                 self_loops: bool = True, dense_recurrent: bool = False):
        super().__init__()
        check_int("d_model", d_model)
        units = d_model if units is None else units
        check_int("units", units)
        if proj_size is not None:
            check_int("proj_size", proj_size)
        self.d_model, self.mixed_memory, self.mode, self.proj_size = d_model, mixed_memory, mode, proj_size
        self.state_tuple = bool(mixed_memory)
        self.wiring = make_wiring(wiring, units)
        act = backbone_activation
        if isinstance(self.wiring, Wiring):
            if any(v not in (None, 0) for v in (backbone_units, backbone_layers)) or backbone_dropout:
                raise ValueError("a neuron wiring runs backbone-free cells: backbone_units/layers/dropout must be "
                                 f"None, got {backbone_units}, {backbone_layers}, {backbone_dropout}")
            w = self.wiring.build(d_model)
            self.layer_sizes = [len(ids) for ids in w.layers()]
            self.cells = nn.ModuleList(
                CfCCell(d_model if l == 0 else self.layer_sizes[l - 1], n, mode, act, 1, 0, 0.0,
                        w.input_mask(l), torch.ones(n, n) if dense_recurrent else w.recurrent_mask(l, self_loops),
                        mask_gates=mask_gates)
                for l, n in enumerate(self.layer_sizes))
            self.output_size = w.output_dim
        else:
            self.layer_sizes = [units]
            self.cells = nn.ModuleList([CfCCell(
                d_model, units, mode, act, 128 if backbone_units is None else backbone_units,
                1 if backbone_layers is None else backbone_layers, backbone_dropout or 0.0, recurrent=self.wiring)])
            self.output_size = units
        self.state_size = sum(self.layer_sizes)
        if mixed_memory:
            self.lstm_ih = nn.Linear(d_model, 4 * self.state_size)
            self.lstm_hh = nn.Linear(self.state_size, 4 * self.state_size, bias=False)
        out = d_model if proj_size is None else proj_size
        self.readout = nn.Identity() if out == self.output_size and proj_size is None else nn.Linear(
            self.output_size, out)

    @property
    def d_output(self) -> int:
        return self.d_model if self.proj_size is None else self.proj_size

    def _ref(self) -> torch.Tensor:
        return self.cells[0].bias

    def state_shapes(self, batch_size: int) -> Tuple[Tuple[int, ...], ...]:
        """h (B, units), and c (B, units) with mixed_memory."""
        return ((batch_size, self.state_size),) * (2 if self.mixed_memory else 1)

    def _timespans(self, timespans: Optional[torch.Tensor], B: int, L: int, ref: torch.Tensor, rate: float):
        """timespans (B, L) or (B, L, 1) -> rate * timespans (B, L, 1) in x's dtype, or None (all 1)."""
        if timespans is None:
            return None
        if not isinstance(timespans, torch.Tensor):
            raise TypeError(f"timespans must be a tensor of shape ({B}, {L}) or ({B}, {L}, 1), got "
                            f"{describe(timespans)}")
        if tuple(timespans.shape) not in ((B, L), (B, L, 1)):
            raise ValueError(f"timespans must have shape ({B}, {L}) or ({B}, {L}, 1), got {describe(timespans)}")
        check_finite(timespans, "timespans")
        return timespans.reshape(B, L, 1).to(ref.dtype) * rate

    def forward(self, x: torch.Tensor, state=None, *, timespans: Optional[torch.Tensor] = None, rate: float = 1.0,
                lengths: Optional[torch.Tensor] = None, return_state: bool = True):
        """x: (B, L, d_model), state, timespans (B, L) / (B, L, 1), lengths (B,) -> y (B, L, out) (0 beyond each
        length), the state at each example's length."""
        rate, lengths, parts = self.check_forward(x, state, rate, lengths)
        B, L, _ = x.shape
        ts = self._timespans(timespans, B, L, x, rate)
        if B == 0:
            return self.empty_output(x, return_state)
        if parts is None:
            zero = self.default_state(B, x.device)
            parts = zero if self.mixed_memory else (zero,)
        h0, c0 = parts if self.mixed_memory else (parts[0], None)
        h, c = h0, c0
        u0 = self.cells[0].project(x)  # input part of the first layer, all steps in one matmul
        gl = self.lstm_ih(x) if self.mixed_memory else None
        w_rec = [cell.w_rec() for cell in self.cells]
        outs: List[torch.Tensor] = []
        hs: List[torch.Tensor] = []
        cs: List[torch.Tensor] = []
        # unbind once: indexing [:, t] inside the loop costs a full-size zero fill per step in backward
        u0s, gls = u0.unbind(1), (gl.unbind(1) if gl is not None else None)
        tss = ts.unbind(1) if ts is not None else None
        for t in range(L):
            if gls is not None:
                h, c = lstm_cell(gls[t] + self.lstm_hh(h), c, 1.0)
            h, y = self._step_layers(u0s[t], h, rate if tss is None else tss[t], w_rec)
            outs.append(y)
            if lengths is not None:
                hs.append(h)
                cs.extend([c] if c is not None else [])
        y = self.readout(torch.stack(outs, 1))
        if lengths is not None:
            y = y * valid_mask(lengths, L).unsqueeze(-1).to(y.dtype)
            h = gather_last(torch.stack(hs, 1), lengths, h0)
            c = gather_last(torch.stack(cs, 1), lengths, c0) if c is not None else None
        if not return_state:
            return y, None
        return y, ((h, c) if self.mixed_memory else h)

    def _step_layers(self, u0: torch.Tensor, h: torch.Tensor, ts, w_rec: List[torch.Tensor]):
        """One time step through the wiring's layers -> (new h (B, units), motor output (B, output_size))."""
        hs = h.split(self.layer_sizes, 1) if len(self.cells) > 1 else (h,)
        new, u = [], u0
        for l, cell in enumerate(self.cells):
            if l > 0:
                u = cell.project(new[-1])
            new.append(cell.recur(u, hs[l], ts, w_rec[l]))
        h = torch.cat(new, 1) if len(new) > 1 else new[0]
        return h, new[-1][:, : self.output_size]

    def step(self, x_t: torch.Tensor, state, *, ts: Optional[torch.Tensor] = None, rate: float = 1.0):
        """x_t: (B, d_model), state (None: zero), ts (B,) or (B, 1) elapsed time -> y_t (B, out), next state."""
        rate, parts = self.check_step(x_t, state, rate)
        if ts is not None:
            if not isinstance(ts, torch.Tensor):
                raise TypeError(f"ts must be a tensor of shape ({x_t.shape[0]},) or ({x_t.shape[0]}, 1), got "
                                f"{describe(ts)}")
            if ts.numel() != x_t.shape[0]:
                raise ValueError(f"ts must be a tensor of shape ({x_t.shape[0]},) or ({x_t.shape[0]}, 1), got "
                                 f"{describe(ts)}")
            ts = ts.reshape(-1, 1)
        y, state = self.forward(x_t.unsqueeze(1), self.pack_state(parts), timespans=ts, rate=rate)
        return y.squeeze(1), state

    def extra_repr(self) -> str:
        return (f"d_model={self.d_model}, units={self.state_size}, output_size={self.output_size}, "
                f"mode={self.mode!r}, wiring={self.wiring!r}, mixed_memory={self.mixed_memory}")
