"""Diagonal linear recurrence h_l = a_l * h_{l-1} + b_l (S5 and recurrent modes); reverse runs l = L-1..0.

Backends: "ext" (compiled ssm._C: C++ on CPU, CUDA on GPU, fused backward), "triton" (CUDA), "torch" (parallel
associative scan, backends/torch.py; twice differentiable), "ref" (the sequential loop below: the oracle, only
when asked for). keops has no scan: it evaluates reductions of independent terms, with no carried state.

Backend primitives, on b (..., L, N), a with b's number of dims (broadcast dims of size 1), h0 (..., N) or None:
  scan_fwd(a, b, h0, reverse) -> h
  scan_bwd(a, h, h0, g, reverse, need_grad_a) -> (grad b, grad a or None, grad h0 or None)  [optional: without it
  the backward is the adjoint scan run by scan_fwd]
The adjoint: lambda_l = g_l + conj(a_{l+1}) lambda_{l+1} (against the recurrence); grad b = lambda,
grad a_l = lambda_l conj(h_{l-1}), grad h0 = conj(a_0) lambda_0.
"""
from __future__ import annotations

from typing import Callable, Optional

import torch

from .. import dispatch
from ..backends import torch as torch_backend
from ._common import backend_name, broadcast, flag, same_device, tensor


def scan_ref(a: torch.Tensor, b: torch.Tensor, h0: Optional[torch.Tensor] = None, reverse: bool = False) -> torch.Tensor:
    """The sequential loop over dim -2; a broadcastable to b: (..., L, N), h0: (..., N) -> (..., L, N)."""
    a = torch.broadcast_to(a, b.shape)
    h = torch.zeros_like(b[..., 0, :]) if h0 is None else h0.to(b.dtype).expand_as(b[..., 0, :])
    out = []
    for t in (range(b.shape[-2] - 1, -1, -1) if reverse else range(b.shape[-2])):
        h = a[..., t, :] * h + b[..., t, :]
        out.append(h)
    if reverse:
        out.reverse()
    return torch.stack(out, dim=-2)


def _reduce_to(g: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Sum `g` over the dims where `shape` broadcast (size 1); same number of dims."""
    dims = [i for i, (s, gs) in enumerate(zip(shape, g.shape)) if s == 1 and gs != 1]
    return g.sum(dim=dims, keepdim=True) if dims else g


def adjoint(scan_fn: Callable, a, h, h0, g, reverse: bool, need_a: bool, need_h0: bool):
    """(grad b, grad a, grad h0) by the adjoint scan `scan_fn(a, b, reverse)` (see the module docstring)."""
    ac = a.conj().resolve_conj()  # kernels read raw memory: no lazy conjugate views
    tv = a.shape[-2] != 1
    if tv:  # the adjoint uses a_{l+1} (forward) or a_{l-1} (reverse) at position l
        one = torch.ones_like(ac[..., :1, :])
        a_adj = torch.cat([one, ac[..., :-1, :]], -2) if reverse else torch.cat([ac[..., 1:, :], one], -2)
    else:
        a_adj = ac
    lam = scan_fn(a_adj, g, not reverse)
    grad_a = grad_h0 = None
    if need_a:
        state0 = (h0.unsqueeze(-2) if h0 is not None else torch.zeros_like(h[..., :1, :])).expand(h[..., :1, :].shape)
        h_prev = torch.cat([h[..., 1:, :], state0], -2) if reverse else torch.cat([state0, h[..., :-1, :]], -2)
        grad_a = _reduce_to(lam * h_prev.conj(), a.shape)
    if need_h0:
        first = -1 if reverse else 0
        grad_h0 = (ac[..., first if tv else 0, :] * lam[..., first, :]).sum_to_size(h0.shape)
    return lam, grad_a, grad_h0


class _TorchScan(torch.autograd.Function):
    """The torch backend: forward by the parallel scan, backward by this Function again (twice differentiable)."""

    @staticmethod
    def forward(ctx, a, b, h0, reverse: bool):
        h = torch_backend.scan_fwd(a, b, h0, reverse)
        ctx.reverse, ctx.has_h0 = reverse, h0 is not None
        ctx.save_for_backward(a, h, h0 if h0 is not None else torch.empty(0))
        return h

    @staticmethod
    def backward(ctx, g):
        a, h, h0 = ctx.saved_tensors
        gb, ga, gh0 = adjoint(lambda a_, b_, r: _TorchScan.apply(a_, b_, None, r), a, h, h0 if ctx.has_h0 else None,
                              g, ctx.reverse, ctx.needs_input_grad[0], ctx.has_h0 and ctx.needs_input_grad[2])
        return ga, gb, gh0, None


class _Scan(torch.autograd.Function):
    """A backend's scan_fwd forward; its scan_bwd (or the adjoint scan by scan_fwd) backward."""

    @staticmethod
    def forward(ctx, a, b, h0, reverse: bool, backend: str):
        h = dispatch.loaded(backend, b.device.type).scan_fwd(a, b, h0, reverse)
        ctx.reverse, ctx.has_h0, ctx.backend = reverse, h0 is not None, backend
        ctx.save_for_backward(a, h, h0 if h0 is not None else torch.empty(0))
        return h

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, g):
        a, h, h0 = ctx.saved_tensors
        impl = dispatch.loaded(ctx.backend, h.device.type)
        h0 = h0 if ctx.has_h0 else None
        need_a, need_h0 = ctx.needs_input_grad[0], ctx.has_h0 and ctx.needs_input_grad[2]
        if hasattr(impl, "scan_bwd"):
            gb, ga, gh0 = impl.scan_bwd(a, h, h0, g.contiguous(), ctx.reverse, need_a)
        else:
            gb, ga, gh0 = adjoint(lambda a_, b_, r: impl.scan_fwd(a_, b_, None, r), a, h, h0, g.contiguous(),
                                  ctx.reverse, need_a, need_h0)
        return ga if need_a else None, gb, gh0 if need_h0 else None, None, None


