"""Sequence layers and their registry: `build(name, d_model=..., **kwargs)`."""
from __future__ import annotations

import importlib
from typing import Any, Dict

from .base import SequenceLayer

# name -> "module:Class"; imported lazily so a layer's dependencies load only when it is used
REGISTRY: Dict[str, str] = {
    "s4": "ssm.layers.s4:S4",
    "s4d": "ssm.layers.s4d:S4D",
    "dss": "ssm.layers.s4d:DSS",
    "s4-ptd": "ssm.layers.s4d:S4PTD",
    "s5": "ssm.layers.s5:S5",
    "s5-ptd": "ssm.layers.s5:S5PTD",
    "lowrank-gru": "ssm.layers.passthrough:LowRankGRU",
    "lowrank-lstm": "ssm.layers.passthrough:LowRankLSTM",
    "cfc": "ssm.layers.cfc:CfC",
}


def get(name: str) -> type:
    """The layer class registered under `name`."""
    if name not in REGISTRY:
        raise ValueError(f"layer name must be one of {sorted(REGISTRY)}, got {name!r}")
    module, cls = REGISTRY[name].split(":")
    return getattr(importlib.import_module(module), cls)


def build(name: str, d_model: int, **kwargs: Any) -> SequenceLayer:
    """Instantiate the layer registered under `name` with width `d_model`."""
    return get(name)(d_model=d_model, **kwargs)


__all__ = ["REGISTRY", "SequenceLayer", "build", "get"]
