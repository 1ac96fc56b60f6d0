"""Parallel (associative) scan of h_l = a_l * h_{l-1} + b_l in pure torch, O(log L) depth, O(L) work.

The recurrence is the prefix "product" of pairs under (a, b) o (a', b') = (a' a, a' b + b').
`scan_parallel` is the odd-even (Blelloch-style) recursion: combine neighbouring pairs, scan the half-length
sequence, then fill in the even positions; every level is a handful of vectorised tensor ops.
`LinearScan` wraps any forward implementation in an autograd.Function whose backward is itself a scan
(the adjoint recurrence runs the other way with conj(a) shifted by one step), so memory is O(L N), not the
O(L N log L) of differentiating through the recursion.

Shapes: b (..., L, N); a (..., La, N) with the same number of dims as b, La in {1, L} and batch dims
of size 1 or equal to b's (a time-invariant `a` keeps La = 1 throughout: its powers are computed once per level).
"""
from __future__ import annotations

import math
from typing import Callable, Optional

import torch

SEQUENTIAL_BELOW = 8  # below this length the plain loop is cheaper than another recursion level


def _seq(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Sequential inclusive scan with zero initial state over dim -2 (short sequences)."""
    tv = a.shape[-2] != 1
    out = torch.empty(torch.broadcast_shapes(a.shape[:-2] + (1, a.shape[-1]), b.shape), dtype=b.dtype,
                      device=b.device)
    h = b[..., 0, :]
    out[..., 0, :] = h
    for t in range(1, b.shape[-2]):
        h = (a[..., t, :] if tv else a[..., 0, :]) * h + b[..., t, :]
        out[..., t, :] = h
    return out


def _oddeven(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Inclusive scan with zero initial state over dim -2 by odd-even recursion; log2(L) levels."""
    L = b.shape[-2]
    if L < SEQUENTIAL_BELOW:
        return _seq(a, b)
    tv = a.shape[-2] != 1
    half = L // 2  # number of complete pairs (2k, 2k+1)
    b_even, b_odd = b[..., 0::2, :], b[..., 1::2, :]
    a_even = a[..., 0::2, :] if tv else a
    a_odd = a[..., 1::2, :] if tv else a
    a_pair = a_odd * (a_even[..., :half, :] if tv else a_even)
    b_pair = a_odd * b_even[..., :half, :] + b_odd
    h_odd = _oddeven(a_pair, b_pair)  # h at positions 1, 3, 5, ...
    n_even = b_even.shape[-2]
    h_even_rest = (a_even[..., 1:, :] if tv else a_even) * h_odd[..., : n_even - 1, :] + b_even[..., 1:, :]
    out = torch.empty(h_odd.shape[:-2] + (L, b.shape[-1]), dtype=h_odd.dtype, device=b.device)
    out[..., 0:1, :] = b_even[..., 0:1, :]
    out[..., 2::2, :] = h_even_rest
    out[..., 1::2, :] = h_odd
    return out


def _chunked(a: torch.Tensor, b: torch.Tensor, T: int) -> torch.Tensor:
    """Inclusive scan over dim -2 in chunks of T: sequential inside chunks (vectorised over chunks), odd-even across."""
    L, N = b.shape[-2], b.shape[-1]
    C = -(-L // T)
    pad = C * T - L
    tv = a.shape[-2] != 1
    if pad:
        b = torch.nn.functional.pad(b, (0, 0, 0, pad))
        if tv:
            a = torch.nn.functional.pad(a, (0, 0, 0, pad), value=1.0)
    bc = b.reshape(b.shape[:-2] + (C, T, N))
    ac = a.reshape(a.shape[:-2] + (C, T, N)) if tv else a.unsqueeze(-3)  # (..., 1, 1, N) if invariant
    local = _seq(ac, bc)  # (..., C, T, N): scan inside each chunk from a zero state
    if tv:
        acum = torch.cumprod(ac, dim=-2)
    else:
        acum = torch.cumprod(ac.expand(ac.shape[:-2] + (T, N)), dim=-2)  # (..., 1, T, N): a^(t+1)
    carry = _oddeven(acum[..., -1, :] if tv else acum[..., 0, -1:, :], local[..., -1, :])  # (..., C, N)
    prev = torch.nn.functional.pad(carry[..., :-1, :], (0, 0, 1, 0))  # state entering chunk c
    h = local + acum * prev.unsqueeze(-2)
    return h.reshape(h.shape[:-3] + (C * T, N))[..., :L, :]


def scan_parallel(a: torch.Tensor, b: torch.Tensor, h0: Optional[torch.Tensor] = None, reverse: bool = False,
                  chunk: Optional[int] = None) -> torch.Tensor:
    """h_l = a_l h_{l-1} + b_l (reverse: a_l h_{l+1} + b_l) over dim -2; a (..., La, N), b (..., L, N) -> (..., L, N).

    chunk: None picks `default_chunk`, 0 forces the pure odd-even recursion, T > 0 uses chunks of T.
    """
    if reverse:
        b = b.flip(-2)
        a = a.flip(-2) if a.shape[-2] != 1 else a
    if h0 is not None:  # fold the initial state into the first input: b_0 <- b_0 + a_0 h0
        b = b.clone() if not reverse else b
        b[..., 0, :] = b[..., 0, :] + a[..., 0, :] * h0
    if chunk is None:
        chunk = default_chunk(b.shape[-2], b.device)
    h = _chunked(a, b, chunk) if chunk else _oddeven(a, b)
    return h.flip(-2) if reverse else h


def default_chunk(L: int, device: torch.device) -> int:
    """Chunk length for the CPU (about sqrt(L), a power of two in [16, 128]; 0 = pure odd-even, used on GPUs)."""
    if device.type != "cpu" or L < 256:
        return 0
    return int(min(128, max(16, 2 ** round(math.log2(L) / 2))))


def _reduce_to(g: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Sum `g` over the dims where `shape` broadcast (size 1); same number of dims."""
    dims = [i for i, (s, gs) in enumerate(zip(shape, g.shape)) if s == 1 and gs != 1]
    return g.sum(dim=dims, keepdim=True) if dims else g


class LinearScan(torch.autograd.Function):
    """Autograd wrapper for a scan implementation `impl(a, b, h0, reverse) -> h` (no autograd needed inside)."""

    @staticmethod
    def forward(ctx, a, b, h0, reverse: bool, impl: Callable):  # type: ignore[override]
        h = impl(a, b, h0, reverse)
        ctx.reverse, ctx.impl, ctx.has_h0 = reverse, impl, h0 is not None
        ctx.save_for_backward(a, h, h0 if h0 is not None else torch.empty(0))
        return h

    @staticmethod
    def backward(ctx, g):  # type: ignore[override]
        a, h, h0 = ctx.saved_tensors
        rev, impl = ctx.reverse, ctx.impl
        ac = a.conj().resolve_conj()  # kernels read raw memory: no lazy conjugate views
        tv = a.shape[-2] != 1
        if tv:  # the adjoint uses a_{l+1} (forward) or a_{l-1} (reverse) at position l
            one = torch.ones_like(ac[..., :1, :])
            a_adj = torch.cat([one, ac[..., :-1, :]], -2) if rev else torch.cat([ac[..., 1:, :], one], -2)
        else:
            a_adj = ac
        lam = LinearScan.apply(a_adj, g, None, not rev, impl)
        state0 = h0.unsqueeze(-2) if ctx.has_h0 else torch.zeros_like(h[..., :1, :])
        state0 = state0.expand(h[..., :1, :].shape)
        h_prev = torch.cat([h[..., 1:, :], state0], -2) if rev else torch.cat([state0, h[..., :-1, :]], -2)
        grad_a = _reduce_to(lam * h_prev.conj(), a.shape) if ctx.needs_input_grad[0] else None
        grad_h0 = None
        if ctx.has_h0 and ctx.needs_input_grad[2]:
            first = -1 if rev else 0
            grad_h0 = (ac[..., first if tv else 0, :] * lam[..., first, :])
            grad_h0 = grad_h0.sum_to_size(h0.shape)
        return grad_a, lam, grad_h0, None, None


def scan_torch(a: torch.Tensor, b: torch.Tensor, h0: Optional[torch.Tensor] = None,
               reverse: bool = False) -> torch.Tensor:
    """Differentiable parallel scan (the "torch" backend); arguments as `scan_parallel`."""
    return LinearScan.apply(a, b, h0, reverse, scan_parallel)
