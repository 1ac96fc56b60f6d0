"""Argument checks shared by every layer: one policy for bad input.

Shapes and values that are out of range raise ValueError; arguments of the wrong type or dtype raise TypeError.
Every message reads "<argument> must ..., got <received>". Checks that read tensor values (finiteness of inputs
and states, the range of `lengths` on a GPU) make the device wait for the host, so they are opt-in: set the
environment variable SSM_CHECK_FINITE=1 or call `set_checks(finite=True)`. The default forward never syncs.
"""
from __future__ import annotations

import math
import numbers
import os
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import torch


def finite_from_env(environ: Mapping[str, str]) -> bool:
    """Whether SSM_CHECK_FINITE in `environ` switches the finiteness checks on (1/true/yes/on)."""
    return environ.get("SSM_CHECK_FINITE", "").strip().lower() in ("1", "true", "yes", "on")


_CHECKS: Dict[str, bool] = {"finite": finite_from_env(os.environ)}
LOW_PRECISION = (torch.float16, torch.bfloat16)


def set_checks(*, finite: Optional[bool] = None) -> None:
    """Switch the value checks on or off: finite=True checks inputs and states for NaN/inf (and `lengths` on GPU)."""
    if finite is not None:
        if not isinstance(finite, bool):
            raise TypeError(f"finite must be a bool, got {finite!r}")
        _CHECKS["finite"] = finite


def checks_enabled() -> Dict[str, bool]:
    """The current value-check switches, e.g. {"finite": False}."""
    return dict(_CHECKS)


def _value_checks() -> bool:
    return _CHECKS["finite"] and not torch.compiler.is_compiling()


def describe(x: Any) -> str:
    """A short description of a received value: a tensor's shape, else its type name."""
    return str(tuple(x.shape)) if isinstance(x, torch.Tensor) else type(x).__name__


def check_int(name: str, value: Any, low: int = 1, high: Optional[int] = None) -> None:
    """Raise TypeError unless `value` is an int (not a bool), ValueError unless it lies in [low, high]."""
    bound = f">= {low}" if high is None else f"in [{low}, {high}]"
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int {bound}, got {value!r}")
    if value < low or (high is not None and value > high):
        raise ValueError(f"{name} must be an int {bound}, got {value!r}")


def check_choice(name: str, value: Any, choices: Sequence[Any]) -> None:
    """Raise ValueError unless `value` is one of `choices`."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")


def check_dtype(x: torch.Tensor, expected: torch.dtype, name: str) -> None:
    """Raise TypeError unless x has the layer's floating dtype (fp16/bf16/fp32 into fp32 accepted under autocast)."""
    if x.dtype == expected:
        return
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating tensor of dtype {expected}, got {x.dtype}")
    if torch.is_autocast_enabled(x.device.type) and expected == torch.float32 and x.dtype in LOW_PRECISION:
        return
    raise TypeError(f"{name} must have the layer's dtype {expected}, got {x.dtype} (convert one of them with "
                    f".to(dtype), or run float16/bfloat16 input under torch.autocast)")


def check_finite(x: torch.Tensor, name: str) -> None:
    """Raise ValueError if x holds NaN or inf; only when finiteness checks are on (they sync the device)."""
    if _value_checks() and not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} must be finite, got NaN or inf values")


def check_sequence(x: Any, width: int, dtype: torch.dtype, name: str = "x") -> None:
    """Validate a (B, L, width) input of the layer's dtype with L >= 1 (B = 0 is allowed)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a tensor of shape (batch, length, d_model={width}), got {describe(x)}")
    if x.dim() != 3:
        raise ValueError(f"{name} must have shape (batch, length, d_model={width}), got {describe(x)}")
    if x.shape[-1] != width:
        raise ValueError(f"{name} must have last dimension d_model={width}, got shape {describe(x)}")
    if x.shape[1] < 1:
        raise ValueError(f"{name} must have length >= 1, got shape {describe(x)}")
    check_dtype(x, dtype, name)
    check_finite(x, name)


def check_step_input(x: Any, width: int, dtype: torch.dtype, name: str = "x_t") -> None:
    """Validate a (B, width) single-step input of the layer's dtype."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a tensor of shape (batch, d_model={width}), got {describe(x)}")
    if x.dim() != 2 or x.shape[-1] != width:
        raise ValueError(f"{name} must have shape (batch, d_model={width}), got {describe(x)}")
    check_dtype(x, dtype, name)
    check_finite(x, name)


def check_state(state: Any, shape: Tuple[int, ...], dtype: torch.dtype, device: torch.device,
                name: str = "state") -> None:
    """Validate a state tensor: its shape (ValueError), dtype (TypeError), device (ValueError), finiteness (opt-in)."""
    if not isinstance(state, torch.Tensor):
        raise TypeError(f"{name} must be a tensor of shape {tuple(shape)}, got {describe(state)}")
    if tuple(state.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {describe(state)}")
    if state.dtype != dtype:
        raise TypeError(f"{name} must have dtype {dtype} (as default_state gives), got {state.dtype}")
    if state.device.type != device.type:
        raise ValueError(f"{name} must be on the input's device {device}, got {state.device}")
    check_finite(state, name)


def check_rate(rate: Any, name: str = "rate") -> float:
    """A positive finite real number (TypeError for other types, ValueError for inf, NaN, <= 0) -> float."""
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real):
        raise TypeError(f"{name} must be a positive finite real number, got {type(rate).__name__} {rate!r}")
    if not (math.isfinite(rate) and rate > 0):
        raise ValueError(f"{name} must be a positive finite number, got {rate!r}")
    return float(rate)


def check_unit_rate(rate: Any, layer: str) -> None:
    """For layers without a time step: `rate` must be 1."""
    if check_rate(rate) != 1.0:
        raise ValueError(f"rate must be 1.0 for {layer} (the layer has no time step to rescale), got {rate!r}")


def check_lengths(lengths: Any, batch: int, length: int, device: torch.device) -> Optional[torch.Tensor]:
    """None, or an integer tensor (B,) with values in [0, L] -> int64 on `device`.

    The range is checked when `lengths` lives on the CPU (no device sync) or when value checks are on;
    otherwise out-of-range values are clamped where they index.
    """
    if lengths is None:
        return None
    if not isinstance(lengths, torch.Tensor):
        raise TypeError(f"lengths must be an integer tensor of shape ({batch},), got {describe(lengths)}")
    if lengths.is_floating_point() or lengths.is_complex() or lengths.dtype == torch.bool:
        raise TypeError(f"lengths must be an integer tensor of shape ({batch},), got dtype {lengths.dtype}")
    if tuple(lengths.shape) != (batch,):
        raise ValueError(f"lengths must have shape ({batch},) (one length per example), got {describe(lengths)}")
    if not torch.compiler.is_compiling() and (lengths.device.type == "cpu" or _CHECKS["finite"]) and batch > 0:
        low, high = int(lengths.min()), int(lengths.max())
        if low < 0 or high > length:
            raise ValueError(f"lengths must lie in [0, L={length}], got values from {low} to {high}")
    return lengths.to(device=device, dtype=torch.long)


def check_batch_size(batch_size: Any) -> None:
    """default_state's batch size: an int >= 0."""
    check_int("batch_size", batch_size, low=0)


def check_state_dtype(dtype: Any) -> None:
    """default_state's dtype: None or a floating/complex torch.dtype."""
    if dtype is not None and not (isinstance(dtype, torch.dtype) and (dtype.is_floating_point or dtype.is_complex)):
        raise TypeError(f"dtype must be None or a floating torch.dtype, got {dtype!r}")
