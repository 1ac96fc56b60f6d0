"""Argument checks shared by every package (data, models, training): ValueError/TypeError naming the argument,
the expected and the received value. Depends on nothing else in ssm."""
from __future__ import annotations

from typing import Any


def positive_int(name: str, value: Any, minimum: int = 1) -> int:
    """`value` if it is an int >= `minimum` (bools are not ints here)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int >= {minimum}, got {value!r} ({type(value).__name__})")
    if value < minimum:
        raise ValueError(f"{name} must be a positive int (>= {minimum}), got {value!r}")
    return value


def fraction(name: str, value: Any) -> float:
    """`value` if it is a number in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number in [0, 1), got {value!r} ({type(value).__name__})")
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    return float(value)
