"""Low-rank passthrough RNNs (Barone 2016): GRU and LSTM whose gate matrices are full, L R, or L R + diag(D).

Every gate g has an input matrix U_g (n x n_in) and a recurrent matrix W_g (n x n) in one of three forms:
    "full":          W_g                      (n^2 parameters)
    "lowrank":       W_g = L_g R_g             (L_g: n x d, R_g: d x n; 2 n d, or n d + d n shared if tie_right)
    "lowrank_diag":  W_g = L_g R_g + diag(D_g)  (+ n)
Gate order and the two bias vectors follow torch.nn.GRU ([r, z, c]) and torch.nn.LSTM ([i, f, g, o]), so with
parametrization="full" the layers compute exactly what torch computes from the same weights. The input projections
of all time steps are one matmul; the recurrence is a loop of small fused steps, run through TorchScript for
inference (measured faster there on CPU; slower under autograd, where the plain Python loop is used).
"""
from __future__ import annotations

import abc
import warnings
from typing import List, Optional, Tuple

from einops import rearrange
import torch
from torch import nn

from .base import SequenceLayer
from .checks import check_choice, check_int, check_unit_rate
from .common import DropoutNd
from .functional import gru_scan, lowrank_matvec, lstm_scan
from .masking import gather_last, valid_mask
from .param import glorot_

PARAMETRIZATIONS = ("full", "lowrank", "lowrank_diag")


class GateMatrices(nn.Module):
    """G stacked gate matrices (G n x m) as full W, L R or L R + diag(D); `factors` feeds the fused recurrence."""

    def __init__(self, gates: int, n: int, m: int, parametrization: str = "full", rank: Optional[int] = None,
                 tie_right: bool = False):
        super().__init__()
        check_choice("parametrization", parametrization, PARAMETRIZATIONS)
        if parametrization == "lowrank_diag" and n != m:
            raise ValueError(f"parametrization='lowrank_diag' needs a square matrix, got {n} x {m}")
        self.gates, self.n, self.m, self.parametrization, self.tie_right = gates, n, m, parametrization, tie_right
        self.factored: Optional[bool] = None  # None: decide by cost in `factors`
        if parametrization == "full":
            self.W = nn.Parameter(glorot_(torch.empty(gates, n, m)))
            self.rank = None
            return
        check_int("rank", rank, 1, min(n, m))
        self.rank = rank
        self.L = nn.Parameter(glorot_(torch.empty(gates, n, rank)))
        self.R = nn.Parameter(glorot_(torch.empty(1 if tie_right else gates, rank, m)))
        if parametrization == "lowrank_diag":
            self.D = nn.Parameter(torch.empty(gates, n).uniform_(-0.01, 0.01))

    def matrix(self, gates: Optional[slice] = None) -> torch.Tensor:
        """The effective stacked matrix of the selected gates: (k n, m)."""
        gates = gates or slice(None)
        if self.parametrization == "full":
            return self.W[gates].reshape(-1, self.m)
        W = self.L[gates] @ self.R[gates if not self.tie_right else slice(None)]
        if self.parametrization == "lowrank_diag":
            W = W + torch.diag_embed(self.D[gates])
        return W.reshape(-1, self.m)

    def factors(self, gates: Optional[slice] = None) -> Tuple[torch.Tensor, Optional[torch.Tensor],
                                                               Optional[torch.Tensor]]:
        """(P, Q, D) with W h = Q (P h) + D * h (Q, D None when absent) for the selected gates.

        The low-rank forms stay factored only when that costs under half the flops of the materialised matrix
        (d (1 + k) < n / 2 untied); else P = W and one matmul per step is faster. `factored` forces either way.
        """
        gates = gates or slice(None)
        if self.parametrization == "full" or not self._keep_factored(len(range(self.gates)[gates])):
            return self.matrix(gates), None, None
        L = self.L[gates]  # (k, n, d)
        if self.tie_right:
            P, Q = self.R[0], L.reshape(-1, self.rank)  # P: (d, m), Q: (k n, d)
        else:
            P, Q = self.R[gates].reshape(-1, self.m), torch.block_diag(*L.unbind(0))  # (k d, m), (k n, k d)
        D = self.D[gates].reshape(-1) if self.parametrization == "lowrank_diag" else None
        return P, Q, D

    def _keep_factored(self, k: int) -> bool:
        """Whether Q (P h) is cheaper than W h for k gates (or as forced by `self.factored`)."""
        if self.factored is not None:
            return self.factored
        d = self.rank
        cost = d * self.m + k * self.n * d if self.tie_right else k * d * self.m + k * self.n * k * d
        return 2 * cost < k * self.n * self.m

    def matvec(self, h: torch.Tensor, gates: Optional[slice] = None) -> torch.Tensor:
        """h: (..., m) -> W h: (..., k n)."""
        return lowrank_matvec(h, *self.factors(gates))

    def extra_repr(self) -> str:
        return (f"gates={self.gates}, n={self.n}, m={self.m}, parametrization={self.parametrization!r}, "
                f"rank={self.rank}, tie_right={self.tie_right}")


