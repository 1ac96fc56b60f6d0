"""Shared plumbing of the fast Cauchy/Vandermonde backends: row flattening without materialising broadcasts, probes."""
from __future__ import annotations

from typing import Callable, Tuple

import torch


def as_rows(a: torch.Tensor, b: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Size]:
    """a: (..., N), b: (..., N) broadcastable -> a2 (R, N), b2 (Rb, N) with R % Rb == 0 (row r uses b2[r % Rb]), batch shape.

    When b's batch shape is a suffix of a's (e.g. v (C, H, N) with x (H, N)), b is not copied; otherwise both are
    expanded (autograd sums the expanded gradient back)."""
    N = a.shape[-1]
    shape = torch.broadcast_shapes(a.shape[:-1], b.shape[:-1])
    bs = list(b.shape[:-1])
    while bs and bs[0] == 1:
        bs.pop(0)
    if tuple(a.shape[:-1]) == tuple(shape) and tuple(shape[len(shape) - len(bs):]) == tuple(bs):
        return a.reshape(-1, N), b.reshape(-1, N), shape
    return a.expand(*shape, N).reshape(-1, N), b.expand(*shape, N).reshape(-1, N), shape


def fold_rows(g: torch.Tensor, rows: int) -> torch.Tensor:
    """(R, N) gradient of rows reused cyclically -> (rows, N) summed over the repeats."""
    return g if g.shape[0] == rows else g.reshape(-1, rows, g.shape[-1]).sum(0)


def check_close(out: torch.Tensor, ref: torch.Tensor, what: str, tol: float = 1e-3) -> None:
    """Raise if `out` differs from `ref` by more than `tol` relative to ref's max magnitude."""
    err = (out - ref).abs().max().item() / max(ref.abs().max().item(), 1e-30)
    if not err <= tol:  # also catches NaN
        raise RuntimeError(f"{what} differs from the torch reference (relative error {err:.2e} > {tol:g})")


def probe_op(fast: Callable, ref: Callable, make_inputs: Callable[[torch.device], tuple], op: str) -> Callable:
    """A probe that runs a tiny complex128 case forward and backward on `device` and compares with `ref`."""

    def probe(device: torch.device) -> None:
        args = make_inputs(torch.device(device))
        leaves = [a.detach().requires_grad_(a.is_complex()) if isinstance(a, torch.Tensor) else a for a in args]
        out = fast(*leaves)
        g = torch.randn_like(out)
        grads = torch.autograd.grad(out, [a for a in leaves if isinstance(a, torch.Tensor) and a.requires_grad], g)
        refs = [a.detach().requires_grad_(a.is_complex()) if isinstance(a, torch.Tensor) else a for a in args]
        out_ref = ref(*refs)
        grads_ref = torch.autograd.grad(out_ref, [a for a in refs if isinstance(a, torch.Tensor) and a.requires_grad], g)
        check_close(out, out_ref, f"{op} forward")
        for i, (a, b) in enumerate(zip(grads, grads_ref)):
            check_close(a, b, f"{op} gradient of input {i}")

    return probe


def _load(module: str) -> Callable:
    """Deferred import of a backend module (keops and triton load only when their backend is probed)."""
    def load(device: torch.device = torch.device("cpu")):
        import importlib

        return importlib.import_module(f"{__package__}.{module}").load(device)

    return load


def register_backends(op: str, ref: Callable, apply: Callable, make_inputs: Callable[[torch.device], tuple]) -> None:
    """Register `op`'s torch reference and its ext / keops / triton backends, each run through `apply(impl, ...)`."""
    from . import dispatch
    from .ext import HINT as ext_hint
    from .keops import HINT as keops_hint

    def backend(name, module, priority, devices=("cpu", "cuda"), hint="", warn=False):
        load = _load(module)
        fn = lambda *args: apply(load(args[0].device), *args)  # noqa: E731
        return dispatch.Backend(name, fn, probe_op(fn, ref, make_inputs, op), devices, priority, hint, warn)

    dispatch.register(op, dispatch.Backend("torch", ref, probe_op(ref, ref, make_inputs, op),
                                           priority={"cpu": 100, "cuda": 100}))
    dispatch.register(op, backend("ext", "ext", {"cpu": 10, "cuda": 10}, hint=ext_hint, warn=True))
    dispatch.register(op, backend("keops", "keops", {"cpu": 50, "cuda": 50}, hint=keops_hint))
    dispatch.register(op, backend("triton", "triton_kernels", {"cuda": 20}, devices=("cuda",),
                                  hint="pip install triton (needs a CUDA GPU)"))
