"""Random and deterministic input perturbations of a sequence batch x: (B, L, C) -> (B, L, C).

Each function takes a `level` >= 0 (level 0 returns x unchanged) and, where it draws random numbers, an
optional torch.Generator so that an evaluation is reproducible.
"""
from __future__ import annotations

import math
from typing import Optional, Union

import torch

Steps = Union[float, torch.Tensor]


def check_level(level: float, name: str = "level", upper: Optional[float] = None) -> float:
    """Return `level` as a float, or raise ValueError unless it is finite, >= 0 (and <= upper)."""
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not math.isfinite(level) or level < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {level!r}")
    if upper is not None and level > upper:
        raise ValueError(f"{name} must be <= {upper}, got {level!r}")
    return float(level)


def _check_x(x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 3 or not x.is_floating_point():
        got = f"{tuple(x.shape)} {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x must be a floating tensor of shape (batch, length, channels), got {got}")


def _uniform(shape, x: torch.Tensor, generator: Optional[torch.Generator]) -> torch.Tensor:
    return torch.rand(shape, generator=generator, device=x.device, dtype=x.dtype)


def cosine_mode(L: int, omega: float, dt: Steps = 1.0, device=None, dtype=torch.float32) -> torch.Tensor:
    """cos(omega k dt_c) for k = 0..L-1: dt a number or (C,) per channel -> (L, 1) or (L, C)."""
    dt = torch.as_tensor(dt, device=device, dtype=torch.float64).reshape(1, -1)
    k = torch.arange(L, device=device, dtype=torch.float64).unsqueeze(-1)
    return torch.cos(omega * k * dt).to(dtype)  # phase in float64: omega k dt reaches 1e5 rad at L = 16k


def fourier_mode(x: torch.Tensor, omega: float, level: float, dt: Steps = 1.0,
                 generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """x + level a cos(omega k dt): one Fourier mode, amplitude a ~ U[0, 1) per sample and channel; x (B, L, C).

    omega is in radians per unit time and dt the time step (per channel if a (C,) tensor); with dt = 1,
    omega is the frequency in radians per step."""
    _check_x(x)
    level = check_level(level)
    if not (isinstance(omega, (int, float)) and math.isfinite(omega)):
        raise ValueError(f"omega must be a finite number, got {omega!r}")
    if level == 0:
        return x
    B, L, C = x.shape
    a = _uniform((B, 1, C), x, generator)
    return x + level * a * cosine_mode(L, omega, dt, x.device, x.dtype)


def gaussian(x: torch.Tensor, level: float, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """x + level * N(0, 1) noise, independent per element; x (B, L, C)."""
    _check_x(x)
    level = check_level(level)
    if level == 0:
        return x
    return x + level * torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)


def time_shift(x: torch.Tensor, level: float) -> torch.Tensor:
    """Delay x by round(level L) steps (zeros enter at the start, the end falls off); level in [0, 1]."""
    _check_x(x)
    s = round(check_level(level, upper=1.0) * x.shape[1])
    if s == 0:
        return x
    return torch.cat([torch.zeros_like(x[:, :s]), x[:, : x.shape[1] - s]], dim=1)


def time_warp(x: torch.Tensor, level: float, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Read each sample at warped times tau(t) = (L-1) (t/(L-1))^g, log g ~ U[-level, level], by linear interpolation.

    The warp is monotone and keeps both end points; x (B, L, C)."""
    _check_x(x)
    level = check_level(level)
    B, L, C = x.shape
    if level == 0 or L < 2:
        return x
    g = torch.exp(level * (2 * _uniform((B, 1), x, generator) - 1))  # (B, 1)
    grid = torch.linspace(0, 1, L, device=x.device, dtype=x.dtype).unsqueeze(0)
    tau = (L - 1) * grid ** g  # (B, L)
    lo = tau.floor().clamp(max=L - 2)
    w = (tau - lo).unsqueeze(-1)
    lo = lo.long().unsqueeze(-1).expand(B, L, C)
    return (1 - w) * x.gather(1, lo) + w * x.gather(1, lo + 1)
