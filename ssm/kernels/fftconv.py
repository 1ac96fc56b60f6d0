"""Causal (and bidirectional) long convolution by FFT: y = k * u + D u."""
from __future__ import annotations

from typing import Optional

import torch


def fftconv(u: torch.Tensor, k: torch.Tensor, D: Optional[torch.Tensor] = None, bidirectional: bool = False) -> torch.Tensor:
    """u: (B, H, L), k: (H, L) causal or (2, H, L) [causal, anti-causal on strictly later inputs] if bidirectional, D: (H,) -> (B, H, L)."""
    L = u.shape[-1]
    if bidirectional:
        if k.dim() != 3 or k.shape[0] != 2:
            raise ValueError(f"k must have shape (2, H, L) when bidirectional, got {tuple(k.shape)}")
        # anti-causal part y_l += sum_m k1[m] u_{l+1+m}: k1 flipped sits at negative lags -1..-L of a 2L circular kernel
        k = torch.nn.functional.pad(k[0], (0, L)) + torch.nn.functional.pad(k[1].flip(-1), (L, 0))
    elif k.dim() != 2:
        raise ValueError(f"k must have shape (H, L), got {tuple(k.shape)}")
    if k.shape[-1] < L:
        raise ValueError(f"kernel length must be >= input length {L}, got {k.shape[-1]}")
    n = 2 * L
    dtype = torch.promote_types(u.dtype, torch.float32)
    k_f = torch.fft.rfft(k.to(dtype), n=n)
    u_f = torch.fft.rfft(u.to(dtype), n=n)
    y = torch.fft.irfft(u_f * k_f, n=n)[..., :L]
    if D is not None:
        y = y + u * D.unsqueeze(-1)
    return y.to(u.dtype)
