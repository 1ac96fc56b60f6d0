"""Dense discrete SSMs x_l = Abar x_{l-1} + Bbar u_l (S4's DPLR and ZOH paths): Krylov matrices and the final state.

`dense_final_state` computes x_n = sum_j Abar^j Bbar u_(n-1-j) + Abar^n x_(-1) with no loop over L and no
(B, H, N, L) temporary: with each example's valid inputs moved to the end, the input is cut into Q chunks of T
steps; each chunk is contracted with the Krylov matrix K_T = [Bbar, Abar Bbar, ..., Abar^(T-1) Bbar] (H, N, T)
(time-reversed), giving chunk states c_q (H, B, Q, N) that enter the state as Abar^((Q-1-q) T) c_q; they are
combined by a log-depth tree, Abar^T c_(2i) + c_(2i+1), then with Abar^(2T), and so on, as long as a level holds
at least N vectors per channel (below that a squaring costs more than it saves), and the last few (<= 2N / B) by
Horner's rule. Cost: up to log2(L) squarings of the (H, N, N) matrix (2 H N^3 each, whatever
the batch), B H N L for the contraction, B H N^2 L / T for the tree.

S4's full state [z; conj z] is conjugate-symmetric; `real_form` turns its N x N complex matrices into real ones
acting on [Re z; Im z], which makes every product above 4x cheaper.
"""
from __future__ import annotations

import math
from typing import List, Optional

from einops import rearrange
import torch
import torch.nn.functional as F

from ..masking import align_right


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


def _apply_power(x: torch.Tensor, n: torch.Tensor, powers: List[torch.Tensor]) -> torch.Tensor:
    """A^n x for per-example n (B,): x (H, B, N), powers[k] = A^(2^k) (H, N, N), by the binary digits of n."""
    for k, P in enumerate(powers):
        bit = ((n >> k) & 1).bool().reshape(1, -1, 1)
        x = torch.where(bit, x @ P.mT, x)
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
    k = T.bit_length() - 1  # powers[k] = Abar^T, made when needed
    powers = squarings(Abar, max(k, 1))
    Kr = krylov(Bbar, powers, T).flip(-1).mT  # (H, T, N): row t is Abar^(T-1-t) Bbar
    # each example's valid inputs end at the end of Q T steps (zeros in front); chunk q then contributes
    # Abar^((Q-1-q) T) c_q with c_q = sum_t Abar^(T-1-t) Bbar u[q T + t]
    ut = rearrange(F.pad(align_right(u, lengths), (Q * T - L, 0)), "b h (q t) -> h (b q) t", t=T)
    if Kr.is_complex():
        c = torch.complex(ut @ Kr.real, ut @ Kr.imag)
    else:
        c = ut @ Kr.to(ut.dtype)
    c = c.reshape(H, Bsz, Q, N)
    # tree levels Abar^(T 2^k') c_(2i) + c_(2i+1) while the pairs hold >= N vectors per channel (a squaring costs
    # as much as N matrix-vector products), then Horner over the few chunks left: at most 2N / B steps
    while c.shape[2] > 1 and Bsz * c.shape[2] >= 2 * N:
        _extend(powers, k + 1)
        q = c.shape[2] // 2
        c = (c[:, :, 0::2].reshape(H, Bsz * q, N) @ powers[k].mT).reshape(H, Bsz, q, N) + c[:, :, 1::2]
        k += 1
    x = c[:, :, 0]
    if c.shape[2] > 1:
        _extend(powers, k + 1)
    for i in range(1, c.shape[2]):
        x = x @ powers[k].mT + c[:, :, i]
    if x0 is not None:
        n = torch.full((Bsz,), L, device=u.device, dtype=torch.long) if lengths is None else lengths
        _extend(powers, L.bit_length())
        x = x + _apply_power(x0.to(x.dtype).transpose(0, 1), n, powers[: L.bit_length()])
    return x.transpose(0, 1)


def _extend(powers: List[torch.Tensor], K: int) -> None:
    """Square the last power until powers[K - 1] = A^(2^(K-1)) exists."""
    while len(powers) < K:
        powers.append(powers[-1] @ powers[-1])
