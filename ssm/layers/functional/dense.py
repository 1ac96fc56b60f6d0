"""Dense discrete SSMs x_l = Abar x_{l-1} + Bbar u_l (S4's DPLR and ZOH paths): Krylov matrices and the final state.

`dense_final_state` computes x_n = sum_j Abar^j Bbar u_(n-1-j) + Abar^n x_(-1) with no loop over L and no
(B, H, N, L) temporary: the reversed input is cut into Q chunks of T steps; each chunk is contracted with the
Krylov matrix K_T = [Bbar, Abar Bbar, ..., Abar^(T-1) Bbar] (H, N, T), giving chunk states c_q (B, H, N, Q); the
chunk states are combined by a log-depth tree, c_(2i) + Abar^T c_(2i+1), then with Abar^(2T), and so on.
Cost: log2(L) squarings of the (H, N, N) matrix, B H N L for the contraction, B H N^2 L / T for the tree.

S4's full state [z; conj z] is conjugate-symmetric; `real_form` turns its N x N complex matrices into real ones
acting on [Re z; Im z], which makes every product above 4x cheaper.
"""
from __future__ import annotations

import math
from typing import List, Optional

import torch
import torch.nn.functional as F

from ..masking import reverse_valid


def real_form(M: torch.Tensor) -> torch.Tensor:
    """[[M11, M12], [conj M12, conj M11]] (..., N, N) on [z; conj z] -> the real (..., N, N) on [Re z; Im z]."""
    m = M.shape[-1] // 2
    M11, M12 = M[..., :m, :m], M[..., :m, m:]
    top = torch.cat([(M11 + M12).real, (M12 - M11).imag], -1)
    bottom = torch.cat([(M11 + M12).imag, (M11 - M12).real], -1)
    return torch.cat([top, bottom], -2)


def real_vector(z: torch.Tensor) -> torch.Tensor:
    """Half state z (..., M) complex -> [Re z; Im z] (..., 2M) real."""
    return torch.cat([z.real, z.imag], -1)


def complex_vector(r: torch.Tensor) -> torch.Tensor:
    """[Re z; Im z] (..., 2M) -> z (..., M) complex."""
    m = r.shape[-1] // 2
    return torch.complex(r[..., :m], r[..., m:])


def squarings(A: torch.Tensor, K: int) -> List[torch.Tensor]:
    """[A, A^2, A^4, ..., A^(2^(K-1))] by repeated squaring: A (..., N, N)."""
    powers = [A]
    for _ in range(K - 1):
        powers.append(powers[-1] @ powers[-1])
    return powers


def krylov(b: torch.Tensor, powers: List[torch.Tensor], T: int) -> torch.Tensor:
    """[b, A b, ..., A^(T-1) b] by doubling with powers[k] = A^(2^k): b (..., N) -> (..., N, T), T a power of 2."""
    K = b.unsqueeze(-1)
    k = 0
    while K.shape[-1] < T:
        K = torch.cat([K, powers[k] @ K], -1)
        k += 1
    return K


def _contract(K: torch.Tensor, ur: torch.Tensor) -> torch.Tensor:
    """c[b, h, n, q] = sum_t K[h, n, t] ur[b, h, q, t]; complex K against real ur by one real product."""
    if not K.is_complex():
        return torch.einsum("hnt,bhqt->bhnq", K, ur.to(K.dtype))
    N = K.shape[-2]
    c = torch.einsum("hnt,bhqt->bhnq", torch.cat([K.real, K.imag], -2), ur.to(K.real.dtype))
    return torch.complex(c[:, :, :N], c[:, :, N:])


def _apply_power(x: torch.Tensor, n: torch.Tensor, powers: List[torch.Tensor]) -> torch.Tensor:
    """A^n x for per-example n (B,): x (B, H, N), powers[k] = A^(2^k) (H, N, N), by the binary digits of n."""
    for k, P in enumerate(powers):
        bit = ((n >> k) & 1).bool().reshape(-1, 1, 1)
        x = torch.where(bit, torch.einsum("hnm,bhm->bhn", P, x), x)
    return x


def dense_final_state(Abar: torch.Tensor, Bbar: torch.Tensor, u: torch.Tensor, x0: Optional[torch.Tensor] = None,
                      lengths: Optional[torch.Tensor] = None, chunk: Optional[int] = None) -> torch.Tensor:
    """x_n = sum_j Abar^j Bbar u_(n-1-j) + Abar^n x0, n = each example's length (or L).

    Abar (H, N, N), Bbar (H, N) real or complex, u (B, H, L) real, x0 (B, H, N) or None, lengths (B,) or None,
    chunk T (a power of 2; default about 2N) -> (B, H, N)."""
    Bsz, H, L = u.shape
    N = Abar.shape[-1]
    T = chunk or min(1 << max(L - 1, 1).bit_length(), 1 << max(2 * N - 1, 1).bit_length())
    if T & (T - 1):
        raise ValueError(f"chunk must be a power of 2, got {T}")
    Q = 1 << max(math.ceil(L / T) - 1, 0).bit_length()  # chunks, padded to a power of 2
    levels = (Q * T).bit_length() - 1  # Abar^(2^k) for k < levels covers the tree
    need = max(levels, L.bit_length()) if x0 is not None else max(levels, 1)
    powers = squarings(Abar, need)
    K = krylov(Bbar, powers, T)  # (H, N, T)
    if lengths is None:  # chunk q of the reversed input is chunk Q-1-q of the front-padded input, reversed
        u = F.pad(u, (Q * T - L, 0)).reshape(Bsz, H, Q, T)
        c = _contract(K.flip(-1), u).flip(-1)
    else:
        ur = F.pad(reverse_valid(u, lengths), (0, Q * T - L)).reshape(Bsz, H, Q, T)  # ur[j] = u[n - 1 - j]
        c = _contract(K, ur)  # (B, H, N, Q): c_q = sum_t Abar^t Bbar ur[q T + t]
    k = T.bit_length() - 1
    while c.shape[-1] > 1:  # c_(2i) + Abar^(T 2^k') c_(2i+1), one (N, N) x (N, B q) product per channel
        c = c[..., 0::2] + torch.einsum("hnm,bhmq->bhnq", powers[k], c[..., 1::2])
        k += 1
    x = c[..., 0]
    if x0 is not None:
        n = torch.full((Bsz,), L, device=u.device, dtype=torch.long) if lengths is None else lengths
        x = x + _apply_power(x0.to(x.dtype), n, powers)
    return x
