"""White-box attacks on the input site (float input or token embeddings): FGSM and PGD in L-inf and L2 balls.

For L2 the ball radius is `eps * sqrt(L C)` per sample (and per document of a pair): the L2 ball that
contains the L-inf ball of radius eps, so that a level means the same per-element size in both norms.
"""
from __future__ import annotations

import math
from typing import Callable, List, Optional, Sequence

import torch
import torch.nn.functional as F

from .noise import check_level
from .site import InputSite

NORMS = ("linf", "l2")
Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def l2_radius(eps: float, value: torch.Tensor) -> float:
    """Radius of the L2 ball for `eps` on a (B, L, C) site: eps sqrt(L C)."""
    return eps * math.sqrt(value[0].numel())


def _norms(d: torch.Tensor) -> torch.Tensor:
    """Per-sample L2 norms of (B, ...) as (B, 1, ..., 1)."""
    return d.flatten(1).norm(dim=1).clamp_min(1e-12).reshape(-1, *([1] * (d.dim() - 1)))


def project(delta: torch.Tensor, radius: float, norm: str) -> torch.Tensor:
    """Project each sample of delta (B, ...) onto the `norm` ball of `radius` around 0."""
    if norm == "linf":
        return delta.clamp(-radius, radius)
    return delta * (radius / _norms(delta)).clamp(max=1.0)


def _loss_grads(site: InputSite, deltas: Sequence[torch.Tensor], y: torch.Tensor, loss_fn: Loss) -> List[torch.Tensor]:
    deltas = [d.detach().requires_grad_(True) for d in deltas]
    with torch.enable_grad():
        loss = loss_fn(site.logits([v + d for v, d in zip(site.values, deltas)]), y)
        return list(torch.autograd.grad(loss, deltas))


def fgsm(site: InputSite, y: torch.Tensor, eps: float, loss_fn: Loss = F.cross_entropy) -> List[torch.Tensor]:
    """One signed-gradient step: v + eps sign(grad_v loss) for each site tensor v."""
    eps = check_level(eps, "eps")
    if eps == 0:
        return list(site.values)
    grads = _loss_grads(site, [torch.zeros_like(v) for v in site.values], y, loss_fn)
    return [v + eps * g.sign() for v, g in zip(site.values, grads)]


def _random_start(v: torch.Tensor, radius: float, norm: str, generator: Optional[torch.Generator]) -> torch.Tensor:
    if norm == "linf":
        return (2 * torch.rand(v.shape, generator=generator, device=v.device, dtype=v.dtype) - 1) * radius
    d = torch.randn(v.shape, generator=generator, device=v.device, dtype=v.dtype)
    r = torch.rand((v.shape[0],) + (1,) * (v.dim() - 1), generator=generator, device=v.device, dtype=v.dtype)
    return d / _norms(d) * radius * r


def pgd(site: InputSite, y: torch.Tensor, eps: float, norm: str = "linf", steps: int = 10,
        alpha: Optional[float] = None, random_start: bool = True, generator: Optional[torch.Generator] = None,
        loss_fn: Loss = F.cross_entropy) -> List[torch.Tensor]:
    """Projected gradient ascent on the loss inside the `norm` ball (radius eps, or l2_radius(eps) for "l2").

    Step size alpha (default 2.5 radius / steps); L-inf steps along sign(grad), L2 along grad / ||grad||."""
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {list(NORMS)}, got {norm!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    eps = check_level(eps, "eps")
    if eps == 0:
        return list(site.values)
    radii = [eps if norm == "linf" else l2_radius(eps, v) for v in site.values]
    deltas = [_random_start(v, r, norm, generator) if random_start else torch.zeros_like(v)
              for v, r in zip(site.values, radii)]
    for _ in range(steps):
        grads = _loss_grads(site, deltas, y, loss_fn)
        new = []
        for d, g, r in zip(deltas, grads, radii):
            a = 2.5 * r / steps if alpha is None else alpha
            step = g.sign() if norm == "linf" else g / _norms(g)
            new.append(project(d + a * step, r, norm))
        deltas = new
    return [v + d for v, d in zip(site.values, deltas)]
