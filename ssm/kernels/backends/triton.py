"""Backend `triton`: Triton GPU kernels for the Cauchy, log-space Vandermonde and scan primitives (tested on the
CPU with TRITON_INTERPRET=1). Primitive contracts: ops/cauchy.py, ops/log_vandermonde.py, ops/scan.py.

Complex tensors travel as interleaved (re, im) pairs. Work is tiled (BN values of n) x (BL positions l) with 2-D
accumulators reduced once per program. Conjugate pairs use one complex division per term (the pair over its
common denominator). Backward sums split L over programs into a (S, R, N) partial buffer summed afterwards:
no atomics. Powers x^l = exp(l log x) take their phase l * log x in float64, reduced modulo 2 pi, before the
float32 exp/cos/sin, and only (BN, BL / 8 + 8) of them per tile: x^(l0 + 8i + j) = x^(l0 + 8i) * x^j.
"""
from __future__ import annotations

import os
import sys
from typing import Optional, Tuple

import torch

from .._library import primitive
from ..probe import BackendNotInstalled

try:
    import triton
    import triton.language as tl
except ImportError as e:  # pragma: no cover - reported by load()
    triton, _IMPORT_ERROR = None, e
else:
    _IMPORT_ERROR = None

BN, BL, SUB = 16, 64, 8  # tile of n, tile of l, length of the inner power run (BL % SUB == 0)
SEG = 1024  # positions of L per program in the backward sums (then S = ceil(L / SEG) partials)
SCAN_BLOCK = 64


def load(device: torch.device = torch.device("cuda")):
    """Check that triton is importable and the device is a GPU (or the interpreter is on); returns this module."""
    if triton is None:
        raise BackendNotInstalled(f"triton is not installed ({_IMPORT_ERROR})")
    if torch.device(device).type != "cuda" and os.environ.get("TRITON_INTERPRET") != "1":
        raise RuntimeError("the triton backend runs on CUDA tensors (or on the CPU under TRITON_INTERPRET=1)")
    return sys.modules[__name__]


if triton is not None:

    @triton.jit
    def _cdiv_pair(nr, ni, dr, di):
        """(nr + i ni) / (dr + i di)."""
        s = 1.0 / (dr * dr + di * di)
        return (nr * dr + ni * di) * s, (ni * dr - nr * di) * s

    @triton.jit
    def _cauchy_fwd_kernel(v_ptr, z_ptr, w_ptr, out_ptr, N, L, Rw, CONJ: tl.constexpr, POWER: tl.constexpr,
                           BLOCK_N: tl.constexpr, BLOCK_L: tl.constexpr):
        b = tl.program_id(0).to(tl.int64)
        offs_l = tl.program_id(1) * BLOCK_L + tl.arange(0, BLOCK_L)
        ml = offs_l < L
        zr = tl.load(z_ptr + 2 * offs_l, mask=ml, other=0.0)[None, :]
        zi = tl.load(z_ptr + 2 * offs_l + 1, mask=ml, other=1.0)[None, :]
        acc_r = tl.zeros([BLOCK_N, BLOCK_L], dtype=zr.dtype)
        acc_i = tl.zeros([BLOCK_N, BLOCK_L], dtype=zr.dtype)
        for n0 in range(0, N, BLOCK_N):
            offs_n = n0 + tl.arange(0, BLOCK_N)
            mn = offs_n < N
            vr = tl.load(v_ptr + b * 2 * N + 2 * offs_n, mask=mn, other=0.0)[:, None]
            vi = tl.load(v_ptr + b * 2 * N + 2 * offs_n + 1, mask=mn, other=0.0)[:, None]
            wr = tl.load(w_ptr + (b % Rw) * 2 * N + 2 * offs_n, mask=mn, other=0.0)[:, None]
            wi = tl.load(w_ptr + (b % Rw) * 2 * N + 2 * offs_n + 1, mask=mn, other=0.0)[:, None]
            dr = zr - wr
            if CONJ:  # v / (z - w) + conj(v) / (z - conj w) = (a z - c) / ((z - w)(z - conj w))
                er = dr * dr - zi * zi + wi * wi
                ei = 2.0 * dr * zi
                a0 = 2.0 * vr
                a1 = 2.0 * (vr * wr + vi * wi)  # 2 Re(v conj w)
                if POWER == 1:
                    tr, ti = _cdiv_pair(a0 * zr - a1, a0 * zi, er, ei)
                else:  # (a0 z^2 - 2 a1 z + a2) / D^2, a2 = 2 Re(v conj(w)^2)
                    a2 = 2.0 * (vr * (wr * wr - wi * wi) + 2.0 * vi * wr * wi)
                    tr, ti = _cdiv_pair(a0 * (zr * zr - zi * zi) - 2.0 * a1 * zr + a2,
                                        2.0 * a0 * zr * zi - 2.0 * a1 * zi, er * er - ei * ei, 2.0 * er * ei)
            else:
                di = zi - wi
                if POWER == 1:
                    tr, ti = _cdiv_pair(vr, vi, dr, di)
                else:
                    tr, ti = _cdiv_pair(vr, vi, dr * dr - di * di, 2.0 * dr * di)
            keep = mn[:, None] & ml[None, :]
            acc_r += tl.where(keep, tr, 0.0)
            acc_i += tl.where(keep, ti, 0.0)
        tl.store(out_ptr + b * 2 * L + 2 * offs_l, tl.sum(acc_r, axis=0), mask=ml)
        tl.store(out_ptr + b * 2 * L + 2 * offs_l + 1, tl.sum(acc_i, axis=0), mask=ml)

    @triton.jit
    def _cauchy_bwd_kernel(g_ptr, z_ptr, w_ptr, s_ptr, N, L, Rw, R, SEG_L, CONJ: tl.constexpr,
                           BLOCK_N: tl.constexpr, BLOCK_L: tl.constexpr):
        """Partial S1, S2 of rows b, n-block, L-segment s -> s_ptr[s, b, n, 0:4] (S1 re, im, S2 re, im)."""
        b = tl.program_id(0).to(tl.int64)
        seg = tl.program_id(2).to(tl.int64)
        offs_n = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
        mn = offs_n < N
        wr = tl.load(w_ptr + (b % Rw) * 2 * N + 2 * offs_n, mask=mn, other=0.0)[:, None]
        wi = tl.load(w_ptr + (b % Rw) * 2 * N + 2 * offs_n + 1, mask=mn, other=0.0)[:, None]
        s1r = tl.zeros([BLOCK_N, BLOCK_L], dtype=wr.dtype)
        s1i = tl.zeros([BLOCK_N, BLOCK_L], dtype=wr.dtype)
        s2r = tl.zeros([BLOCK_N, BLOCK_L], dtype=wr.dtype)
        s2i = tl.zeros([BLOCK_N, BLOCK_L], dtype=wr.dtype)
        for l0 in range(seg * SEG_L, tl.minimum(seg * SEG_L + SEG_L, L), BLOCK_L):
            offs_l = l0 + tl.arange(0, BLOCK_L)
            ml = offs_l < L
            zr = tl.load(z_ptr + 2 * offs_l, mask=ml, other=0.0)[None, :]
            zi = tl.load(z_ptr + 2 * offs_l + 1, mask=ml, other=1.0)[None, :]
            gr = tl.load(g_ptr + b * 2 * L + 2 * offs_l, mask=ml, other=0.0)[None, :]
            gi = tl.load(g_ptr + b * 2 * L + 2 * offs_l + 1, mask=ml, other=0.0)[None, :]
            dr = zr - wr
            if CONJ:  # S1 += (P1 - P0 conj w) / D, S2 += (P2 - 2 P1 conj w + P0 conj(w)^2) / D^2, D = conj(z - w)(z - conj w)
                p0 = 2.0 * gr
                p1 = 2.0 * (gr * zr - gi * zi)
                p2 = 2.0 * (gr * (zr * zr - zi * zi) - 2.0 * gi * zr * zi)
                e1 = zi - wi
                e2 = zi + wi
                qr, qi = _cdiv_pair(1.0, 0.0, dr * dr + e1 * e2, 2.0 * dr * wi)  # 1 / D
                ar, ai = p1 - p0 * wr, p0 * wi
                br = p2 - 2.0 * p1 * wr + p0 * (wr * wr - wi * wi)
                bi = 2.0 * p1 * wi - 2.0 * p0 * wr * wi
                tr, ti = ar * qr - ai * qi, ar * qi + ai * qr
                q2r, q2i = qr * qr - qi * qi, 2.0 * qr * qi
                ur, ui = br * q2r - bi * q2i, br * q2i + bi * q2r
            else:  # t = g / A, S1 += t, S2 += t / A, A = conj(z - w)
                qr, qi = _cdiv_pair(1.0, 0.0, dr, wi - zi)
                tr, ti = gr * qr - gi * qi, gr * qi + gi * qr
                ur, ui = tr * qr - ti * qi, tr * qi + ti * qr
            keep = mn[:, None] & ml[None, :]
            s1r += tl.where(keep, tr, 0.0)
            s1i += tl.where(keep, ti, 0.0)
            s2r += tl.where(keep, ur, 0.0)
            s2i += tl.where(keep, ui, 0.0)
        base = ((seg * R + b) * N + offs_n) * 4
        tl.store(s_ptr + base, tl.sum(s1r, axis=1), mask=mn)
        tl.store(s_ptr + base + 1, tl.sum(s1i, axis=1), mask=mn)
        tl.store(s_ptr + base + 2, tl.sum(s2r, axis=1), mask=mn)
        tl.store(s_ptr + base + 3, tl.sum(s2i, axis=1), mask=mn)

    @triton.jit
    def _pow(lr, li, l, like):
        """exp(l (lr + i li)) with float64 lr, li, int l (broadcast): phase formed and reduced in float64; l = 0 -> 1."""
        TWO_PI: tl.constexpr = 6.283185307179586
        lf = l.to(tl.float64)
        th = lf * li
        th = (th - TWO_PI * tl.floor(th / TWO_PI + 0.5)).to(like.dtype)
        mag = tl.exp((lf * lr).to(like.dtype))
        first = l == 0  # x^0 = 1 for every x, also where l * log x is NaN
        return tl.where(first, 1.0, mag * tl.cos(th)), tl.where(first, 0.0, mag * tl.sin(th))

    @triton.jit
    def _powers(lr, li, l0, like, BLOCK_N: tl.constexpr, BLOCK_L: tl.constexpr, SUB_L: tl.constexpr):
        """x^(l0 + j) for j < BLOCK_L as (BLOCK_N, BLOCK_L) tiles: (x^(l0 + SUB i))_i times (x^j)_j, j < SUB."""
        hi_l = l0 + SUB_L * tl.arange(0, BLOCK_L // SUB_L)
        hr, hi = _pow(lr[:, None], li[:, None], hi_l[None, :], like)
        lo_r, lo_i = _pow(lr[:, None], li[:, None], tl.arange(0, SUB_L)[None, :], like)
        pr = hr[:, :, None] * lo_r[:, None, :] - hi[:, :, None] * lo_i[:, None, :]
        pi = hr[:, :, None] * lo_i[:, None, :] + hi[:, :, None] * lo_r[:, None, :]
        return tl.reshape(pr, (BLOCK_N, BLOCK_L)), tl.reshape(pi, (BLOCK_N, BLOCK_L))

    @triton.jit
    def _vdm_fwd_kernel(v_ptr, lx_ptr, out_ptr, N, L, Rx, BLOCK_N: tl.constexpr, BLOCK_L: tl.constexpr,
                        SUB_L: tl.constexpr):
        b = tl.program_id(0).to(tl.int64)
        l0 = tl.program_id(1) * BLOCK_L
        offs_l = l0 + tl.arange(0, BLOCK_L)
        ml = offs_l < L
        like = tl.load(v_ptr + b * 2 * N)
        acc_r = tl.zeros([BLOCK_N, BLOCK_L], dtype=like.dtype)
        acc_i = tl.zeros([BLOCK_N, BLOCK_L], dtype=like.dtype)
        for n0 in range(0, N, BLOCK_N):
            offs_n = n0 + tl.arange(0, BLOCK_N)
            mn = offs_n < N
            vr = tl.load(v_ptr + b * 2 * N + 2 * offs_n, mask=mn, other=0.0)[:, None]
            vi = tl.load(v_ptr + b * 2 * N + 2 * offs_n + 1, mask=mn, other=0.0)[:, None]
            lr = tl.load(lx_ptr + (b % Rx) * 2 * N + 2 * offs_n, mask=mn, other=0.0)
            li = tl.load(lx_ptr + (b % Rx) * 2 * N + 2 * offs_n + 1, mask=mn, other=0.0)
            pr, pi = _powers(lr, li, l0, like, BLOCK_N, BLOCK_L, SUB_L)
            keep = mn[:, None] & ml[None, :]
            acc_r += tl.where(keep, vr * pr - vi * pi, 0.0)
            acc_i += tl.where(keep, vr * pi + vi * pr, 0.0)
        tl.store(out_ptr + b * 2 * L + 2 * offs_l, tl.sum(acc_r, axis=0), mask=ml)
        tl.store(out_ptr + b * 2 * L + 2 * offs_l + 1, tl.sum(acc_i, axis=0), mask=ml)

    @triton.jit
    def _vdm_sums_kernel(h_ptr, lx_ptr, s_ptr, N, L, Rx, R, SEG_L, COMPLEX_H: tl.constexpr, WANT_A: tl.constexpr,
                         WANT_D: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_L: tl.constexpr, SUB_L: tl.constexpr):
        """Partial sum_l h_l x^l (A) and sum_l l h_l x^l (D) of row b, n-block, L-segment -> s_ptr[seg, b, n, 0:4]."""
        b = tl.program_id(0).to(tl.int64)
        seg = tl.program_id(2).to(tl.int64)
        offs_n = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
        mn = offs_n < N
        lr = tl.load(lx_ptr + (b % Rx) * 2 * N + 2 * offs_n, mask=mn, other=0.0)
        li = tl.load(lx_ptr + (b % Rx) * 2 * N + 2 * offs_n + 1, mask=mn, other=0.0)
        W: tl.constexpr = 2 if COMPLEX_H else 1
        like = tl.load(h_ptr + b * W * L)
        ar = tl.zeros([BLOCK_N, BLOCK_L], dtype=like.dtype)
        ai = tl.zeros([BLOCK_N, BLOCK_L], dtype=like.dtype)
        dr = tl.zeros([BLOCK_N, BLOCK_L], dtype=like.dtype)
        di = tl.zeros([BLOCK_N, BLOCK_L], dtype=like.dtype)
        for l0 in range(seg * SEG_L, tl.minimum(seg * SEG_L + SEG_L, L), BLOCK_L):
            offs_l = l0 + tl.arange(0, BLOCK_L)
            ml = offs_l < L
            hr = tl.load(h_ptr + b * W * L + W * offs_l, mask=ml, other=0.0)[None, :]
            pr, pi = _powers(lr, li, l0, like, BLOCK_N, BLOCK_L, SUB_L)
            if COMPLEX_H:
                hi = tl.load(h_ptr + b * 2 * L + 2 * offs_l + 1, mask=ml, other=0.0)[None, :]
                er, ei = hr * pr - hi * pi, hr * pi + hi * pr
            else:
                er, ei = hr * pr, hr * pi
            keep = mn[:, None] & ml[None, :]
            er = tl.where(keep, er, 0.0)
            ei = tl.where(keep, ei, 0.0)
            if WANT_A:
                ar += er
                ai += ei
            if WANT_D:
                lf = offs_l[None, :].to(er.dtype)
                dr += lf * er
                di += lf * ei
        base = ((seg * R + b) * N + offs_n) * 4
        tl.store(s_ptr + base, tl.sum(ar, axis=1), mask=mn)
        tl.store(s_ptr + base + 1, tl.sum(ai, axis=1), mask=mn)
        tl.store(s_ptr + base + 2, tl.sum(dr, axis=1), mask=mn)
        tl.store(s_ptr + base + 3, tl.sum(di, axis=1), mask=mn)

    @triton.jit
    def _scan_kernel(a_ptr, b_ptr, h0_ptr, out_ptr, L, N, sa_m, sa_l, sa_n,
                     HAS_H0: tl.constexpr, TV: tl.constexpr, REVERSE: tl.constexpr, COMPLEX: tl.constexpr,
                     BLOCK: tl.constexpr):
        """One program per (row, block of channels) walks L sequentially (the recurrence is memory-bound)."""
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


def _r(t: torch.Tensor) -> torch.Tensor:
    return torch.view_as_real(t.resolve_conj().contiguous()) if t.is_complex() else t.contiguous()


def _segments(L: int) -> int:
    return triton.cdiv(L, SEG)


def _two(partial: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """(S, R, N, 4) partial sums -> two complex (R, N)."""
    s = partial.sum(0) if partial.shape[0] > 1 else partial[0]
    return torch.view_as_complex(s[..., :2].contiguous()), torch.view_as_complex(s[..., 2:].contiguous())


@primitive("triton_cauchy_fwd", lambda v, z, w, conj, power: v.new_empty(v.shape[0], z.shape[0]))
def cauchy_fwd(v: torch.Tensor, z: torch.Tensor, w: torch.Tensor, conj: bool, power: int) -> torch.Tensor:
    R, N = v.shape
    L = z.shape[0]
    out = torch.empty(R, L, dtype=v.dtype, device=v.device)
    _cauchy_fwd_kernel[(R, triton.cdiv(L, BL))](_r(v), _r(z), _r(w), _r(out), N, L, w.shape[0], CONJ=bool(conj),
                                                POWER=int(power), BLOCK_N=BN, BLOCK_L=BL)
    return out


def _bwd_fake(g, z, w, conj):
    return w.new_empty(g.shape[0], w.shape[1]), w.new_empty(g.shape[0], w.shape[1])


@primitive("triton_cauchy_bwd", _bwd_fake)
def cauchy_bwd(g: torch.Tensor, z: torch.Tensor, w: torch.Tensor, conj: bool) -> Tuple[torch.Tensor, torch.Tensor]:
    R, L = g.shape
    N = w.shape[1]
    S = _segments(L)
    part = torch.empty(S, R, N, 4, dtype=_r(w).dtype, device=w.device)
    _cauchy_bwd_kernel[(R, triton.cdiv(N, BN), S)](_r(g), _r(z), _r(w), part, N, L, w.shape[0], R, SEG,
                                                   CONJ=bool(conj), BLOCK_N=BN, BLOCK_L=BL)
    return _two(part)


@primitive("triton_vandermonde_fwd", lambda v, lx, L: v.new_empty(v.shape[0], L))
def vandermonde_fwd(v: torch.Tensor, lx: torch.Tensor, L: int) -> torch.Tensor:
    R, N = v.shape
    out = torch.empty(R, L, dtype=v.dtype, device=v.device)
    _vdm_fwd_kernel[(R, triton.cdiv(L, BL))](_r(v), _r(lx), _r(out), N, L, lx.shape[0], BLOCK_N=BN, BLOCK_L=BL,
                                             SUB_L=SUB)
    return out


def _sums(h: torch.Tensor, lx: torch.Tensor, want_a: bool, want_d: bool) -> torch.Tensor:
    R, L = h.shape
    N = lx.shape[1]
    S = _segments(L)
    part = torch.empty(S, R, N, 4, dtype=h.real.dtype if h.is_complex() else h.dtype, device=h.device)
    _vdm_sums_kernel[(R, triton.cdiv(N, BN), S)](_r(h), _r(lx), part, N, L, lx.shape[0], R, SEG,
                                                 COMPLEX_H=h.is_complex(), WANT_A=want_a, WANT_D=want_d,
                                                 BLOCK_N=BN, BLOCK_L=BL, SUB_L=SUB)
    return part


def _pair_fake(g, lx):
    return g.new_empty(g.shape[0], lx.shape[1]), g.new_empty(g.shape[0], lx.shape[1])


@primitive("triton_vandermonde_bwd", _pair_fake)
def vandermonde_bwd(g: torch.Tensor, lx: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    return _two(_sums(g, lx, True, True))


def _transpose_fake(u, lx, weighted):
    return u.new_empty(u.shape[0], lx.shape[1], dtype=torch.complex128 if u.dtype == torch.float64 else torch.complex64)


@primitive("triton_vandermonde_transpose", _transpose_fake)
def vandermonde_transpose(u: torch.Tensor, lx: torch.Tensor, weighted: bool) -> torch.Tensor:
    A, D = _two(_sums(u, lx, not weighted, weighted))
    return D if weighted else A


def _scan_fake(a, b, h0, reverse):
    return torch.empty_like(b, memory_format=torch.contiguous_format)


@primitive("triton_scan_fwd", _scan_fake)
def scan_fwd(a: torch.Tensor, b: torch.Tensor, h0: Optional[torch.Tensor], reverse: bool) -> torch.Tensor:
    L, N = b.shape[-2], b.shape[-1]
    b3 = b.reshape(-1, L, N).contiguous()
    M = b3.shape[0]
    a3 = a.expand(b.shape[:-2] + (a.shape[-2], N)).reshape(M, a.shape[-2], N)
    h03 = h0.reshape(M, N).contiguous() if h0 is not None else b3  # dummy pointer when absent
    out = torch.empty_like(b3)
    ar = torch.view_as_real(a3.resolve_conj()) if a3.is_complex() else a3  # strides kept (broadcast views)
    sa = ar.stride()
    _scan_kernel[(M, triton.cdiv(N, SCAN_BLOCK))](ar, _r(b3), _r(h03), _r(out), L, N, sa[0], sa[1], sa[2],
                                                  HAS_H0=h0 is not None, TV=a.shape[-2] != 1, REVERSE=reverse,
                                                  COMPLEX=b.is_complex(), BLOCK=SCAN_BLOCK)
    return out.reshape(b.shape)
