"""Backend `ext`: the compiled extension ssm._C (C++/OpenMP on CPU, CUDA on GPU); non-differentiable primitives."""
from __future__ import annotations

from typing import Tuple

import torch

from .dispatch import BackendNotInstalled

HINT = ("rebuild the extension: `pip install --no-build-isolation -e .` (needs a C++ compiler; "
        "SSM_BUILD_CUDA=1 and CUDA_HOME for the GPU kernels), then `ssm doctor`")
_OPS = ("cauchy_fwd", "cauchy_bwd", "vandermonde_fwd", "vandermonde_bwd")


def load(device: torch.device = torch.device("cpu")):
    """Import ssm._C and check that it has our ops (and CUDA kernels when `device` is a GPU); returns this module."""
    import importlib

    try:
        _C = importlib.import_module(__name__.rsplit(".", 2)[0] + "._C")
    except ImportError as e:
        raise BackendNotInstalled(f"the compiled extension ssm._C is not built ({e})") from e
    missing = [op for op in _OPS if not hasattr(torch.ops.ssm, op)]
    if missing:
        raise RuntimeError(f"ssm._C is stale: it lacks {missing}")
    if torch.device(device).type == "cuda" and not getattr(_C, "with_cuda", 0):
        raise RuntimeError("ssm._C was built without CUDA kernels (SSM_BUILD_CUDA=0, or no nvcc/CUDA_HOME at build time)")
    return _this()


def _this():
    import sys

    return sys.modules[__name__]


def cauchy_fwd(v: torch.Tensor, z: torch.Tensor, w: torch.Tensor, conj: bool, power: int) -> torch.Tensor:
    """v (R, N), z (L,), w (Rw, N) -> (R, L): sum_n v / (z - w)^power (+ conjugate pairs)."""
    return torch.ops.ssm.cauchy_fwd(v, z, w, conj, power)


def cauchy_bwd(g: torch.Tensor, z: torch.Tensor, w: torch.Tensor, conj: bool) -> Tuple[torch.Tensor, torch.Tensor]:
    """g (R, L) -> S1, S2 (R, N): the gradient sums (see cauchy.py)."""
    return torch.ops.ssm.cauchy_bwd(g, z, w, conj)


def vandermonde_fwd(v: torch.Tensor, x: torch.Tensor, L: int) -> torch.Tensor:
    """v (R, N), x (Rx, N) -> (R, L): sum_n v x^l."""
    return torch.ops.ssm.vandermonde_fwd(v, x, L)


def vandermonde_bwd(h: torch.Tensor, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """h (R, L), x (Rx, N) -> A, D (R, N): sum_l h x^l and sum_l l h x^l."""
    return torch.ops.ssm.vandermonde_bwd(h, x)
