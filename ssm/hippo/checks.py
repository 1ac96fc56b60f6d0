"""Argument checks shared by the hippo modules: each error names the argument, what it expects and what it got."""
from __future__ import annotations

import numbers
from typing import Sequence

import numpy as np
import torch


def describe(value: object) -> str:
    """`repr` plus the type name, short enough for an error message."""
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(value).__name__})"


def check_choice(name: str, value: object, choices: Sequence[str]) -> str:
    """`value` must be one of the strings in `choices`."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, one of {list(choices)}; got {describe(value)}")
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
    return value


def check_int(name: str, value: object, minimum: int = 1) -> int:
    """`value` must be an int (not a bool, not a float) >= minimum -> int(value)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int >= {minimum}, got {describe(value)}")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {int(value)}")
    return int(value)


def check_even(name: str, value: int, why: str) -> int:
    """`value` must be even (`why` says what needs the pairs)."""
    if value % 2:
        raise ValueError(f"{name} must be even ({why}), got {value}")
    return value


def check_positive(name: str, value: object, upper: float = float("inf"), zero: bool = False) -> float:
    """`value` must be a real number in (0, upper) ([0, upper) with zero=True) -> float(value)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {describe(value)}")
    if not (0 <= value if zero else 0 < value) or not value < upper:
        bound = "" if upper == float("inf") else f" and < {upper}"
        raise ValueError(f"{name} must be {'>=' if zero else '>'} 0{bound}, got {value!r}")
    return float(value)


def as_complex_array(name: str, value: object) -> np.ndarray:
    """Tensor, ndarray, list or number -> complex128 ndarray; rejects non-numeric and non-finite values."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().resolve_conj().numpy()
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as exc:  # ragged lists
        raise TypeError(f"{name} must be a numeric array (tensor, ndarray or list), got {describe(value)}") from exc
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise TypeError(f"{name} must be a numeric array (tensor, ndarray or list), got dtype {array.dtype}")
    if not np.all(np.isfinite(array)):
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        raise ValueError(f"{name} must be finite, got {bad} non-finite entr{'y' if bad == 1 else 'ies'}")
    return array.astype(np.complex128)


def check_shape(name: str, array: np.ndarray, expected: tuple, meaning: str) -> None:
    """`array.shape` must equal `expected` (`meaning` spells it with symbols, e.g. "(N,)")."""
    if array.shape != expected:
        raise ValueError(f"{name} must have shape {meaning} = {expected}, got {tuple(array.shape)}")
