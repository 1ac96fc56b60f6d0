"""Connectivity for CfC: neuron wirings (FullyConnected, Random, NCP, AutoNCP) and low-rank sparse matrices.

A `Wiring` is a directed graph over `units` neurons split into ordered layers: `adjacency[src, dest]` and
`sensory[input, dest]` hold polarities in {-1, 0, +1} (CfC uses only |polarity|, i.e. whether a synapse exists).
The wired CfC runs one cell per layer; layer l reads layer l-1 (or the input) through `input_mask(l)` and its own
previous state through `recurrent_mask(l)` — the within-layer synapses, which the ncps library replaces by ones.

`LowRankSparse(rank, sparsity)` parametrises a recurrent matrix as W_rec = (W1 W2) * M (Tumma et al. 2024):
W1 = U_r S_r^(1/2), W2 = S_r^(1/2) V_r^T from the rank-r SVD of an initial matrix, M a fixed random 0/1 mask
(a buffer) zeroing a fraction `sparsity`. W1 W2 has rank <= r; the Hadamard mask generally raises the rank of the
product (rank(A * M) <= rank(A) rank(M)), so the rank bound holds for the factor product, the zeros for the mask.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Union

import torch
from torch import nn


def _check(name: str, ok: bool, expected: str, value: Any) -> None:
    """Raise ValueError naming `name` unless `ok`."""
    if not ok:
        raise ValueError(f"{name} must be {expected}, got {value!r}")


def _is_int(v: Any, low: int = 1) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= low


def _polarity(gen: torch.Generator, shape, p_negative: float) -> torch.Tensor:
    """Random polarities in {-1, +1}, -1 with probability p_negative."""
    return torch.where(torch.rand(shape, generator=gen) < p_negative, -1, 1).to(torch.int8)


class Wiring:
    """Neurons in ordered layers with recurrent (`adjacency`, units x units) and sensory (input x units) synapses."""

    def __init__(self, units: int, output_dim: Optional[int] = None, seed: int = 0):
        _check("units", _is_int(units), "a positive int", units)
        output_dim = units if output_dim is None else output_dim
        _check("output_dim", _is_int(output_dim) and output_dim <= units, f"an int in [1, units={units}]", output_dim)
        self.units, self.output_dim, self.seed = units, output_dim, seed
        self.gen = torch.Generator().manual_seed(seed)
        self.adjacency = torch.zeros(units, units, dtype=torch.int8)
        self.sensory: Optional[torch.Tensor] = None
        self.input_dim: Optional[int] = None

    @classmethod
    def from_adjacency(cls, adjacency: torch.Tensor, sensory: torch.Tensor, layers: List[List[int]],
                       output_dim: int) -> "Wiring":
        """A built wiring from given adjacency (units x units), sensory (input x units) and layer lists."""
        w = cls(adjacency.shape[0], output_dim)
        w.adjacency = torch.as_tensor(adjacency).to(torch.int8).clone()
        w.sensory, w.input_dim = torch.as_tensor(sensory).to(torch.int8).clone(), sensory.shape[0]
        w.layers = lambda: [list(map(int, ids)) for ids in layers]  # type: ignore[method-assign]
        return w

    # --- structure -------------------------------------------------------------------------------------------
    def layers(self) -> List[List[int]]:
        """Neuron ids of each layer, in the order the cell runs them; the last layer holds the motor neurons."""
        return [list(range(self.units))]

    @property
    def num_layers(self) -> int:
        return len(self.layers())

    def is_built(self) -> bool:
        return self.input_dim is not None

    def build(self, input_dim: int) -> "Wiring":
        """Draw the sensory synapses for `input_dim` inputs (once; a different input_dim later is an error)."""
        _check("input_dim", _is_int(input_dim), "a positive int", input_dim)
        if self.input_dim is not None:
            _check("input_dim", input_dim == self.input_dim, f"{self.input_dim} (the wiring is built)", input_dim)
            return self
        self.input_dim = input_dim
        self.sensory = torch.zeros(input_dim, self.units, dtype=torch.int8)
        self._build_sensory()
        return self

    def _build_sensory(self) -> None:
        self.sensory[:] = _polarity(self.gen, self.sensory.shape, 1 / 3)

    # --- masks for the wired cell (rows = destination neurons of layer l) ------------------------------------
    def input_mask(self, l: int) -> torch.Tensor:
        """0/1 float mask (n_l, n_in_l): which inputs (sensory for l = 0, else layer l-1) feed layer l."""
        if not self.is_built():
            raise ValueError("wiring must be built with wiring.build(input_dim) first, got an unbuilt wiring")
        dest = self.layers()[l]
        src = self.sensory if l == 0 else self.adjacency[self.layers()[l - 1]]
        return (src[:, dest] != 0).float().T.contiguous()

    def recurrent_mask(self, l: int, self_loops: bool = True) -> torch.Tensor:
        """0/1 float mask (n_l, n_l) of the synapses within layer l (plus each neuron's own state if self_loops)."""
        ids = self.layers()[l]
        m = (self.adjacency[ids][:, ids] != 0).float().T
        return torch.maximum(m, torch.eye(len(ids))) if self_loops else m.contiguous()

    @property
    def synapse_count(self) -> int:
        return int((self.adjacency != 0).sum())

    def __repr__(self) -> str:
        return f"{type(self).__name__}(units={self.units}, output_dim={self.output_dim}, layers={self.num_layers})"


class FullyConnected(Wiring):
    """Every neuron and input connects to every neuron (self-connections optional)."""

    def __init__(self, units: int, output_dim: Optional[int] = None, self_connections: bool = True, seed: int = 0):
        super().__init__(units, output_dim, seed)
        self.adjacency[:] = _polarity(self.gen, (units, units), 1 / 3)
        if not self_connections:
            self.adjacency.fill_diagonal_(0)


class Random(Wiring):
    """A random fraction (1 - sparsity) of all recurrent and of all sensory synapses."""

    def __init__(self, units: int, output_dim: Optional[int] = None, sparsity: float = 0.0, seed: int = 0):
        _check("sparsity", isinstance(sparsity, (int, float)) and 0.0 <= sparsity < 1.0, "in [0, 1)", sparsity)
        super().__init__(units, output_dim, seed)
        self.sparsity = float(sparsity)
        self.adjacency[:] = self._random_synapses(units, units)

    def _random_synapses(self, n_src: int, n_dest: int) -> torch.Tensor:
        keep = round(n_src * n_dest * (1.0 - self.sparsity))
        flat = torch.zeros(n_src * n_dest, dtype=torch.int8)
        flat[torch.randperm(n_src * n_dest, generator=self.gen)[:keep]] = 1
        return flat.view(n_src, n_dest) * _polarity(self.gen, (n_src, n_dest), 1 / 3)

    def _build_sensory(self) -> None:
        self.sensory[:] = self._random_synapses(*self.sensory.shape)


class NCP(Wiring):
    """Neural circuit policy: sensory -> inter -> command (recurrent) -> motor, with the given fan-outs/fan-ins.

    Neuron ids: motor 0..m-1, command m..m+c-1, inter after; the cell runs layers [inter, command, motor].
    """

    def __init__(self, inter_neurons: int, command_neurons: int, motor_neurons: int, sensory_fanout: int,
                 inter_fanout: int, recurrent_command_synapses: int, motor_fanin: int, seed: int = 22222):
        for name, v in (("inter_neurons", inter_neurons), ("command_neurons", command_neurons),
                        ("motor_neurons", motor_neurons), ("sensory_fanout", sensory_fanout),
                        ("inter_fanout", inter_fanout), ("motor_fanin", motor_fanin)):
            _check(name, _is_int(v), "a positive int", v)
        _check("recurrent_command_synapses", _is_int(recurrent_command_synapses, 0), "an int >= 0",
               recurrent_command_synapses)
        _check("sensory_fanout", sensory_fanout <= inter_neurons, f"<= inter_neurons={inter_neurons}", sensory_fanout)
        _check("inter_fanout", inter_fanout <= command_neurons, f"<= command_neurons={command_neurons}", inter_fanout)
        _check("motor_fanin", motor_fanin <= command_neurons, f"<= command_neurons={command_neurons}", motor_fanin)
        super().__init__(inter_neurons + command_neurons + motor_neurons, motor_neurons, seed)
        m, c = motor_neurons, command_neurons
        self.motor, self.command = list(range(m)), list(range(m, m + c))
        self.inter = list(range(m + c, self.units))
        self.sensory_fanout, self.inter_fanout, self.motor_fanin = sensory_fanout, inter_fanout, motor_fanin
        self._connect(self.adjacency, self.inter, self.command, inter_fanout, fan="out")
        for _ in range(recurrent_command_synapses):
            src, dest = (self.command[int(i)] for i in torch.randint(c, (2,), generator=self.gen))
            self.adjacency[src, dest] = _polarity(self.gen, (), 0.5)
        self._connect(self.adjacency, self.command, self.motor, motor_fanin, fan="in")

    def layers(self) -> List[List[int]]:
        return [self.inter, self.command, self.motor]

    def _build_sensory(self) -> None:
        self._connect(self.sensory, list(range(self.input_dim)), self.inter, self.sensory_fanout, fan="out")

    def _connect(self, adj: torch.Tensor, src: List[int], dest: List[int], k: int, fan: str) -> None:
        """Each src gets k random targets (fan="out"; or each dest k random sources, fan="in"); then every
        neuron on the other side left unconnected gets the mean number of synapses, so none is isolated."""
        outer, inner = (src, dest) if fan == "out" else (dest, src)
        for a in outer:
            for b in self._choose(inner, k):
                adj[(a, b) if fan == "out" else (b, a)] = _polarity(self.gen, (), 0.5)
        sub = adj[src][:, dest] != 0
        hit = sub.any(0) if fan == "out" else sub.any(1)
        mean = min(max(len(outer) * k // len(inner), 1), len(outer))
        for j in (i for i, h in enumerate(hit.tolist()) if not h):
            for a in self._choose(outer, mean):
                adj[(a, inner[j]) if fan == "out" else (inner[j], a)] = _polarity(self.gen, (), 0.5)

    def _choose(self, pool: List[int], k: int) -> List[int]:
        return [pool[int(i)] for i in torch.randperm(len(pool), generator=self.gen)[:k]]


class AutoNCP(NCP):
    """An NCP sized from the total `units`, the `output_size` motor neurons and a `sparsity` in [0.1, 1)."""

    def __init__(self, units: int, output_size: int, sparsity: float = 0.5, seed: int = 22222):
        _check("units", _is_int(units, 4), "an int >= 4", units)
        _check("output_size", _is_int(output_size) and output_size < units - 2, f"an int in [1, units - 3]",
               output_size)
        _check("sparsity", isinstance(sparsity, (int, float)) and 0.1 <= sparsity < 1.0, "in [0.1, 1)", sparsity)
        density = 1.0 - sparsity
        command = max(int(0.4 * (units - output_size)), 1)
        inter = units - output_size - command
        super().__init__(inter, command, output_size, max(int(inter * density), 1), max(int(command * density), 1),
                         max(int(command * density * 2), 1), max(int(command * density), 1), seed)


class LowRankSparse:
    """Spec of a low-rank sparse recurrent matrix W_rec = (W1 W2) * M; `build(init)` makes the module."""

    def __init__(self, rank: int, sparsity: float = 0.5, seed: int = 0):
        _check("rank", _is_int(rank), "a positive int", rank)
        _check("sparsity", isinstance(sparsity, (int, float)) and 0.0 <= sparsity < 1.0, "in [0, 1)", sparsity)
        self.rank, self.sparsity, self.seed = rank, float(sparsity), seed

    def mask(self, shape) -> torch.Tensor:
        """Fixed random 0/1 float mask of `shape` with round(sparsity * numel) zeros."""
        n = shape[0] * shape[1]
        m = torch.ones(n)
        m[torch.randperm(n, generator=torch.Generator().manual_seed(self.seed))[: round(self.sparsity * n)]] = 0.0
        return m.view(*shape)

    def build(self, init: torch.Tensor) -> "LowRankSparseWeight":
        """The module for the (out, in) matrix `init` (factored by its rank-r SVD)."""
        _check("rank", self.rank <= min(init.shape), f"<= min{tuple(init.shape)}", self.rank)
        return LowRankSparseWeight(init, self.rank, self.mask(init.shape))

    def __repr__(self) -> str:
        return f"LowRankSparse(rank={self.rank}, sparsity={self.sparsity}, seed={self.seed})"


class MaskedWeight(nn.Module):
    """A full matrix W (out, in), multiplied by a fixed 0/1 mask buffer when one is given."""

    def __init__(self, init: torch.Tensor, mask: Optional[torch.Tensor] = None):
        super().__init__()
        self.weight = nn.Parameter(init.clone())
        self.register_buffer("mask", None if mask is None else mask.to(init.dtype))

    def forward(self) -> torch.Tensor:
        """-> the effective (out, in) matrix."""
        return self.weight if self.mask is None else self.weight * self.mask


class LowRankSparseWeight(nn.Module):
    """W_rec = (W1 W2) * M with W1: (out, r), W2: (r, in) from the SVD of `init`, M: fixed 0/1 buffer."""

    def __init__(self, init: torch.Tensor, rank: int, mask: torch.Tensor):
        super().__init__()
        U, S, Vh = torch.linalg.svd(init.detach().double(), full_matrices=False)
        root = S[:rank].sqrt()
        self.W1 = nn.Parameter((U[:, :rank] * root).to(init.dtype))
        self.W2 = nn.Parameter((root.unsqueeze(-1) * Vh[:rank]).to(init.dtype))
        self.register_buffer("mask", mask.to(init.dtype))

    def forward(self) -> torch.Tensor:
        """-> the effective (out, in) matrix."""
        return (self.W1 @ self.W2) * self.mask

    def extra_repr(self) -> str:
        return f"out={self.W1.shape[0]}, in={self.W2.shape[1]}, rank={self.W1.shape[1]}"


WIRINGS = {"fully_connected": FullyConnected, "random": Random, "ncp": NCP, "autoncp": AutoNCP,
           "lowrank_sparse": LowRankSparse}


def make_wiring(spec: Union[None, str, Dict[str, Any], Wiring, LowRankSparse],
                units: int) -> Union[None, Wiring, LowRankSparse]:
    """A wiring from a config: None / "full" (dense CfC), a name or {"name": ..., **kwargs}, or an object.

    Neuron wirings that take `units` get the CfC's units unless the config names them.
    """
    if spec is None or spec == "full" or isinstance(spec, (Wiring, LowRankSparse)):
        return None if spec in (None, "full") else spec
    kwargs: Dict[str, Any] = {}
    if isinstance(spec, dict):
        kwargs = dict(spec)
        spec = kwargs.pop("name", None)
    _check("wiring", spec in WIRINGS, f"None, 'full', one of {sorted(WIRINGS)} or a Wiring", spec)
    if spec in ("fully_connected", "random", "autoncp"):
        kwargs.setdefault("units", units)
    if spec == "lowrank_sparse":
        kwargs.setdefault("rank", max(1, units // 4))
    return WIRINGS[spec](**kwargs)
