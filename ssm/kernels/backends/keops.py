"""Backend `keops`: pykeops Genred reductions, complex numbers as real pairs (probed in a child process).

Cauchy runs in the input precision; the Vandermonde family always in float64 (its phase l * log x needs it) with
the l = 0 term (x^0 = 1, also for x = 0 and NaN) added outside the reduction. Under torch.compile every primitive
is an opaque torch.library op. Primitive contracts: ops/cauchy.py, ops/log_vandermonde.py.
"""
from __future__ import annotations

import contextlib
import functools
import io
import sys
from typing import Tuple

import torch

from .._library import primitive
from ..probe import BackendNotInstalled


def load(device: torch.device = torch.device("cpu")):
    """Import pykeops without its console chatter (e.g. "CUDA libraries not found" on CPU machines)."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            import pykeops
            from pykeops.torch import Genred  # noqa: F401
    except ImportError as e:
        raise BackendNotInstalled(f"pykeops is not installed ({e})") from e
    pykeops.set_verbose(False)
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


def _fwd_fake(v, z, w, conj, power):
    return v.new_empty(v.shape[0], z.shape[0])


@primitive("keops_cauchy_fwd", _fwd_fake)
def cauchy_fwd(v: torch.Tensor, z: torch.Tensor, w: torch.Tensor, conj: bool, power: int) -> torch.Tensor:
    f = _term("v", "z - w", power) + (" + " + _term("Conj(v)", "z - Conj(w)", power) if conj else "")
    R, N = v.shape
    Rw, L = w.shape[0], z.shape[0]
    out = _genred(f, ("z = Vi(2)", "v = Vj(2)", "w = Vj(2)"))(
        _r(z).view(1, 1, L, 2), _r(v).view(R // Rw, Rw, N, 2), _r(w).view(1, Rw, N, 2))
    return _c(out).reshape(R, L)


def _bwd_fake(g, z, w, conj):
    return w.new_empty(g.shape[0], w.shape[1]), w.new_empty(g.shape[0], w.shape[1])


@primitive("keops_cauchy_bwd", _bwd_fake)
def cauchy_bwd(g: torch.Tensor, z: torch.Tensor, w: torch.Tensor, conj: bool) -> Tuple[torch.Tensor, torch.Tensor]:
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


def _positions(L: int, device: torch.device) -> torch.Tensor:
    """l = 1..L-1 as float64 (the l = 0 term is added outside: 0 * log(0) would be NaN inside the formula)."""
    return torch.arange(1, L, device=device, dtype=torch.float64).view(1, 1, L - 1, 1)


@primitive("keops_vandermonde_fwd", lambda v, lx, L: v.new_empty(v.shape[0], L))
def vandermonde_fwd(v: torch.Tensor, lx: torch.Tensor, L: int) -> torch.Tensor:
    R, N = v.shape
    Rx = lx.shape[0]
    out = v.new_empty(R, L)
    out[:, 0] = v.sum(-1)
    if L > 1:
        f = "ComplexMult(v, ComplexExp(ComplexRealScal(a, l)))"
        rest = _genred(f, ("l = Vi(1)", "v = Vj(2)", "a = Vj(2)"))(
            _positions(L, v.device), _r(v.to(torch.complex128)).view(R // Rx, Rx, N, 2), _r(lx).view(1, Rx, N, 2))
        out[:, 1:] = _c(rest).reshape(R, L - 1)
    return out


def _sums(h: torch.Tensor, lx: torch.Tensor, weights: str) -> torch.Tensor:
    """sum_{l >= 1} h_l exp(l lx) times each of `weights` ('1' or 'l'), concatenated: (R, N, 2 * len(weights))."""
    R, L = h.shape
    Rx, N = lx.shape
    e = "ComplexMult(h, ComplexExp(ComplexRealScal(a, l)))"
    parts = [e if w == "1" else f"ComplexRealScal({e}, l)" for w in weights]
    f = parts[0] if len(parts) == 1 else f"Concat({', '.join(parts)})"
    out = _genred(f, ("a = Vi(2)", "h = Vj(2)", "l = Vj(1)"))(
        _r(lx).view(1, Rx, N, 2), _r(h[:, 1:].to(torch.complex128)).view(R // Rx, Rx, L - 1, 2), _positions(L, h.device))
    return out.reshape(R, N, 2 * len(weights))


def _two(h, lx):
    return h.new_empty(h.shape[0], lx.shape[1]), h.new_empty(h.shape[0], lx.shape[1])


@primitive("keops_vandermonde_bwd", _two)
def vandermonde_bwd(g: torch.Tensor, lx: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    R, L = g.shape
    if L == 1:
        return g.expand(R, lx.shape[1]).contiguous(), torch.zeros(R, lx.shape[1], dtype=g.dtype, device=g.device)
    out = _sums(g, lx, "1l")
    g0 = g[:, :1]
    return (_c(out[..., :2]).to(g.dtype) + g0).contiguous(), _c(out[..., 2:]).to(g.dtype)


def _transpose_fake(u, lx, weighted):
    return u.new_empty(u.shape[0], lx.shape[1], dtype=torch.complex128 if u.dtype == torch.float64 else torch.complex64)


@primitive("keops_vandermonde_transpose", _transpose_fake)
def vandermonde_transpose(u: torch.Tensor, lx: torch.Tensor, weighted: bool) -> torch.Tensor:
    R, L = u.shape
    dtype = torch.complex128 if u.dtype == torch.float64 else torch.complex64
    head = torch.zeros(R, 1, dtype=dtype, device=u.device) if weighted else u[:, :1].to(dtype)
    if L == 1:
        return head.expand(R, lx.shape[1]).contiguous()
    return _c(_sums(u.to(torch.complex128), lx, "l" if weighted else "1")).to(dtype) + head
