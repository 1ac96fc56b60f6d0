"""HiPPO transition matrices (A, B) per measure and their rank corrections P (A + P^T P normal).

Every measure is the exact ODE c'(t) = A c + B f(t) of the projection c(t) of the input history onto an
orthonormal basis (LegS: c' = (A c + B f) / t). Two conventions:
- "unit": windows of length 1 (legt, fourier), Laguerre polynomials with weight exp(-y) (lagt),
  fourier basis [1, cos_1, sin_1, cos_2, sin_2, ...];
- "s4": the matrices of the official S4 code: legt and fourier on a window of length 2 (A, B halved),
  fourier basis [1, 0, cos_1, -sin_1, cos_2, -sin_2, ...] (even N; the second state is identically 0),
  lagt in the Laguerre-function basis exp(-y/2) L_n(y) (A + I/2). legs is the same in both.
Arrays are float64 numpy; `transition` and `rank_correction` return torch tensors."""
from __future__ import annotations

import math
from typing import Tuple

import numpy as np
import torch

from .checks import check_choice, check_even, check_int

MEASURES = ("legs", "legt", "lagt", "fourier")
CONVENTIONS = ("unit", "s4")
WINDOW = {"unit": 1.0, "s4": 2.0}  # window length theta of the translated measures (legt, fourier)


def check_measure(measure: object, N: object, convention: object = "unit") -> Tuple[str, int, str]:
    """Validate (measure, N, convention) -> the same, N as int."""
    check_choice("measure", measure, MEASURES)
    check_choice("convention", convention, CONVENTIONS)
    N = check_int("N", N)
    if measure == "fourier" and convention == "s4":
        check_even("N", N, "the s4 fourier basis holds N/2 frequencies as (cos, sin) pairs")
    return measure, N, convention


def legs(N: int) -> Tuple[np.ndarray, np.ndarray]:
    """Scaled Legendre on [0, t]: A[n,k] = -sqrt(2n+1) sqrt(2k+1) (n > k), -(n+1) (n = k), 0 (n < k); B = sqrt(2n+1)."""
    n = np.arange(N, dtype=np.float64)
    R = np.sqrt(2 * n + 1)
    return -np.tril(np.outer(R, R), -1) - np.diag(n + 1), R.copy()


def legt(N: int, window: float = 1.0) -> Tuple[np.ndarray, np.ndarray]:
    """Translated Legendre on [t - window, t], R_n = sqrt(2n+1): A[n,k] = -R_n R_k (k <= n), -(-1)^(n-k) R_n R_k
    (k > n), all / window; B = R / window."""
    n = np.arange(N, dtype=np.float64)
    R = np.sqrt(2 * n + 1)
    row, col = np.meshgrid(n, n, indexing="ij")
    sign = np.where(col <= row, 1.0, (-1.0) ** (row - col))
    return -np.outer(R, R) * sign / window, R / window


def lagt(N: int, shift: float = 0.0) -> Tuple[np.ndarray, np.ndarray]:
    """Translated Laguerre: A = -tril(ones) + shift I, B = 1 (shift 1/2: the basis exp(-y/2) L_n(y))."""
    return -np.tril(np.ones((N, N))) + shift * np.eye(N), np.ones(N)


def fourier_modes(N: int, convention: str = "unit") -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fourier basis layout -> (g0 (N,) basis values at the window start, cos index, sin index, frequency k) per pair.

    unit: [1, cos_1, sin_1, ...] (a lone cos_{N/2} last for even N); s4: [1, 0, cos_1, -sin_1, ...]."""
    first = 1 if convention == "unit" else 2
    cos = np.arange(first, N - 1, 2)
    k = (cos + 1) // 2 if convention == "unit" else cos // 2
    g0 = np.zeros(N)
    g0[0] = 1.0
    g0[cos] = math.sqrt(2.0)
    if convention == "unit" and N % 2 == 0 and N > 1:
        g0[N - 1] = math.sqrt(2.0)  # the lone cos_{N/2}
    return g0, cos, cos + 1, k


def fourier(N: int, convention: str = "unit") -> Tuple[np.ndarray, np.ndarray]:
    """Fourier on [t - window, t]: A = (K - 2 g0 g0^T) / window, B = 2 g0 / window.

    K[cos_k, sin_k] = -K[sin_k, cos_k] = 2 pi k sign_k (sign -1 for the s4 basis -sin); f(t - window) is
    estimated as 2 sum_n c_n g_n(0) - f(t) (a truncated Fourier series converges to the midpoint of a jump)."""
    g0, cos, sin, k = fourier_modes(N, convention)
    sign = 1.0 if convention == "unit" else -1.0
    K = np.zeros((N, N))
    K[cos, sin] = 2 * math.pi * k * sign
    K[sin, cos] = -2 * math.pi * k * sign
    window = WINDOW[convention]
    return (K - 2 * np.outer(g0, g0)) / window, 2 * g0 / window


def transition_arrays(measure: str, N: int, convention: str = "unit") -> Tuple[np.ndarray, np.ndarray]:
    """(A (N, N), B (N,)) float64 ndarrays of `measure` in `convention`."""
    measure, N, convention = check_measure(measure, N, convention)
    if measure == "legs":
        return legs(N)
    if measure == "legt":
        return legt(N, WINDOW[convention])
    if measure == "lagt":
        return lagt(N, 0.5 if convention == "s4" else 0.0)
    return fourier(N, convention)


def correction_rows(measure: str, N: int, convention: str = "unit") -> np.ndarray:
    """The nonzero rows of P (r, N): r = 2 for legt, 1 otherwise."""
    n = np.arange(N, dtype=np.float64)
    if measure == "legs":
        return np.sqrt(n + 0.5)[None]
    if measure == "legt":  # A + P^T P is skew: the odd and the even rows of the rank-one R R^T
        R = np.sqrt(2 * n + 1) / math.sqrt(WINDOW[convention])
        return np.stack([R * (n % 2 == 1), R * (n % 2 == 0)])
    if measure == "lagt":
        return np.full((1, N), math.sqrt(0.5))
    return math.sqrt(2.0 / WINDOW[convention]) * fourier_modes(N, convention)[0][None]


def rank_correction_array(measure: str, N: int, rank: int = 1, convention: str = "unit") -> np.ndarray:
    """Real P (rank, N) ndarray with A + P^T P normal; rows beyond the measure's rank are zero."""
    measure, N, convention = check_measure(measure, N, convention)
    rank = check_int("rank", rank)
    P = correction_rows(measure, N, convention)
    if rank < P.shape[0]:
        raise ValueError(f"rank must be >= {P.shape[0]} for measure {measure!r} (its NPLR rank), got {rank}")
    return np.concatenate([P, np.zeros((rank - P.shape[0], N))])


def transition(measure: str, N: int, *, convention: str = "unit") -> Tuple[torch.Tensor, torch.Tensor]:
    """HiPPO (A (N, N), B (N,)) float64 for measure in "legs", "legt", "lagt", "fourier"."""
    A, B = transition_arrays(measure, N, convention)
    return torch.from_numpy(A), torch.from_numpy(B)


def rank_correction(measure: str, N: int, rank: int = 1, *, convention: str = "unit") -> torch.Tensor:
    """Real P (rank, N) float64 such that A + P^T P is normal (zero rows pad beyond the measure's rank)."""
    return torch.from_numpy(rank_correction_array(measure, N, rank, convention))