_SCRIPTED: dict = {}


def _scripted(fn):
    """TorchScript version of a scan (compiled once, on first use); the Python function if scripting fails."""
    if fn.__name__ not in _SCRIPTED:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _SCRIPTED[fn.__name__] = torch.jit.script(fn)
        except Exception:  # pragma: no cover - scripting is an optimisation only
            _SCRIPTED[fn.__name__] = fn
    return _SCRIPTED[fn.__name__]


class PassthroughLayer(nn.Module):
    """One recurrent layer's weights: input matrices U (G n x n_in), recurrent W (G n x n), biases b_ih, b_hh."""

    def __init__(self, gates: int, n_in: int, n: int, parametrization: str, rank: Optional[int], tie_right: bool,
                 input_rank: Optional[int], gate_bias: Tuple[int, float]):
        super().__init__()
        self.w_ih = GateMatrices(gates, n, n_in, "full" if input_rank is None else "lowrank", input_rank, tie_right)
        self.w_hh = GateMatrices(gates, n, n, parametrization, rank, tie_right)
        self.b_ih = nn.Parameter(torch.zeros(gates * n))
        self.b_hh = nn.Parameter(torch.zeros(gates * n))
        index, value = gate_bias
        with torch.no_grad():
            self.b_ih[index * n:(index + 1) * n] = value

    def input_projection(self, x: torch.Tensor) -> torch.Tensor:
        """x: (..., n_in) -> U x + b_ih: (..., G n)."""
        return self.w_ih.matvec(x) + self.b_ih


class _PassthroughRNN(SequenceLayer):
    """Shared multi-layer machinery of LowRankGRU / LowRankLSTM; subclasses define the gates and `_scan`."""

    gates: int = 0
    gate_bias_index: int = 0

    def __init__(self, d_model: int, hidden_size: Optional[int] = None, rank: Optional[int] = None,
                 parametrization: str = "lowrank_diag", tie_right: bool = False, input_rank: Optional[int] = None,
                 num_layers: int = 1, dropout: float = 0.0, gate_bias: float = 0.0, script: Optional[bool] = None):
        super().__init__()
        check_int("d_model", d_model)
        hidden_size = d_model if hidden_size is None else hidden_size
        check_int("hidden_size", hidden_size)
        check_int("num_layers", num_layers)
        if parametrization != "full" and rank is None:
            rank = min(24, hidden_size)  # Barone's best setting is d = 24
        if input_rank is not None:
            check_int("input_rank", input_rank, 1, min(d_model, hidden_size))
        self.d_model, self.hidden_size, self.num_layers = d_model, hidden_size, num_layers
        self.parametrization, self.rank, self.script = parametrization, rank, script
        self.layers = nn.ModuleList(
            PassthroughLayer(self.gates, d_model if l == 0 else hidden_size, hidden_size, parametrization, rank,
                             tie_right, input_rank, (self.gate_bias_index, gate_bias))
            for l in range(num_layers))
        self.dropout = DropoutNd(dropout, tie=False)
        self.readout = nn.Identity() if hidden_size == d_model else nn.Linear(hidden_size, d_model)

    def _ref(self) -> torch.Tensor:
        return self.layers[0].b_ih

    def state_shapes(self, batch_size: int) -> Tuple[Tuple[int, ...], ...]:
        """(num_layers, B, n) for h (GRU), and for c too (LSTM)."""
        return ((self.num_layers, batch_size, self.hidden_size),) * (2 if self.state_tuple else 1)

    def check_rate(self, rate) -> float:
        """A passthrough RNN has no time step: only rate = 1 is meaningful."""
        check_unit_rate(rate, type(self).__name__)
        return 1.0

    def forward(self, x: torch.Tensor, state=None, *, rate: float = 1.0, lengths: Optional[torch.Tensor] = None,
                return_state: bool = True):
        """x: (B, L, d_model), state as `default_state` or None, lengths (B,) or None -> y: (B, L, d_model) (0 beyond
        each length), the state at each example's length."""
        _, lengths, parts = self.check_forward(x, state, rate, lengths)
        if x.shape[0] == 0:
            return self.empty_output(x, return_state)
        if parts is None:
            zero = self.default_state(x.shape[0], x.device)
            parts = zero if self.state_tuple else (zero,)
        u, finals = rearrange(x, "b l h -> l b h"), []  # time-major for the scan
        for l, layer in enumerate(self.layers):
            if l > 0:
                u = self.dropout(u)
            outs = self._scan(layer, layer.input_projection(u), [p[l] for p in parts])  # each (L, B, n)
            u = outs[0]
            finals.append([gather_last(rearrange(o, "l b n -> b l n"), lengths, p[l]) for o, p in zip(outs, parts)])
        y = self.readout(rearrange(u, "l b h -> b l h"))
        if lengths is not None:
            y = y * valid_mask(lengths, x.shape[1]).unsqueeze(-1).to(y.dtype)
        if not return_state:
            return y, None
        return y, self.pack_state(tuple(torch.stack([f[i] for f in finals]) for i in range(len(parts))))

    def step(self, x_t: torch.Tensor, state, *, rate: float = 1.0):
        """x_t: (B, d_model), state (None: zero) -> y_t: (B, d_model), next state."""
        _, parts = self.check_step(x_t, state, rate)
        y, state = self.forward(x_t.unsqueeze(1), self.pack_state(parts))
        return y.squeeze(1), state

    def _run(self, fn, *args):
        """Run `fn` through TorchScript when `script` (None: only without autograd, where it measured faster)."""
        if torch.compiler.is_compiling():
            return fn(*args)
        script = not torch.is_grad_enabled() if self.script is None else self.script
        return (_scripted(fn) if script else fn)(*args)

    @abc.abstractmethod
    def _scan(self, layer: PassthroughLayer, gi: torch.Tensor, parts: List[torch.Tensor]) -> Tuple[torch.Tensor, ...]:
        """Run one layer's recurrence over the precomputed input projections -> every state (h[, c]), (L, B, n)."""

    def extra_repr(self) -> str:
        return (f"d_model={self.d_model}, hidden_size={self.hidden_size}, num_layers={self.num_layers}, "
                f"parametrization={self.parametrization!r}, rank={self.rank}")


