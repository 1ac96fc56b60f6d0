"""Backend `ext`: the compiled extension ssm._C (csrc/: C++/OpenMP on CPU, CUDA on GPU).

Its kernels are torch.library ops (torch.ops.ssm.*) with fake implementations registered here, so they trace
under torch.compile. Primitive contracts: ops/cauchy.py, ops/log_vandermonde.py, ops/scan.py.
"""
from __future__ import annotations

import sys
from typing import Optional, Tuple

import torch

from ..probe import BackendNotInstalled

_OPS = ("cauchy_fwd", "cauchy_bwd", "log_vandermonde_fwd", "log_vandermonde_bwd", "log_vandermonde_transpose",
        "scan_fwd", "scan_bwd")
_FAKES_DONE = False


def load(device: torch.device = torch.device("cpu")):
    """Import ssm._C, check it has every op (and CUDA kernels for a GPU device); returns this module."""
    import importlib

    try:
        C = importlib.import_module("ssm._C")
    except ImportError as e:
        raise BackendNotInstalled(f"the compiled extension ssm._C is not built ({e})") from e
    missing = [op for op in _OPS if not hasattr(torch.ops.ssm, op)]
    if missing:
        raise RuntimeError(f"ssm._C is stale: it lacks {missing}")
    if torch.device(device).type == "cuda" and not getattr(C, "with_cuda", 0):
        raise RuntimeError("ssm._C was built without CUDA kernels (SSM_BUILD_CUDA=0, or no nvcc/CUDA_HOME at build time)")
    _register_fakes()
    return sys.modules[__name__]


def _register_fakes() -> None:
    """Shapes of the compiled ops for torch.compile (FakeTensor tracing)."""
    global _FAKES_DONE
    if _FAKES_DONE:
        return
    reg = torch.library.register_fake
    reg("ssm::cauchy_fwd")(lambda v, z, w, conj, power: v.new_empty(v.shape[0], z.shape[0]))
    reg("ssm::cauchy_bwd")(lambda g, z, w, conj: (w.new_empty(g.shape[0], w.shape[1]),
                                                   w.new_empty(g.shape[0], w.shape[1])))
    reg("ssm::log_vandermonde_fwd")(lambda v, log_x, L: v.new_empty(v.shape[0], L))
    reg("ssm::log_vandermonde_bwd")(lambda h, log_x: (h.new_empty(h.shape[0], log_x.shape[1]),
                                                      h.new_empty(h.shape[0], log_x.shape[1])))
    reg("ssm::log_vandermonde_transpose")(lambda u, log_x, weighted: u.new_empty(
        u.shape[0], log_x.shape[1], dtype=torch.complex128 if u.dtype == torch.float64 else torch.complex64))
    reg("ssm::scan_fwd")(lambda a, b, h0, reverse: torch.empty_like(b, memory_format=torch.contiguous_format))
    reg("ssm::scan_bwd")(lambda a, h, h0, g, reverse, need_a: (
        torch.empty_like(h, memory_format=torch.contiguous_format),
        h.new_empty(h.shape[0], a.shape[1], h.shape[2]) if need_a else None,
        h.new_empty(h.shape[0], h.shape[2]) if h0 is not None else None))
    _FAKES_DONE = True


def cauchy_fwd(v: torch.Tensor, z: torch.Tensor, w: torch.Tensor, conj: bool, power: int) -> torch.Tensor:
    return torch.ops.ssm.cauchy_fwd(v, z, w, conj, power)


def cauchy_bwd(g: torch.Tensor, z: torch.Tensor, w: torch.Tensor, conj: bool) -> Tuple[torch.Tensor, torch.Tensor]:
    return torch.ops.ssm.cauchy_bwd(g, z, w, conj)


def vandermonde_fwd(v: torch.Tensor, lx: torch.Tensor, L: int) -> torch.Tensor:
    return torch.ops.ssm.log_vandermonde_fwd(v, lx, L)


def vandermonde_bwd(g: torch.Tensor, lx: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    return torch.ops.ssm.log_vandermonde_bwd(g, lx)


def vandermonde_transpose(u: torch.Tensor, lx: torch.Tensor, weighted: bool) -> torch.Tensor:
    return torch.ops.ssm.log_vandermonde_transpose(u, lx, weighted)


def _rows(a: torch.Tensor, t: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """(a as (M, La, N) through broadcast strides, t as (M, L, N)) for t shaped like b (..., L, N)."""
    L, N = t.shape[-2], t.shape[-1]
    t3 = t.reshape(-1, L, N)
    return a.expand(t.shape[:-2] + (a.shape[-2], N)).reshape(t3.shape[0], a.shape[-2], N), t3


def scan_fwd(a: torch.Tensor, b: torch.Tensor, h0: Optional[torch.Tensor], reverse: bool) -> torch.Tensor:
    a3, b3 = _rows(a, b)
    h03 = h0.reshape(b3.shape[0], b3.shape[2]) if h0 is not None else None
    return torch.ops.ssm.scan_fwd(a3, b3, h03, reverse).reshape(b.shape)


def scan_bwd(a: torch.Tensor, h: torch.Tensor, h0: Optional[torch.Tensor], g: torch.Tensor, reverse: bool,
             need_a: bool):
    a3, h3 = _rows(a, h)
    h03 = h0.reshape(h3.shape[0], h3.shape[2]) if h0 is not None else None
    gb, ga, gh0 = torch.ops.ssm.scan_bwd(a3, h3, h03, g.reshape(h3.shape), reverse, need_a)
    ga = ga.reshape(h.shape[:-2] + (a.shape[-2], h.shape[-1])).sum_to_size(a.shape) if need_a else None
    return gb.reshape(h.shape), ga, gh0.reshape(h0.shape) if h0 is not None else None
