"""Argument checks of the models: ValueError/TypeError naming the argument, the expected and the received value."""
from __future__ import annotations

import inspect
from typing import Any, Callable, Dict, Optional

import torch

from ..checks import fraction, positive_int  # noqa: F401 - re-exported for the models
from ..layers import REGISTRY, get
from ..layers.checks import check_rate  # noqa: F401 - re-exported for the models


def layer_keywords(layer: str) -> Dict[str, inspect.Parameter]:
    """The constructor keywords of registry layer `layer` other than d_model (those it forwards included)."""
    cls = get(layer)
    params: Dict[str, inspect.Parameter] = {}
    for klass in cls.__mro__:  # follow **kwargs up to the parent that finally takes them
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        sig = inspect.signature(init).parameters
        for name, p in sig.items():
            if name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
                params.setdefault(name, p)
        if not any(p.kind == p.VAR_KEYWORD for p in sig.values()):
            break
    params.pop("d_model", None)
    return params


def check_layer_kwargs(layer: str, kwargs: Any, name: str = "layer_kwargs") -> Dict[str, Any]:
    """`kwargs` as a dict if every key is a constructor keyword of registry layer `layer` (names checked only)."""
    if layer not in REGISTRY:
        raise ValueError(f"layer must be one of {sorted(REGISTRY)}, got {layer!r}")
    if kwargs is None:
        return {}
    if not isinstance(kwargs, dict):
        raise TypeError(f"{name} must be a dict of {layer!r} constructor keywords, got {type(kwargs).__name__} "
                        f"{kwargs!r}")
    if "d_model" in kwargs:
        raise TypeError(f"{name} must not set d_model (the model's d_model is used for every layer), "
                        f"got d_model={kwargs['d_model']!r}")
    valid = layer_keywords(layer)
    unknown = [k for k in kwargs if k not in valid]
    if unknown:
        raise TypeError(f"{name}: unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} for "
                        f"layer {layer!r} ({REGISTRY[layer].replace(':', '.')}); valid keys: {', '.join(valid)}")
    return dict(kwargs)


def require(ok: torch.Tensor, message: Callable[[], str]) -> None:
    """Raise ValueError(message()) unless the bool tensor `ok` is all true. On CPU this costs no device sync; on an
    accelerator and under torch.compile it is an asynchronous device assertion (no host sync)."""
    if ok.device.type == "cpu" and not torch.compiler.is_compiling():
        if not bool(ok.all()):
            raise ValueError(message())
    else:
        torch._assert_async(ok.all(), "invalid lengths or token ids (the eager model on the CPU says which)")


def check_lengths(lengths: Optional[torch.Tensor], batch: int, length: int, minimum: int) -> None:
    """Raise unless `lengths` is None or a (batch,) integer tensor with values in [minimum, length]."""
    if lengths is None:
        return
    if not isinstance(lengths, torch.Tensor):
        raise TypeError(f"lengths must be a Tensor of (batch,) ints or None, got {type(lengths).__name__}")
    if lengths.dtype == torch.bool or lengths.is_floating_point() or lengths.is_complex():
        raise TypeError(f"lengths must hold ints, got dtype {lengths.dtype}")
    if tuple(lengths.shape) != (batch,):
        raise ValueError(f"lengths must have shape ({batch},) (one per sequence of x), got {tuple(lengths.shape)}")
    require((lengths >= minimum) & (lengths <= length),
            lambda: f"lengths must be in [{minimum}, {length}] (>= {minimum} and at most the padded length L = "
                    f"{length}), got {lengths.tolist()}")
