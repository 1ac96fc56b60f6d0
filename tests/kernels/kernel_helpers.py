"""Helpers for the kernel tests: which backends to run, random inputs, the relative error."""
from __future__ import annotations

import pytest
import torch

from ssm.kernels import dispatch


def usable(op: str, name: str, device: str = "cpu") -> None:
    """Skip if backend `name` is not installed; fail loudly if it is installed but broken."""
    kind, reason = dispatch.state(op, name, torch.device(device))
    if kind in (dispatch.NOT_INSTALLED, dispatch.UNSUPPORTED):
        pytest.skip(f"{op}/{name}: {kind} ({reason})")
    assert kind == dispatch.OK, f"{op}/{name} is installed but broken: {reason}"


def crandn(*shape: int, dtype: torch.dtype = torch.complex128, gen: torch.Generator | None = None) -> torch.Tensor:
    """Standard complex normal tensor."""
    real = torch.float64 if dtype == torch.complex128 else torch.float32
    return torch.complex(torch.randn(*shape, generator=gen, dtype=real), torch.randn(*shape, generator=gen, dtype=real))


def near_unit(*shape: int, dtype: torch.dtype = torch.complex128, decay: float = 1e-3,
              gen: torch.Generator | None = None) -> torch.Tensor:
    """x = exp(-U(0, decay) + i U(-pi, pi)): |x| just below 1 (S4D's dA for small dt)."""
    r = -decay * torch.rand(*shape, generator=gen, dtype=torch.float64)
    t = (2 * torch.rand(*shape, generator=gen, dtype=torch.float64) - 1) * torch.pi
    return torch.exp(torch.complex(r, t)).to(dtype)


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| / max |b| (computed in complex128)."""
    a, b = a.detach().to(torch.complex128), b.detach().to(torch.complex128)
    return ((a - b).abs().max() / b.abs().max()).item()


TOL = {torch.complex128: 1e-9, torch.complex64: 1e-4}
