"""The named perturbations of `ssm robust`: each gives the logits of a batch perturbed at a level."""
from __future__ import annotations

import abc
from typing import Any, Callable, Dict, List, Optional

import torch
from torch import nn

from . import attacks, noise
from .hooks import LayerFourierNoise
from .site import InputSite
from .transfer import find_spike

# name -> what it does, for the CLI help and the docs
PERTURBATIONS: Dict[str, str] = {
    "fourier": "x + level a cos(theta k) at the input (embeddings for tokens), a ~ U[0,1) per sample and channel; "
               "theta from --frequency (rad/step) or the layers' spike",
    "fourier-layer": "u + level a cos(omega k dt_h) at every sequence layer's input (the PTD protocol); "
                     "omega from --frequency (rad/unit time) or the layers' spike",
    "gaussian": "x + level N(0, 1) at the input",
    "shift": "delay by round(level L) steps, zeros in front (level in [0, 1])",
    "warp": "read at times (L-1)(t/(L-1))^g, log g ~ U[-level, level]",
    "fgsm": "x + level sign(grad loss)",
    "pgd": "PGD, L-inf ball of radius level",
    "pgd-l2": "PGD, L2 ball of radius level sqrt(L C)",
}
UPPER = {"shift": 1.0}  # largest meaningful level, checked with the arguments


class Perturbation(abc.ABC):
    """A named perturbation: `logits` of a batch at a level. Those with needs_grad False (all but the attacks)
    are run under torch.no_grad()."""

    name: str = ""
    needs_grad = False
    omega: Optional[float] = None  # the frequency used, for the Fourier modes

    @abc.abstractmethod
    def logits(self, model: nn.Module, x: Any, y: torch.Tensor, lengths: Any, level: float,
               generator: Optional[torch.Generator]) -> torch.Tensor:
        """Logits of the batch perturbed at `level`."""


class InputNoise(Perturbation):
    """A function (value (B, L, C), level, generator) -> value applied to every site tensor."""

    def __init__(self, name: str, fn: Callable[..., torch.Tensor]):
        self.name, self.fn = name, fn

    def logits(self, model, x, y, lengths, level, generator):
        site = InputSite(model, x, lengths)
        return site.logits([self.fn(v, level, generator) for v in site.values])


class InputFourier(InputNoise):
    """One Fourier mode at the input, theta radians per step."""

    def __init__(self, theta: float):
        self.omega = float(theta)
        super().__init__("fourier", lambda v, level, g: noise.fourier_mode(v, self.omega, level, 1.0, g))


class LayerFourier(Perturbation):
    """One Fourier mode at every sequence layer's input, omega radians per unit time (per step for RNNs)."""

    def __init__(self, omega: float, name: str = "fourier-layer"):
        self.omega, self.name = float(omega), name

    def logits(self, model, x, y, lengths, level, generator):
        with LayerFourierNoise(model, self.omega, level, generator):
            return model(x, lengths)


class Attack(Perturbation):
    """FGSM or PGD on the input site (cross-entropy loss)."""

    needs_grad = True

    def __init__(self, name: str, norm: str = "linf", steps: int = 10):
        self.name, self.norm, self.steps = name, norm, steps

    def logits(self, model, x, y, lengths, level, generator):
        site = InputSite(model, x, lengths)
        if self.name == "fgsm":
            values = attacks.fgsm(site, y, level)
        else:
            values = attacks.pgd(site, y, level, self.norm, self.steps, generator=generator)
        with torch.no_grad():
            return site.logits(values)


def needs_spectrum(name: str, frequency: Optional[float]) -> bool:
    """Whether building `name` reads the model's transfer functions (a Fourier mode without --frequency)."""
    return name in ("fourier", "fourier-layer") and frequency is None


def make(name: str, model: Optional[nn.Module] = None, frequency: Optional[float] = None, criterion: str = "legs",
         steps: int = 10) -> Perturbation:
    """The perturbation called `name`; the Fourier modes take `frequency`, else the spike of `model`'s layers."""
    if name not in PERTURBATIONS:
        raise ValueError(f"perturbation must be one of {list(PERTURBATIONS)}, got {name!r}")
    if name in ("fourier", "fourier-layer"):
        if frequency is None:
            if model is None:
                raise ValueError(f"perturbation {name!r} needs a frequency or a model to read the spike from")
            frequency = find_spike(model, criterion, "step" if name == "fourier" else "continuous").omega
        return InputFourier(frequency) if name == "fourier" else LayerFourier(frequency)
    if name == "gaussian":
        return InputNoise(name, lambda v, level, g: noise.gaussian(v, level, g))
    if name == "shift":
        return InputNoise(name, lambda v, level, g: noise.time_shift(v, level))
    if name == "warp":
        return InputNoise(name, noise.time_warp)
    return Attack(name, "l2" if name == "pgd-l2" else "linf", steps)


def parse_names(text: str) -> List[str]:
    """'fourier,gaussian' -> ['fourier', 'gaussian'] (order kept, duplicates dropped); ValueError on unknown names."""
    names = [t.strip() for t in str(text).split(",") if t.strip()]
    if not names:
        raise ValueError("--perturb must name at least one perturbation")
    bad = [n for n in names if n not in PERTURBATIONS]
    if bad:
        raise ValueError(f"unknown perturbation {bad[0]!r} in --perturb; choose from {', '.join(PERTURBATIONS)}")
    return list(dict.fromkeys(names))


def parse_levels(text: str, names: List[str] = ()) -> List[float]:
    """'0,0.05,0.1' -> [0.0, 0.05, 0.1]; ValueError on non-numeric, negative or too large levels."""
    levels = []
    for t in str(text).split(","):
        try:
            v = float(t)
        except ValueError:
            raise ValueError(f"--levels must be comma-separated numbers, got {t.strip()!r} in {text!r}") from None
        noise.check_level(v, "--levels entry")
        levels.append(v)
    for n in names:
        if n in UPPER and max(levels) > UPPER[n]:
            raise ValueError(f"--levels for {n!r} must be <= {UPPER[n]}, got {max(levels)}")
    return list(dict.fromkeys(levels))
