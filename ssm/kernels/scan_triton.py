"""The "triton" scan backend (CUDA): one program per (row, block of channels) walks L sequentially.

Complex tensors are read through their real views (real, imag interleaved). The recurrence is
memory-bound, so a sequential walk over L with coalesced loads of a channel block is as fast as a
tree scan here, and needs no workspace. Tests run it on the CPU with TRITON_INTERPRET=1.
"""
from __future__ import annotations

from typing import Optional

import torch

from .scan_torch import LinearScan

try:
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - exercised where triton is absent
    triton = None

BLOCK_N = 64

if triton is not None:

    @triton.jit
    def _scan_kernel(a_ptr, b_ptr, h0_ptr, out_ptr, L, N, sa_m, sa_l, sa_n,
                     HAS_H0: tl.constexpr, TV: tl.constexpr, REVERSE: tl.constexpr, COMPLEX: tl.constexpr,
                     BLOCK: tl.constexpr):
        m = tl.program_id(0).to(tl.int64)
        n = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
        mask = n < N
        W: tl.constexpr = 2 if COMPLEX else 1  # reals per element
        zero = tl.zeros([BLOCK], dtype=b_ptr.dtype.element_ty)
        hr, hi = zero, zero
        if HAS_H0:
            hr = tl.load(h0_ptr + (m * N + n) * W, mask=mask, other=0.0)
            if COMPLEX:
                hi = tl.load(h0_ptr + (m * N + n) * W + 1, mask=mask, other=0.0)
        for s in range(L):
            t = L - 1 - s if REVERSE else s
            a_off = m * sa_m + n * sa_n
            if TV:
                a_off += t * sa_l
            b_off = ((m * L + t) * N + n) * W
            ar = tl.load(a_ptr + a_off, mask=mask, other=0.0)
            br = tl.load(b_ptr + b_off, mask=mask, other=0.0)
            if COMPLEX:
                ai = tl.load(a_ptr + a_off + 1, mask=mask, other=0.0)
                bi = tl.load(b_ptr + b_off + 1, mask=mask, other=0.0)
                hr, hi = ar * hr - ai * hi + br, ar * hi + ai * hr + bi
                tl.store(out_ptr + b_off + 1, hi, mask=mask)
            else:
                hr = ar * hr + br
            tl.store(out_ptr + b_off, hr, mask=mask)


def _real(t: torch.Tensor) -> torch.Tensor:
    return torch.view_as_real(t.resolve_conj()) if t.is_complex() else t


def scan_triton_forward(a: torch.Tensor, b: torch.Tensor, h0: Optional[torch.Tensor], reverse: bool) -> torch.Tensor:
    """Flatten to (M, L, N) and launch the kernel; a (..., La, N) is read through its (broadcast) strides."""
    if triton is None:
        raise ImportError("triton is not installed (pip install triton)")
    L, N = b.shape[-2], b.shape[-1]
    b3 = b.reshape(-1, L, N).contiguous()
    M = b3.shape[0]
    a3 = a.expand(b.shape[:-2] + a.shape[-2:]).reshape(M, a.shape[-2], N)
    h03 = h0.reshape(M, N).contiguous() if h0 is not None else b3  # dummy pointer when absent
    out = torch.empty_like(b3)
    ar = _real(a3)
    sa = ar.stride()
    grid = (M, triton.cdiv(N, BLOCK_N))
    _scan_kernel[grid](ar, _real(b3), _real(h03), _real(out), L, N, sa[0], sa[1], sa[2],
                       HAS_H0=h0 is not None, TV=a.shape[-2] != 1, REVERSE=reverse, COMPLEX=b.is_complex(),
                       BLOCK=BLOCK_N)
    return out.reshape(b.shape)


def scan_triton(a: torch.Tensor, b: torch.Tensor, h0: Optional[torch.Tensor] = None,
                reverse: bool = False) -> torch.Tensor:
    """Differentiable Triton scan; the backward is a reverse scan by the same kernel."""
    return LinearScan.apply(a, b, h0, reverse, scan_triton_forward)


def probe(device: torch.device) -> None:
    """Raise with the reason unless the kernel compiles and runs on `device` and matches the reference."""
    if triton is None:
        raise ImportError("triton is not installed (pip install triton)")
    from .reference import scan_ref
    from .scan import _check_close, probe_case

    a, b, h0 = probe_case(device)
    _check_close(scan_triton(a, b, h0, False), scan_ref(a, b, h0, False), "triton")
