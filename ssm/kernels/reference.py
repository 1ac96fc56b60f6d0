"""Pure-torch reference implementations: materialise everything; the oracle for every fast backend."""
from __future__ import annotations

from typing import Optional

import torch


def cauchy_ref(v: torch.Tensor, z: torch.Tensor, w: torch.Tensor, conj: bool = False) -> torch.Tensor:
    """out[..., l] = sum_n v[..., n] / (z[l] - w[..., n]) (+ conjugate pairs if `conj`); v, w: (..., N), z: (L,) -> (..., L)."""
    r = v.unsqueeze(-1) / (z - w.unsqueeze(-1))
    if conj:
        r = r + v.conj().unsqueeze(-1) / (z - w.conj().unsqueeze(-1))
    return r.sum(dim=-2)


def vandermonde_ref(v: torch.Tensor, x: torch.Tensor, L: int) -> torch.Tensor:
    """out[..., l] = sum_n v[..., n] * x[..., n] ** l in log space; v, x: (..., N) complex (broadcastable) -> (..., L).

    x^l = exp(qT log x) * exp(j log x) for l = qT + j: both factors are formed in complex128 and rounded once,
    so complex64 results stay accurate to ~1e-6 even for |x| near 1 and L = 16384 (a direct complex64
    exp(l log x) loses ~l * eps of phase). x must be nonzero."""
    T = _CHUNK
    Q = -(-L // T)
    logx = torch.log(x.to(torch.complex128)).unsqueeze(-1)  # (..., N, 1)
    idx = torch.arange(max(T, Q), device=x.device, dtype=torch.float64)
    inner = torch.exp(logx * idx[:T]).to(x.dtype)  # x^j, j < T
    outer = torch.exp(logx * (idx[:Q] * T)).to(x.dtype)  # x^(qT)
    powers = (outer.unsqueeze(-1) * inner.unsqueeze(-2)).flatten(-2)[..., :L]  # (..., N, L)
    return (v.unsqueeze(-1) * powers).sum(dim=-2)


_CHUNK = 64


def _log_powers(log_x: torch.Tensor, L: int, dtype: torch.dtype) -> torch.Tensor:
    """exp(l log_x) for l < L: log_x (..., N) -> (..., N, L), the phase l*log_x formed in float64, rounded once."""
    l = torch.arange(L, device=log_x.device, dtype=torch.float64)
    return torch.exp(log_x.to(torch.complex128).unsqueeze(-1) * l).to(dtype)


def log_vandermonde_ref(v: torch.Tensor, log_x: torch.Tensor, L: int) -> torch.Tensor:
    """out[..., l] = sum_n v[..., n] exp(l log_x[..., n]); v, log_x: (..., N) complex (broadcastable) -> (..., L)."""
    dtype = torch.promote_types(v.dtype, log_x.dtype)
    return (v.unsqueeze(-1).to(dtype) * _log_powers(log_x, L, dtype)).sum(dim=-2)


def log_vandermonde_transpose_ref(u: torch.Tensor, log_x: torch.Tensor) -> torch.Tensor:
    """out[..., n] = sum_l u[..., l] exp(l log_x[..., n]); u: (..., L) real or complex, log_x: (..., N) -> (..., N)."""
    dtype = torch.promote_types(torch.promote_types(u.dtype, log_x.dtype), torch.complex64)
    powers = _log_powers(log_x, u.shape[-1], dtype)  # (..., N, L)
    return (powers * u.unsqueeze(-2).to(dtype)).sum(dim=-1)


def scan_ref(a: torch.Tensor, b: torch.Tensor, h0: Optional[torch.Tensor] = None, reverse: bool = False) -> torch.Tensor:
    """Sequential h_l = a_l * h_{l-1} + b_l over dim -2; a broadcastable to b: (..., L, N), h0: (..., N) -> (..., L, N)."""
    a = a.expand_as(b) if a.dim() == b.dim() else torch.broadcast_to(a, b.shape)
    L = b.shape[-2]
    h = torch.zeros_like(b[..., 0, :]) if h0 is None else h0.to(b.dtype).expand_as(b[..., 0, :])
    out = []
    steps = range(L - 1, -1, -1) if reverse else range(L)
    for t in steps:
        h = a[..., t, :] * h + b[..., t, :]
        out.append(h)
    if reverse:
        out.reverse()
    return torch.stack(out, dim=-2)
