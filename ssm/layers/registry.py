"""The one table of sequence layers: registry name -> "module:Class" (the top-level `ssm.<Class>` names too)."""
from __future__ import annotations

import importlib
from typing import Any, Dict

# imported lazily so that a layer's dependencies load only when it is used
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

# class name -> registry name, e.g. "S4D" -> "s4d"
CLASS_NAMES: Dict[str, str] = {target.split(":")[1]: name for name, target in REGISTRY.items()}


def get(name: str) -> type:
    """The layer class registered under `name`."""
    if name not in REGISTRY:
        raise ValueError(f"layer name must be one of {sorted(REGISTRY)}, got {name!r}")
    module, cls = REGISTRY[name].split(":")
    return getattr(importlib.import_module(module), cls)


def build(name: str, d_model: int, **kwargs: Any):
    """Instantiate the layer registered under `name` with width `d_model`."""
    return get(name)(d_model=d_model, **kwargs)
