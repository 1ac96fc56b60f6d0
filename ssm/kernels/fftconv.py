"""Causal (and bidirectional) long convolution by FFT: y = k * u + D u."""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F


class _CircularConv(torch.autograd.Function):
    """y = irfft(rfft(u, n) * rfft(k, n))[..., :L]; u: (B, H, L), k: (H, n) circular -> (B, H, L).

    The backward is one rfft and two irffts (correlations with the saved spectra), about half the work of
    autograd through the complex FFTs.
    """

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
            prod = g_f * u_f.conj()
            dk = torch.fft.irfft(prod.reshape(-1, *k_f.shape).sum(0), n=n)
        return du, dk


def fftconv(u: torch.Tensor, k: torch.Tensor, D: Optional[torch.Tensor] = None, bidirectional: bool = False) -> torch.Tensor:
    """u: (B, H, L), k: (H, >=L) causal or (2, H, >=L) [causal, anti-causal] if bidirectional, D: (H,) -> (B, H, L).

    The anti-causal kernel acts on strictly later inputs: y_l += sum_m k[1, m] u_{l+1+m}. Kernels longer than
    L are truncated to L taps.
    """
    L = u.shape[-1]
    if k.shape[-1] < L:
        raise ValueError(f"kernel length must be >= input length {L}, got {k.shape[-1]}")
    if bidirectional:
        if k.dim() != 3 or k.shape[0] != 2:
            raise ValueError(f"k must have shape (2, H, L) when bidirectional, got {tuple(k.shape)}")
        k0, k1 = k[0][..., :L], k[1][..., :L]
        # anti-causal part y_l += sum_m k1[m] u_{l+1+m}: k1 flipped sits at negative lags -1..-L of a 2L circular kernel
        k = F.pad(k0, (0, L)) + F.pad(k1.flip(-1), (L, 0))
    elif k.dim() != 2:
        raise ValueError(f"k must have shape (H, L), got {tuple(k.shape)}")
    else:
        k = F.pad(k[..., :L], (0, L))
    dtype = torch.promote_types(u.dtype, torch.float32)
    y = _CircularConv.apply(u.to(dtype), k.to(dtype))
    if D is not None:
        y = y + u * D.unsqueeze(-1)
    return y.to(u.dtype)
