"""Backend `keops`: pykeops Genred reductions (complex numbers as real pairs); non-differentiable primitives.

Cauchy runs in the input precision; Vandermonde always in float64 (exp(l log x) in float32 loses ~L*eps of phase)."""
from __future__ import annotations

import functools
from typing import Tuple

import torch

from .dispatch import BackendNotInstalled

HINT = ("pykeops compiles with the system C++ compiler on first use: install g++ (or set CXX), "
        "clear ~/.cache/keops* after upgrades; `pip install pykeops`")


def load(device: torch.device = torch.device("cpu")):
    """Import pykeops (raising BackendNotInstalled if absent); returns this module."""
    try:
        import pykeops  # noqa: F401
        from pykeops.torch import Genred  # noqa: F401
    except ImportError as e:
        raise BackendNotInstalled(f"pykeops is not installed ({e})") from e
    import sys

    return sys.modules[__name__]


@functools.lru_cache(maxsize=None)
def _genred(formula: str, aliases: Tuple[str, ...]):
    from pykeops.torch import Genred

    return Genred(formula, list(aliases), reduction_op="Sum", axis=1)


def _r(t: torch.Tensor) -> torch.Tensor:
    return torch.view_as_real(t.resolve_conj().contiguous())


def _c(t: torch.Tensor) -> torch.Tensor:
    return torch.view_as_complex(t.contiguous())


def _term(num: str, den: str, power: int) -> str:
    return f"ComplexDivide({num}, {den})" if power == 1 else f"ComplexDivide({num}, ComplexMult({den}, {den}))"


def cauchy_fwd(v: torch.Tensor, z: torch.Tensor, w: torch.Tensor, conj: bool, power: int) -> torch.Tensor:
    """v (R, N), z (L,), w (Rw, N) -> (R, L): sum_n v / (z - w)^power (+ conjugate pairs)."""
    f = _term("v", "z - w", power) + (" + " + _term("Conj(v)", "z - Conj(w)", power) if conj else "")
    R, N = v.shape
    Rw, L = w.shape[0], z.shape[0]
    out = _genred(f, ("z = Vi(2)", "v = Vj(2)", "w = Vj(2)"))(
        _r(z).view(1, 1, L, 2), _r(v).view(R // Rw, Rw, N, 2), _r(w).view(1, Rw, N, 2))
    return _c(out).reshape(R, L)


def cauchy_bwd(g: torch.Tensor, z: torch.Tensor, w: torch.Tensor, conj: bool) -> Tuple[torch.Tensor, torch.Tensor]:
    """g (R, L) -> S1, S2 (R, N) with zeta = conj z: sum_l g / (zeta - conj w)^p (+ conj(sum_l g / (zeta - w)^p))."""
    s1, s2 = _term("g", "y - Conj(w)", 1), _term("g", "y - Conj(w)", 2)
    if conj:
        s1 += " + Conj(" + _term("g", "y - w", 1) + ")"
        s2 += " + Conj(" + _term("g", "y - w", 2) + ")"
    R, L = g.shape
    Rw, N = w.shape
    out = _genred(f"Concat({s1}, {s2})", ("w = Vi(2)", "g = Vj(2)", "y = Vj(2)"))(
        _r(w).view(1, Rw, N, 2), _r(g).view(R // Rw, Rw, L, 2), _r(z.conj().resolve_conj()).view(1, 1, L, 2))
    out = out.reshape(R, N, 4)
    return _c(out[..., :2]), _c(out[..., 2:])


def _logx(x: torch.Tensor) -> torch.Tensor:
    return torch.view_as_real(torch.log(x.to(torch.complex128)))


def vandermonde_fwd(v: torch.Tensor, x: torch.Tensor, L: int) -> torch.Tensor:
    """v (R, N), x (Rx, N) -> (R, L): sum_n v exp(l log x), evaluated in float64."""
    R, N = v.shape
    Rx = x.shape[0]
    l = torch.arange(L, device=v.device, dtype=torch.float64).view(1, 1, L, 1)
    f = "ComplexMult(v, ComplexExp(ComplexRealScal(a, l)))"
    out = _genred(f, ("l = Vi(1)", "v = Vj(2)", "a = Vj(2)"))(
        l, _r(v.to(torch.complex128)).view(R // Rx, Rx, N, 2), _logx(x).view(1, Rx, N, 2))
    return _c(out).reshape(R, L).to(v.dtype)


def vandermonde_bwd(h: torch.Tensor, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """h (R, L), x (Rx, N) -> A, D (R, N): sum_l h x^l and sum_l l h x^l, evaluated in float64."""
    R, L = h.shape
    Rx, N = x.shape
    l = torch.arange(L, device=h.device, dtype=torch.float64).view(1, 1, L, 1)
    e = "ComplexMult(h, ComplexExp(ComplexRealScal(a, l)))"
    out = _genred(f"Concat({e}, ComplexRealScal({e}, l))", ("a = Vi(2)", "h = Vj(2)", "l = Vj(1)"))(
        _logx(x).view(1, Rx, N, 2), _r(h.to(torch.complex128)).view(R // Rx, Rx, L, 2), l)
    out = out.reshape(R, N, 4)
    return _c(out[..., :2]).to(h.dtype), _c(out[..., 2:]).to(h.dtype)
