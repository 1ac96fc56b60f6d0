"""Causal (or two-sided) long convolution by FFT: y = k * u + D u (every convolutional SSM layer).

The "torch" backend is the FFT below (one rfft of u and k, one irfft; a custom backward of one rfft and two
irffts); the reference is the direct O(L^2) convolution (conv1d), the oracle in tests.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from .. import dispatch
from ._common import backend_name, flag, same_device, tensor


class _CircularConv(torch.autograd.Function):
    """y = irfft(rfft(u, n) * rfft(k, n))[..., :L]; u: (..., H, L), k: (H, n) circular -> (..., H, L)."""

    @staticmethod
    def forward(ctx, u: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        L, n = u.shape[-1], k.shape[-1]
        u_f, k_f = torch.fft.rfft(u, n=n), torch.fft.rfft(k, n=n)
        ctx.save_for_backward(u_f, k_f)
        ctx.L = L
        return torch.fft.irfft(u_f * k_f, n=n)[..., :L]

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        u_f, k_f = ctx.saved_tensors
        L, n = ctx.L, 2 * (k_f.shape[-1] - 1)
        g_f = torch.fft.rfft(grad, n=n)
        du = torch.fft.irfft(g_f * k_f.conj(), n=n)[..., :L] if ctx.needs_input_grad[0] else None
        dk = None
        if ctx.needs_input_grad[1]:
            dk = torch.fft.irfft((g_f * u_f.conj()).reshape(-1, *k_f.shape).sum(0), n=n)
        return du, dk


def _circular(k: torch.Tensor, L: int, bidirectional: bool) -> torch.Tensor:
    """The 2L-periodic kernel: causal taps at lags 0..L-1, anti-causal ones at lags -1..-L."""
    if not bidirectional:
        return F.pad(k[..., :L], (0, L))
    # anti-causal part y_l += sum_m k1[m] u_{l+1+m}: k1 flipped sits at negative lags -1..-L of a 2L circular kernel
    return F.pad(k[0, ..., :L], (0, L)) + F.pad(k[1, ..., :L].flip(-1), (L, 0))


def _fft(u, k, D, bidirectional):
    dtype = torch.promote_types(u.dtype, torch.float32)
    y = _CircularConv.apply(u.to(dtype), _circular(k, u.shape[-1], bidirectional).to(dtype))
    if D is not None:
        y = y + u.to(dtype) * D.to(dtype).unsqueeze(-1)
    return y.to(u.dtype)


def fftconv_ref(u, k, D=None, bidirectional=False):
    """The direct convolution (conv1d, O(L^2)); arguments as `fftconv`."""
    L, H = u.shape[-1], u.shape[-2]
    dtype = torch.promote_types(u.dtype, torch.float32)
    x = u.to(dtype).reshape(-1, H, L)
    taps = (k[0] if bidirectional else k)[..., :L].to(dtype).expand(H, L)
    y = F.conv1d(F.pad(x, (L - 1, 0)), taps.flip(-1).unsqueeze(1), groups=H)
    if bidirectional:
        anti = k[1, ..., :L].to(dtype).expand(H, L)
        y = y + F.conv1d(F.pad(x[..., 1:], (0, L)), anti.unsqueeze(1), groups=H)[..., :L]
    if D is not None:
        y = y + x * D.to(dtype).unsqueeze(-1)
    return y.reshape(u.shape).to(u.dtype)


def _probe_case(device: torch.device):
    g = torch.Generator().manual_seed(0)
    u, k, D = (torch.randn(*s, dtype=torch.float64, generator=g).to(device) for s in ((2, 3, 9), (3, 12), (3,)))
    return (u, k, D, False), (0, 1, 2)


dispatch.register_op(dispatch.OpSpec("fftconv", fftconv_ref, lambda *a: None, _probe_case, {"torch": _fft}))


def fftconv(u: torch.Tensor, k: torch.Tensor, D: Optional[torch.Tensor] = None, bidirectional: bool = False,
            backend: Optional[str] = None) -> torch.Tensor:
    """u: (..., H, L) real, k: (H, >=L) causal or (2, H, >=L) [causal, anti-causal] if bidirectional, D: (H,) ->
    (..., H, L) in u's dtype (half precision is computed in float32).

    The anti-causal kernel acts on strictly later inputs: y_l += sum_m k[1, m] u_{l+1+m}. Kernels longer than
    L are truncated to L taps; H of k and D may also be 1 (shared by every channel)."""
    u = tensor("u", u, 2, "(..., H, L)")
    k = tensor("k", k, 2 + bidirectional, "(2, H, L) when bidirectional" if bidirectional else "(H, L)")
    flag("bidirectional", bidirectional)
    backend_name(backend)
    for name, t in (("u", u), ("k", k)) + ((("D", D),) if D is not None else ()):
        if tensor(name, t).is_complex():
            raise TypeError(f"{name} must be a real floating tensor, got dtype {t.dtype}")
    same_device(u=u, k=k, **({"D": D} if D is not None else {}))
    H, L = u.shape[-2], u.shape[-1]
    want = (2, H, L) if bidirectional else (H, L)
    if k.dim() != len(want) or (bidirectional and k.shape[0] != 2) or k.shape[-2] not in (1, H) or k.shape[-1] < L:
        raise ValueError(f"k must have shape {'(2, H, L)' if bidirectional else '(H, L)'} with H = {H} (or 1) and "
                         f"length >= L = {L}, got {tuple(k.shape)}")
    if D is not None and (D.dim() != 1 or D.shape[0] not in (1, H)):
        raise ValueError(f"D must have shape (H,) = ({H},), got {tuple(D.shape)}")
    name = dispatch.select("fftconv", u.device.type, backend)
    if u.numel() == 0:
        return u * 0  # empty (..., H, L): nothing to convolve
    return dispatch.implementation("fftconv", name)(u, k, D, bidirectional)
