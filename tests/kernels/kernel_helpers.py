"""Helpers for the kernel tests: the (op, backend) pairs of the registry, random inputs, the relative error."""
from __future__ import annotations

from typing import List

import pytest
import torch

from ssm.kernels import dispatch, registry


def usable(op: str, name: str, device: str = "cpu") -> None:
    """Skip if backend `name` is not installed here; fail loudly if it is installed but broken."""
    kind, reason = dispatch.state(op, name, torch.device(device))
    if kind in (dispatch.NOT_INSTALLED, dispatch.UNSUPPORTED):
        pytest.skip(f"{op}/{name}: {kind} ({reason})")
    assert kind == dispatch.OK, f"{op}/{name} is installed but broken: {reason}"


def registry_backends(op: str, device: str = "cpu", exclude=("torch",)) -> List:
    """pytest params of every registered backend of `op` that can run on `device` (keops marked slow: each formula
    costs a g++ compile; triton on the CPU runs under the interpreter in test_triton.py instead)."""
    out = []
    for b in registry.BACKENDS:
        if op not in b.ops or device not in b.devices or b.name in exclude:
            continue
        marks = [pytest.mark.slow] if b.name == "keops" else []
        out.append(pytest.param(b.name, marks=marks, id=b.name))
    return out


def crandn(*shape: int, dtype: torch.dtype = torch.complex128, gen: torch.Generator | None = None) -> torch.Tensor:
    """Standard complex normal tensor."""
    real = torch.float64 if dtype == torch.complex128 else torch.float32
    return torch.complex(torch.randn(*shape, generator=gen, dtype=real), torch.randn(*shape, generator=gen, dtype=real))


def near_unit(*shape: int, dtype: torch.dtype = torch.complex128, decay: float = 1e-3,
              gen: torch.Generator | None = None) -> torch.Tensor:
    """x = exp(-U(0, decay) + i U(-pi, pi)): |x| just below 1 (S4D's dA for small dt)."""
    return torch.exp(near_unit_log(*shape, decay=decay, gen=gen)).to(dtype)


def near_unit_log(*shape: int, decay: float = 1e-3, gen: torch.Generator | None = None) -> torch.Tensor:
    """log x = -U(0, decay) + i U(-pi, pi) in complex128."""
    r = -decay * torch.rand(*shape, generator=gen, dtype=torch.float64)
    t = (2 * torch.rand(*shape, generator=gen, dtype=torch.float64) - 1) * torch.pi
    return torch.complex(r, t)


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| / max |b| (computed in complex128)."""
    a, b = a.detach().cpu().to(torch.complex128), b.detach().cpu().to(torch.complex128)
    return ((a - b).abs().max() / b.abs().max()).item()


TOL = {torch.complex128: 1e-9, torch.complex64: 1e-4}


def case(op: str, dtype: torch.dtype, small: bool = False):
    """(args, indices of differentiable args) of a layer-like problem; `small` for gradcheck."""
    gen = torch.Generator().manual_seed(sum(map(ord, op)))
    real = torch.float64 if dtype == torch.complex128 else torch.float32
    L = 9 if small else 300
    N = 3 if small else 16
    if op == "cauchy":
        w = torch.complex(-0.5 - torch.rand(3, N, generator=gen, dtype=torch.float64),
                          10 * torch.randn(3, N, generator=gen, dtype=torch.float64)).to(dtype)
        omega = torch.exp(-2j * torch.pi * torch.arange(L, dtype=torch.float64) / L)
        z = (2 * (1 - omega) / (1 + omega + 1e-3)).to(dtype)
        return (crandn(2, 3, N, dtype=dtype, gen=gen), z, w, True), (0, 1, 2)
    if op == "vandermonde":
        x = near_unit(3, N, dtype=dtype, decay=0.05, gen=gen)
        x[0, 0] = 0
        return (crandn(2, 3, N, dtype=dtype, gen=gen), x, L), (0, 1)
    if op == "log_vandermonde":
        return (crandn(2, 3, N, dtype=dtype, gen=gen), near_unit_log(3, N, decay=0.05, gen=gen).to(dtype), L), (0, 1)
    if op == "log_vandermonde_transpose":
        return (torch.randn(2, 3, L, generator=gen, dtype=real), near_unit_log(3, N, decay=0.05, gen=gen).to(dtype)), (0, 1)
    if op == "scan":
        b = crandn(2, L // 4, N, dtype=dtype, gen=gen)
        return (0.9 * near_unit(1, 1, N, dtype=dtype, gen=gen), b, crandn(2, N, dtype=dtype, gen=gen), False), (0, 1, 2)
    assert op == "fftconv", op
    u, k, D = (torch.randn(*s, generator=gen, dtype=real) for s in ((2, 3, L // 4), (3, L // 4), (3,)))
    return (u, k, D, False), (0, 1, 2)