def _torch(a, b, h0=None, reverse=False):
    return _TorchScan.apply(a, b, h0, reverse)


def run(backend: str, a, b, h0=None, reverse=False):
    """scan through `backend`'s primitives; arguments as `scan` after _prepare."""
    return _Scan.apply(a, b, h0, reverse, backend)


def _probe_case(device: torch.device):
    g = torch.Generator().manual_seed(0)
    b = torch.randn(2, 9, 3, dtype=torch.complex128, generator=g)
    a = 0.9 * torch.randn(1, 1, 3, dtype=torch.complex128, generator=g)
    h0 = torch.randn(2, 3, dtype=torch.complex128, generator=g)
    return (a.to(device), b.to(device), h0.to(device), False), (0, 1, 2)


dispatch.register_op(dispatch.OpSpec("scan", scan_ref, run, _probe_case, {"torch": _torch, "ref": scan_ref}))

_UPCAST = {torch.float16: torch.float32, torch.bfloat16: torch.float32, torch.complex32: torch.complex64}


def _prepare(a, b, h0):
    """Validate and normalise: one dtype (at least single precision), a with b's dims, h0 expanded to b[..., 0, :];
    also returns the promoted input dtype (the result's)."""
    b = tensor("b", b, 2, "(..., L, N)")
    if b.shape[-2] < 1:
        raise ValueError(f"b must have shape (..., L, N) with L >= 1, got {tuple(b.shape)}")
    a = tensor("a", a)
    h0 = tensor("h0", h0) if h0 is not None else None
    same_device(a=a, b=b, **({"h0": h0} if h0 is not None else {}))
    if broadcast(a.shape, b.shape) != b.shape:
        raise ValueError(f"a must be broadcastable to b {tuple(b.shape)}, got {tuple(a.shape)}")
    dtype = b.dtype
    for t in (a, h0) if h0 is not None else (a,):
        dtype = torch.promote_types(dtype, t.dtype)
    out_dtype, dtype = dtype, _UPCAST.get(dtype, dtype)
    a = a.to(dtype).reshape((1,) * (b.dim() - a.dim()) + tuple(a.shape))
    b = b.to(dtype)
    if h0 is not None:
        state_shape = b.shape[:-2] + b.shape[-1:]
        if broadcast(h0.shape, state_shape) != state_shape:
            raise ValueError(f"h0 must be broadcastable to {tuple(state_shape)}, got {tuple(h0.shape)}")
        h0 = h0.to(dtype).expand(state_shape)
    return a, b, h0, out_dtype


def scan(a: torch.Tensor, b: torch.Tensor, h0: Optional[torch.Tensor] = None, reverse: bool = False,
         backend: Optional[str] = None) -> torch.Tensor:
    """b: (..., L, N), a broadcastable to b, h0: (..., N) or None -> h: (..., L, N); reverse runs l = L-1..0.

    Half-precision inputs are computed in single precision and returned in their own dtype."""
    flag("reverse", reverse)
    backend_name(backend)
    a, b, h0, out_dtype = _prepare(a, b, h0)
    name = dispatch.select("scan", b.device.type, backend)
    if b.numel() == 0:
        name = "torch"
    h = dispatch.implementation("scan", name)(a, b, h0, reverse)
    return h.to(out_dtype)
