"""Sequence layers and their registry: `build(name, d_model=..., **kwargs)`; the equations in `functional`."""
from __future__ import annotations

from .base import SequenceLayer
from .checks import checks_enabled, set_checks
from .registry import CLASS_NAMES, REGISTRY, build, get

__all__ = ["REGISTRY", "CLASS_NAMES", "SequenceLayer", "build", "get", "set_checks", "checks_enabled"]
