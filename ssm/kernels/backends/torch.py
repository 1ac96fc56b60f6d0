"""Backend `torch` primitives that are not an op's reference: the parallel (associative) scan.

scan_fwd(a, b, h0, reverse) evaluates h_l = a_l * h_{l-1} + b_l as the prefix "product" of pairs under
(a, b) o (a', b') = (a' a, a' b + b'): the odd-even (Blelloch-style) recursion combines neighbouring pairs,
scans the half-length sequence and fills in the even positions; O(log L) depth, O(L) work, every level a
handful of vectorised tensor ops. On the CPU long sequences are cut into chunks of about sqrt(L), scanned
sequentially inside (vectorised over chunks) and combined across chunks by the recursion.

Shapes: b (..., L, N); a (..., La, N) with the same number of dims as b, La in {1, L} and batch dims of size 1
or equal to b's (a time-invariant `a` keeps La = 1 throughout: its powers are computed once per level).
The autograd (a reverse scan by this same function, differentiable again) lives in ops/scan.py.
"""
from __future__ import annotations

import math
from typing import Optional

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


def scan_fwd(a: torch.Tensor, b: torch.Tensor, h0: Optional[torch.Tensor] = None, reverse: bool = False,
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
