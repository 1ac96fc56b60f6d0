"""Transfer-function analysis of a model's SSM layers against the HiPPO-LegS reference, and spike finding.

The reference of size N is G_H(s) = b^T (sI - A_H)^-1 b with A_H the HiPPO-LegS matrix and b = B_H / ||B_H||
(C = B^T, as in the PTD paper). A layer's G_h(s) is its continuous-time transfer function per channel.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import nn

from .. import hippo
from .layers import channel_steps, has_transfer, layer_kind, sequence_layers, state_size

CRITERIA = ("legs", "peak")
DOMAINS = ("continuous", "step")


class NoTransferFunction(ValueError):
    """The model has no layer with a transfer function (an RNN or CfC): a frequency must be given."""


def ssm_layers(model: nn.Module) -> List[Tuple[str, nn.Module]]:
    """(name, layer) of the sequence layers that have a transfer function; NoTransferFunction if there are none."""
    layers = sequence_layers(model)
    found = [(n, l) for n, l in layers if has_transfer(l)]
    if not found:
        kinds = sorted({layer_kind(l) for _, l in layers}) or ["no sequence layer"]
        raise NoTransferFunction(f"the model's layers ({', '.join(kinds)}) have no transfer function, so no spike "
                                 "frequency can be read from them; give the frequency explicitly (--frequency)")
    return found


def frequency_grid(N: int, points: int = 4000, low: float = 1e-2, high: Optional[float] = None) -> torch.Tensor:
    """Log-spaced angular frequencies (points,) float64 from `low` to `high` (default 10 N^2, past every pole)."""
    high = 10.0 * N * N if high is None else high
    return torch.logspace(math.log10(low), math.log10(high), points, dtype=torch.float64)


def legs_reference(N: int, w: torch.Tensor) -> torch.Tensor:
    """G_H(i w) of HiPPO-LegS of size N with B normalised and C = B^T: w (F,) -> (F,) complex128."""
    A, B = hippo.transition("legs", N)
    b = B / B.norm()
    return hippo.transfer_function(A, b, b, 1j * w.to(torch.float64))


def diagonal_spike(N: int, points: int = 20000) -> Tuple[float, float]:
    """(omega, height) of the largest |G_diag(i omega) - G_H(i omega)|, G_diag the diagonal restriction of
    HiPPO-LegS of size N (S4D-LegS's init) with the same b and C = b^T; the spike sits near N^2 / pi."""
    w = frequency_grid(N, points, high=4.0 * N * N)
    lam, bd = hippo.diag_init("legs", N)
    _, B = hippo.transition("legs", N)
    lam, bd = lam.resolve_conj(), (bd / B.norm()).resolve_conj()
    lam_all = torch.cat([lam, lam.conj().resolve_conj()])
    b_all = torch.cat([bd, bd.conj().resolve_conj()])
    G = hippo.transfer_function(lam_all, b_all, b_all.conj().resolve_conj(), 1j * w)
    gap = (G - legs_reference(N, w)).abs()
    i = int(gap.argmax())
    return float(w[i]), float(gap[i])


def layer_response(layer: nn.Module, w: torch.Tensor, rate: Optional[float] = None, chunk: int = 512) -> torch.Tensor:
    """G_h(i w) of every channel: w (F,) -> (H, F) complex128, evaluated in float64 chunks without gradients."""
    device = next(itertools.chain(layer.parameters(), layer.buffers())).device
    s = (1j * w.to(torch.float64)).to(device)
    out = []
    with torch.no_grad():
        for part in s.split(chunk):
            G = layer.transfer_function(part) if rate is None else layer.transfer_function(part, rate)
            out.append(G.to(torch.complex128).cpu())
    return torch.cat(out, dim=-1)


def _window(w: torch.Tensor, decades: float) -> int:
    """Half-width in grid points of +-`decades` on a log-spaced w."""
    return max(1, round(decades / math.log10(float(w[1] / w[0]))))


def local_excess(score: torch.Tensor, w: torch.Tensor, decades: float = 0.15) -> torch.Tensor:
    """score minus its running mean over +-`decades` of a log-spaced w: (..., F) -> (..., F).

    A narrow resonance stands out; a broad change of level (a learned gain, a different roll-off) does not."""
    k = _window(w, decades)
    padded = torch.cat([score[..., :1].expand(*score.shape[:-1], k), score, score[..., -1:].expand(*score.shape[:-1], k)], -1)
    c = torch.nn.functional.pad(padded.cumsum(-1), (1, 0))
    return score - (c[..., 2 * k + 1:] - c[..., : -2 * k - 1]) / (2 * k + 1)


def envelope(mag: torch.Tensor, w: torch.Tensor, decades: float = 0.15) -> torch.Tensor:
    """Running maximum of a magnitude (F,) over +-`decades` of a log-spaced w: fills the reference's notches."""
    k = _window(w, decades)
    return torch.nn.functional.max_pool1d(mag.reshape(1, 1, -1), 2 * k + 1, 1, k).reshape(-1)


def _curve(layer: nn.Module, w: torch.Tensor, criterion: str, rate: Optional[float], local: bool = True) -> torch.Tensor:
    """Per-channel score (H, F) whose maximum over frequency marks the spike. "legs": the local excess of
    log|G_h| over the envelope of the HiPPO-LegS reference's |G_H| (or log|G_h| alone when `local` is False,
    to refine a spike on a short linear grid); "peak": |G_h| / max |G_h|."""
    G = layer_response(layer, w, rate)
    if criterion == "legs":
        logG = G.abs().clamp_min(1e-300).log()
        if not local:
            return logG
        ref = envelope(legs_reference(state_size(layer), w).abs(), w).clamp_min(1e-300).log()
        return local_excess(logG - ref, w)
    mag = G.abs()
    return mag / mag.amax(dim=-1, keepdim=True).clamp_min(1e-300)


def _argmax(score: np.ndarray, criterion: str) -> int:
    """Index of the spike: the global maximum ("legs") or the highest interior local maximum ("peak")."""
    if criterion == "legs":
        return int(np.argmax(score))
    inner = np.flatnonzero((score[1:-1] > score[:-2]) & (score[1:-1] >= score[2:])) + 1
    if inner.size == 0:
        raise ValueError("the layers' |G(i w)| has no resonance peak (it is monotone on the grid); "
                         "use the 'legs' criterion or give the frequency explicitly (--frequency)")
    return int(inner[np.argmax(score[inner])])


@dataclass
class Spike:
    """The chosen frequency and, per SSM layer, where that layer alone would put it."""

    omega: float
    criterion: str
    domain: str
    per_layer: Dict[str, float] = field(default_factory=dict)


def _step_scores(layers, w: torch.Tensor, theta: np.ndarray, criterion: str, rate) -> List[np.ndarray]:
    """Per layer, the channel-mean score at per-step frequencies theta: channel h sees omega = theta / dt_h."""
    out = []
    logw = np.log(w.numpy())
    for _, layer in layers:
        curve = _curve(layer, w, criterion, rate).numpy()
        dt = channel_steps(layer, curve.shape[0], rate).cpu().numpy()
        out.append(np.mean([np.interp(np.log(theta / d), logw, c) for c, d in zip(curve, dt)], axis=0))
    return out


def find_spike(model: nn.Module, criterion: str = "legs", domain: str = "continuous", points: int = 4000,
               rate: Optional[float] = None) -> Spike:
    """The frequency where the model's SSM layers misbehave most, averaged over layers and channels.

    criterion "legs": where log|G_h| - log|G_H| (G_H the HiPPO-LegS reference of the layer's size, its notches
    filled by `envelope`) stands out most above its local level (`local_excess`); "peak": the highest resonance (interior local maximum) of |G_h|
    normalised per channel. domain "continuous" gives omega in
    radians per unit time (for `LayerFourierNoise`); "step" gives radians per input step in (0, pi] (for
    noise at the input), where channel h of a layer responds at omega = theta / dt_h."""
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {list(CRITERIA)}, got {criterion!r}")
    if domain not in DOMAINS:
        raise ValueError(f"domain must be one of {list(DOMAINS)}, got {domain!r}")
    layers = ssm_layers(model)
    N = max(state_size(l) for _, l in layers)
    if domain == "step":
        dt_min = min(float(channel_steps(l, l.d_model, rate).min()) for _, l in layers)
        w = frequency_grid(N, points, low=min(1e-2, math.pi / points), high=max(10.0 * N * N, 1.01 * math.pi / dt_min))
        theta = np.linspace(math.pi / points, math.pi, points)
        scores = _step_scores(layers, w, theta, criterion, rate)
        per = {n: float(theta[_argmax(s, criterion)]) for (n, _), s in zip(layers, scores)}
        return Spike(float(theta[_argmax(np.mean(scores, 0), criterion)]), criterion, domain, per)
    w = frequency_grid(N, points)
    scores = [_curve(l, w, criterion, rate).mean(0).numpy() for _, l in layers]
    per = {n: float(w[_argmax(s, criterion)]) for (n, _), s in zip(layers, scores)}
    w0 = float(w[_argmax(np.mean(scores, 0), criterion)])
    fine = torch.linspace(w0 / 1.03, w0 * 1.03, 601, dtype=torch.float64)  # resolve a resonance the grid straddles
    local = np.mean([_curve(l, fine, criterion, rate, local=False).mean(0).numpy() for _, l in layers], 0)
    return Spike(float(fine[int(np.argmax(local))]), criterion, domain, per)
