"""The PTD paper's per-layer Fourier-mode noise: u <- u + level a cos(omega k dt_h) at every sequence layer's input."""
from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch import nn

from .layers import channel_steps, sequence_layers
from .noise import check_level, cosine_mode


class LayerFourierNoise:
    """Context manager: forward pre-hooks add level a cos(omega k dt_h) to the input u (B, L, H) of every
    sequence layer of `model`; a ~ U[0, 1) per sample and channel, drawn at each call; dt_h the layer's own
    step size of channel h at the call's `rate` (see `channel_steps`: S5 uses the geometric mean of its
    per-state steps, RNNs dt = 1 so omega is per step). `calls` counts the hooked layer calls."""

    def __init__(self, model: nn.Module, omega: float, level: float, generator: Optional[torch.Generator] = None):
        if not (isinstance(omega, (int, float)) and math.isfinite(omega)):
            raise ValueError(f"omega must be a finite number, got {omega!r}")
        self.layers = sequence_layers(model)
        if not self.layers:
            raise ValueError(f"model has no sequence layer (ssm.layers.SequenceLayer) to hook: {type(model).__name__}")
        self.omega, self.level, self.generator = float(omega), check_level(level), generator
        self.calls = 0
        self._handles: List[Any] = []

    def _hook(self, layer: nn.Module, args: Tuple[Any, ...], kwargs: Dict[str, Any]):
        x = args[0] if args else kwargs["x"]
        B, L, H = x.shape
        dt = channel_steps(layer, H, kwargs.get("rate")).to(x.device)
        a = torch.rand((B, 1, H), generator=self.generator, device=x.device, dtype=x.dtype)
        x = x + self.level * a * cosine_mode(L, self.omega, dt, x.device, x.dtype)
        self.calls += 1
        if args:
            return (x,) + tuple(args[1:]), kwargs
        return args, {**kwargs, "x": x}

    def __enter__(self) -> "LayerFourierNoise":
        if self.level > 0:
            self._handles = [layer.register_forward_pre_hook(self._hook, with_kwargs=True) for _, layer in self.layers]
        return self

    def __exit__(self, *exc: Any) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []
