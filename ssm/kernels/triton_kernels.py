"""Backend `triton`: Triton GPU kernels for Cauchy and Vandermonde (tested on the CPU with TRITON_INTERPRET=1).

Complex tensors travel as interleaved real pairs. Vandermonde powers come from a float64 phase l*log(x) reduced
modulo 2 pi before the float32 exp/cos/sin, so complex64 stays accurate for long L and |x| near 1."""
from __future__ import annotations

from typing import Tuple

import torch

from .dispatch import BackendNotInstalled

try:
    import triton
    import triton.language as tl
except ImportError as e:  # pragma: no cover - reported by load()
    triton, _IMPORT_ERROR = None, e
else:
    _IMPORT_ERROR = None

BLOCK_N, BLOCK_L = 16, 64


def load(device: torch.device = torch.device("cuda")):
    """Check that triton is importable and the device is a GPU (or the interpreter is on); returns this module."""
    if triton is None:
        raise BackendNotInstalled(f"triton is not installed ({_IMPORT_ERROR})")
    import os
    import sys

    if torch.device(device).type != "cuda" and os.environ.get("TRITON_INTERPRET") != "1":
        raise RuntimeError("the triton backend runs on CUDA tensors (or on the CPU under TRITON_INTERPRET=1)")
    return sys.modules[__name__]


if triton is not None:

    @triton.jit
    def _recip(dr, di, POWER: tl.constexpr):
        """(1 / (dr + i di))^POWER as (re, im)."""
        s = 1.0 / (dr * dr + di * di)
        rr = dr * s
        ri = -di * s
        if POWER == 2:
            t = rr * rr - ri * ri
            ri = 2.0 * rr * ri
            rr = t
        return rr, ri

    @triton.jit
    def _cauchy_fwd_kernel(v_ptr, z_ptr, w_ptr, out_ptr, N, L, Rw, CONJ: tl.constexpr, POWER: tl.constexpr,
                           BN: tl.constexpr, BL: tl.constexpr):
        b = tl.program_id(0)
        offs_l = tl.program_id(1) * BL + tl.arange(0, BL)
        ml = offs_l < L
        zr = tl.load(z_ptr + 2 * offs_l, mask=ml, other=0.0)
        zi = tl.load(z_ptr + 2 * offs_l + 1, mask=ml, other=1.0)
        acc_r = zr * 0.0
        acc_i = zr * 0.0
        for n0 in range(0, N, BN):
            offs_n = n0 + tl.arange(0, BN)
            mn = offs_n < N
            vr = tl.load(v_ptr + b * 2 * N + 2 * offs_n, mask=mn, other=0.0)[:, None]
            vi = tl.load(v_ptr + b * 2 * N + 2 * offs_n + 1, mask=mn, other=0.0)[:, None]
            wr = tl.load(w_ptr + (b % Rw) * 2 * N + 2 * offs_n, mask=mn, other=0.0)[:, None]
            wi = tl.load(w_ptr + (b % Rw) * 2 * N + 2 * offs_n + 1, mask=mn, other=0.0)[:, None]
            dr = zr[None, :] - wr
            rr, ri = _recip(dr, zi[None, :] - wi, POWER)
            tr = vr * rr - vi * ri
            ti = vr * ri + vi * rr
            if CONJ:
                er, ei = _recip(dr, zi[None, :] + wi, POWER)
                tr += vr * er + vi * ei
                ti += vr * ei - vi * er
            keep = mn[:, None] & ml[None, :]
            acc_r += tl.sum(tl.where(keep, tr, 0.0), axis=0)
            acc_i += tl.sum(tl.where(keep, ti, 0.0), axis=0)
        tl.store(out_ptr + b * 2 * L + 2 * offs_l, acc_r, mask=ml)
        tl.store(out_ptr + b * 2 * L + 2 * offs_l + 1, acc_i, mask=ml)

    @triton.jit
    def _cauchy_bwd_kernel(g_ptr, z_ptr, w_ptr, s1_ptr, s2_ptr, N, L, Rw, CONJ: tl.constexpr,
                           BN: tl.constexpr, BL: tl.constexpr):
        b = tl.program_id(0)
        offs_n = tl.program_id(1) * BN + tl.arange(0, BN)
        mn = offs_n < N
        wr = tl.load(w_ptr + (b % Rw) * 2 * N + 2 * offs_n, mask=mn, other=0.0)[:, None]
        wi = tl.load(w_ptr + (b % Rw) * 2 * N + 2 * offs_n + 1, mask=mn, other=0.0)[:, None]
        p1r = tl.sum(wr * 0.0, axis=1)
        p1i = p1r
        p2r = p1r
        p2i = p1r
        for l0 in range(0, L, BL):
            offs_l = l0 + tl.arange(0, BL)
            ml = offs_l < L
            yr = tl.load(z_ptr + 2 * offs_l, mask=ml, other=0.0)[None, :]  # zeta = conj z
            yi = -tl.load(z_ptr + 2 * offs_l + 1, mask=ml, other=1.0)[None, :]
            gr = tl.load(g_ptr + b * 2 * L + 2 * offs_l, mask=ml, other=0.0)[None, :]
            gi = tl.load(g_ptr + b * 2 * L + 2 * offs_l + 1, mask=ml, other=0.0)[None, :]
            keep = mn[:, None] & ml[None, :]
            ir, ii = _recip(yr - wr, yi + wi, 1)  # 1 / (zeta - conj w)
            tr = gr * ir - gi * ii
            ti = gr * ii + gi * ir
            ur = tr * ir - ti * ii
            ui = tr * ii + ti * ir
            if CONJ:
                jr, ji = _recip(yr - wr, yi - wi, 1)  # 1 / (zeta - w), conjugated into the sums
                qr = gr * jr - gi * ji
                qi = gr * ji + gi * jr
                tr += qr
                ti -= qi
                ur += qr * jr - qi * ji
                ui -= qr * ji + qi * jr
            p1r += tl.sum(tl.where(keep, tr, 0.0), axis=1)
            p1i += tl.sum(tl.where(keep, ti, 0.0), axis=1)
            p2r += tl.sum(tl.where(keep, ur, 0.0), axis=1)
            p2i += tl.sum(tl.where(keep, ui, 0.0), axis=1)
        base = b * 2 * N + 2 * offs_n
        tl.store(s1_ptr + base, p1r, mask=mn)
        tl.store(s1_ptr + base + 1, p1i, mask=mn)
        tl.store(s2_ptr + base, p2r, mask=mn)
        tl.store(s2_ptr + base + 1, p2i, mask=mn)

    @triton.jit
    def _power(a, t, l, like):
        """x^l = exp(l a) * (cos + i sin)(l t) from float64 a = log|x|, t = arg x; phase reduced mod 2 pi in float64."""
        TWO_PI: tl.constexpr = 6.283185307179586
        lf = l.to(tl.float64)
        m = (lf * a).to(like.dtype)
        th = lf * t
        th = (th - TWO_PI * tl.floor(th / TWO_PI + 0.5)).to(like.dtype)
        mag = tl.exp(m)
        first = l == 0  # x^0 = 1, also for x = 0 where l * log|x| is NaN
        return tl.where(first, 1.0, mag * tl.cos(th)), tl.where(first, 0.0, mag * tl.sin(th))

    @triton.jit
    def _vdm_fwd_kernel(v_ptr, lx_ptr, out_ptr, N, L, Rx, BN: tl.constexpr, BL: tl.constexpr):
        b = tl.program_id(0)
        offs_l = tl.program_id(1) * BL + tl.arange(0, BL)
        ml = offs_l < L
        first = tl.load(v_ptr + b * 2 * N)
        acc_r = tl.zeros([BL], dtype=tl.float32).to(first.dtype)
        acc_i = acc_r
        for n0 in range(0, N, BN):
            offs_n = n0 + tl.arange(0, BN)
            mn = offs_n < N
            vr = tl.load(v_ptr + b * 2 * N + 2 * offs_n, mask=mn, other=0.0)[:, None]
            vi = tl.load(v_ptr + b * 2 * N + 2 * offs_n + 1, mask=mn, other=0.0)[:, None]
            a = tl.load(lx_ptr + (b % Rx) * 2 * N + 2 * offs_n, mask=mn, other=0.0)[:, None]
            t = tl.load(lx_ptr + (b % Rx) * 2 * N + 2 * offs_n + 1, mask=mn, other=0.0)[:, None]
            pr, pi = _power(a, t, offs_l[None, :], vr)
            keep = mn[:, None] & ml[None, :]
            acc_r += tl.sum(tl.where(keep, vr * pr - vi * pi, 0.0), axis=0)
            acc_i += tl.sum(tl.where(keep, vr * pi + vi * pr, 0.0), axis=0)
        tl.store(out_ptr + b * 2 * L + 2 * offs_l, acc_r, mask=ml)
        tl.store(out_ptr + b * 2 * L + 2 * offs_l + 1, acc_i, mask=ml)

    @triton.jit
    def _vdm_bwd_kernel(h_ptr, lx_ptr, A_ptr, D_ptr, N, L, Rx, BN: tl.constexpr, BL: tl.constexpr):
        b = tl.program_id(0)
        offs_n = tl.program_id(1) * BN + tl.arange(0, BN)
        mn = offs_n < N
        a = tl.load(lx_ptr + (b % Rx) * 2 * N + 2 * offs_n, mask=mn, other=0.0)[:, None]
        t = tl.load(lx_ptr + (b % Rx) * 2 * N + 2 * offs_n + 1, mask=mn, other=0.0)[:, None]
        like = tl.load(h_ptr + b * 2 * L)
        ar = tl.zeros([BN], dtype=tl.float32).to(like.dtype)
        ai = ar
        dr = ar
        di = ar
        for l0 in range(0, L, BL):
            offs_l = l0 + tl.arange(0, BL)
            ml = offs_l < L
            hr = tl.load(h_ptr + b * 2 * L + 2 * offs_l, mask=ml, other=0.0)[None, :]
            hi = tl.load(h_ptr + b * 2 * L + 2 * offs_l + 1, mask=ml, other=0.0)[None, :]
            pr, pi = _power(a, t, offs_l[None, :], hr)
            keep = mn[:, None] & ml[None, :]
            er = tl.where(keep, hr * pr - hi * pi, 0.0)
            ei = tl.where(keep, hr * pi + hi * pr, 0.0)
            lf = offs_l[None, :].to(er.dtype)
            ar += tl.sum(er, axis=1)
            ai += tl.sum(ei, axis=1)
            dr += tl.sum(lf * er, axis=1)
            di += tl.sum(lf * ei, axis=1)
        base = b * 2 * N + 2 * offs_n
        tl.store(A_ptr + base, ar, mask=mn)
        tl.store(A_ptr + base + 1, ai, mask=mn)
        tl.store(D_ptr + base, dr, mask=mn)
        tl.store(D_ptr + base + 1, di, mask=mn)


def _r(t: torch.Tensor) -> torch.Tensor:
    return torch.view_as_real(t.resolve_conj().contiguous())


def cauchy_fwd(v: torch.Tensor, z: torch.Tensor, w: torch.Tensor, conj: bool, power: int) -> torch.Tensor:
    """v (R, N), z (L,), w (Rw, N) -> (R, L): sum_n v / (z - w)^power (+ conjugate pairs)."""
    R, N = v.shape
    L = z.shape[0]
    out = torch.empty(R, L, dtype=v.dtype, device=v.device)
    grid = (R, triton.cdiv(L, BLOCK_L))
    _cauchy_fwd_kernel[grid](_r(v), _r(z), _r(w), _r(out), N, L, w.shape[0], CONJ=bool(conj), POWER=int(power),
                             BN=BLOCK_N, BL=BLOCK_L)
    return out


def cauchy_bwd(g: torch.Tensor, z: torch.Tensor, w: torch.Tensor, conj: bool) -> Tuple[torch.Tensor, torch.Tensor]:
    """g (R, L) -> S1, S2 (R, N): the gradient sums (see cauchy.py)."""
    R, L = g.shape
    N = w.shape[1]
    s1 = torch.empty(R, N, dtype=w.dtype, device=w.device)
    s2 = torch.empty_like(s1)
    grid = (R, triton.cdiv(N, BLOCK_N))
    _cauchy_bwd_kernel[grid](_r(g), _r(z), _r(w), _r(s1), _r(s2), N, L, w.shape[0], CONJ=bool(conj),
                             BN=BLOCK_N, BL=BLOCK_L)
    return s1, s2


def _logx(x: torch.Tensor) -> torch.Tensor:
    """(Rx, N) -> (Rx, N, 2) float64 [log|x|, arg x]."""
    return torch.view_as_real(torch.log(x.to(torch.complex128))).contiguous()


def vandermonde_fwd(v: torch.Tensor, x: torch.Tensor, L: int) -> torch.Tensor:
    """v (R, N), x (Rx, N) -> (R, L): sum_n v x^l."""
    R, N = v.shape
    out = torch.empty(R, L, dtype=v.dtype, device=v.device)
    _vdm_fwd_kernel[(R, triton.cdiv(L, BLOCK_L))](_r(v), _logx(x), _r(out), N, L, x.shape[0], BN=BLOCK_N, BL=BLOCK_L)
    return out


def vandermonde_bwd(h: torch.Tensor, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """h (R, L), x (Rx, N) -> A, D (R, N): sum_l h x^l and sum_l l h x^l."""
    R, L = h.shape
    N = x.shape[1]
    A = torch.empty(R, N, dtype=h.dtype, device=h.device)
    D = torch.empty_like(A)
    _vdm_bwd_kernel[(R, triton.cdiv(N, BLOCK_N))](_r(h), _logx(x), _r(A), _r(D), N, L, x.shape[0],
                                                  BN=BLOCK_N, BL=BLOCK_L)
    return A, D