class LowRankGRU(_PassthroughRNN):
    """Low-rank passthrough GRU: (B, L, d_model) -> (B, L, d_model), state (num_layers, B, hidden_size).

    h' = (1 - z) c + z h with r, z = sigmoid(U x + W h + b) and c = tanh(U_c x + r * (W_c h + b_hc)) when
    `reset_after` (torch.nn.GRU's form, the default), else c = tanh(U_c x + W_c (r * h) + b) (Cho, Barone).
    The update-gate bias starts at `update_bias` so that the layer initially passes its state through.
    """

    gates, gate_bias_index = 3, 1

    def __init__(self, d_model: int, *, hidden_size: Optional[int] = None, rank: Optional[int] = None,
                 parametrization: str = "lowrank_diag", tie_right: bool = False, input_rank: Optional[int] = None,
                 num_layers: int = 1, dropout: float = 0.0, update_bias: float = 4.0, reset_after: bool = True,
                 script: Optional[bool] = None):
        super().__init__(d_model, hidden_size, rank, parametrization, tie_right, input_rank, num_layers, dropout,
                         update_bias, script)
        self.reset_after = reset_after

    def _scan(self, layer: PassthroughLayer, gi: torch.Tensor, parts: List[torch.Tensor]) -> Tuple[torch.Tensor]:
        if self.reset_after:
            P1, Q1, D1 = layer.w_hh.factors()
            P2 = Q2 = D2 = None
        else:
            P1, Q1, D1 = layer.w_hh.factors(slice(0, 2))
            P2, Q2, D2 = layer.w_hh.factors(slice(2, 3))
        return (self._run(gru_scan, gi, parts[0], P1, Q1, D1, P2, Q2, D2, layer.b_hh),)


class LowRankLSTM(_PassthroughRNN):
    """Low-rank passthrough LSTM: (B, L, d_model) -> (B, L, d_model), state (h, c), each (num_layers, B, n).

    Gates [i, f, g, o] = U x + W h + b as torch.nn.LSTM; the forget-gate bias starts at `forget_bias`.
    """

    gates, gate_bias_index = 4, 1
    state_tuple = True

    def __init__(self, d_model: int, *, hidden_size: Optional[int] = None, rank: Optional[int] = None,
                 parametrization: str = "lowrank_diag", tie_right: bool = False, input_rank: Optional[int] = None,
                 num_layers: int = 1, dropout: float = 0.0, forget_bias: float = 1.0, script: Optional[bool] = None):
        super().__init__(d_model, hidden_size, rank, parametrization, tie_right, input_rank, num_layers, dropout,
                         forget_bias, script)

    def _scan(self, layer: PassthroughLayer, gi: torch.Tensor, parts: List[torch.Tensor]
              ) -> Tuple[torch.Tensor, torch.Tensor]:
        P, Q, D = layer.w_hh.factors()
        return self._run(lstm_scan, gi + layer.b_hh, parts[0], parts[1], P, Q, D)
