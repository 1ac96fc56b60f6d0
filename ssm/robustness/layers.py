"""Finding a model's sequence layers and reading their step sizes through the public layer API."""
from __future__ import annotations

import math
from typing import List, Optional, Tuple

import torch
from torch import nn

from ..layers import SequenceLayer, get


def sequence_layers(model: nn.Module) -> List[Tuple[str, SequenceLayer]]:
    """(name, layer) of every outermost SequenceLayer of `model`, in module order."""
    found: List[Tuple[str, SequenceLayer]] = []
    for name, m in model.named_modules():
        if isinstance(m, SequenceLayer) and not any(name.startswith(n + ".") for n, _ in found):
            found.append((name, m))
    return found


def has_transfer(layer: nn.Module) -> bool:
    """True for SSM layers: they expose transfer_function(s, rate) and step_sizes(rate)."""
    return callable(getattr(layer, "transfer_function", None)) and callable(getattr(layer, "step_sizes", None))


def layer_kind(layer: nn.Module) -> str:
    """The layer's class name, used in messages and tables."""
    return type(layer).__name__


def step_sizes(layer: nn.Module, rate: Optional[float] = None) -> torch.Tensor:
    """The layer's step sizes (detached): (H,) for the S4 family, (P',) for S5; `rate` None = the layer's default."""
    dt = layer.step_sizes() if rate is None else layer.step_sizes(rate)
    return dt.detach()


def channel_steps(layer: nn.Module, H: int, rate: Optional[float] = None) -> torch.Tensor:
    """One step size per input channel: (H,). Layers with one dt per channel use it; layers with one dt per
    state (S5) use the geometric mean of their step sizes for every channel; RNNs (no step size) use 1."""
    if not callable(getattr(layer, "step_sizes", None)):
        return torch.ones(H, dtype=torch.float64)
    dt = step_sizes(layer, rate).to(torch.float64).reshape(-1)
    if not isinstance(layer, get("s5")) and dt.numel() == H:  # S5 and S5-PTD: one dt per state, whatever P' is
        return dt
    return torch.full((H,), math.exp(float(dt.log().mean())), dtype=torch.float64, device=dt.device)


def state_size(layer: nn.Module) -> int:
    """The size N of the HiPPO matrix the layer's SSM was initialised from: d_state (per block for S5)."""
    N = int(getattr(layer, "d_state"))
    return N // int(getattr(layer, "blocks", 1) or 1)
