"""Transfer functions G(s) = C (sI - A)^-1 B of full or diagonal state matrices, and the largest gap between
two of them on the imaginary axis (a frequency grid that contains every pole's frequency, then a local zoom)."""
from __future__ import annotations

import math
from typing import Callable, Tuple, Union

import numpy as np
import scipy.linalg
import torch

from .checks import as_complex_array, check_int, check_shape, describe

Array = Union[torch.Tensor, np.ndarray]


def transfer_evaluator(Lambda_or_A: Array, B: Array, C: Array) -> Callable[[np.ndarray], np.ndarray]:
    """s (S,) complex ndarray -> G(s) (S,) for A (N, N) or a diagonal Lambda (N,); A is reduced to Schur form once."""
    A = as_complex_array("Lambda_or_A", Lambda_or_A)
    B, C = as_complex_array("B", B), as_complex_array("C", C)
    if A.ndim not in (1, 2) or A.size == 0 or (A.ndim == 2 and A.shape[0] != A.shape[1]):
        raise ValueError(f"Lambda_or_A must have shape (N,) or (N, N) with N >= 1, got {tuple(A.shape)}")
    N = A.shape[0]
    check_shape("B", B, (N,), "(N,)")
    check_shape("C", C, (N,), "(N,)")
    if A.ndim == 1:
        return lambda s: ((C * B)[None, :] / (s[:, None] - A[None, :])).sum(1)
    T, Z = scipy.linalg.schur(A, output="complex")
    b, c = Z.conj().T @ B, C @ Z

    def G(s: np.ndarray) -> np.ndarray:
        """Back substitution of (sI - T) x = Z^* B for every s at once: O(S N^2)."""
        x = np.zeros((s.shape[0], N), dtype=complex)
        for i in range(N - 1, -1, -1):
            x[:, i] = (b[i] + x[:, i + 1:] @ T[i, i + 1:]) / (s - T[i, i])
        return x @ c
    return G


def transfer_function(Lambda_or_A: Array, B: Array, C: Array, s: Array) -> torch.Tensor:
    """G(s) = C (sI - A)^-1 B for s (S,) complex -> (S,) complex128; A (N, N) or a diagonal Lambda (N,).

    A full A is reduced once to complex Schur form A = Z T Z^* (backward stable even for the very
    non-normal HiPPO matrices), then each (sI - T) x = Z^* B is an O(N^2) back substitution over all s."""
    G = transfer_evaluator(Lambda_or_A, B, C)
    s = as_complex_array("s", s)
    if s.ndim > 1:
        raise ValueError(f"s must be a scalar or have shape (S,), got {tuple(s.shape)}")
    return torch.from_numpy(G(s.reshape(-1)))


def frequency_grid(N: int, *poles: Array, points: int = 4000) -> np.ndarray:
    """omega >= 0 (ascending): `points` log-spaced in [1e-2, 30 N^2], plus |Im p| and |Im p| +- |Re p|/2 per pole.

    A pole p = -a + i w with small a makes a resonance of width ~a at omega = w, far narrower than a log
    grid's spacing there; sampling at w and at the half-width points puts a sample on every resonance."""
    N = check_int("N", N)
    points = check_int("points", points, 2)
    grids = [np.logspace(-2, math.log10(30.0 * N * N), points)]
    for i, p in enumerate(poles):
        p = as_complex_array(f"poles[{i}]", p).reshape(-1)
        w, a = np.abs(p.imag), np.abs(p.real) / 2
        grids += [w, w + a, np.clip(w - a, 0.0, None)]
    return np.unique(np.concatenate(grids))


def sup_on_axis(gap: Callable[[np.ndarray], np.ndarray], omega: np.ndarray, rounds: int = 3, peaks: int = 8,
                points: int = 17) -> Tuple[float, float]:
    """max over s = +-i omega of gap(s) >= 0 -> (value, omega at the max, signed).

    Samples +-omega, then zooms `rounds` times into the `peaks` best local maxima: each zoom samples
    `points` between the neighbours of the current best, so the bracket shrinks by (points - 1) / 2 per round."""
    if not callable(gap):
        raise TypeError(f"gap must be a callable s -> |G1(s) - G2(s)|, got {describe(gap)}")
    omega = as_complex_array("omega", omega)
    if omega.ndim != 1 or omega.size < 3:
        raise ValueError(f"omega must have shape (S,) with S >= 3, got {tuple(omega.shape)}")
    if np.abs(omega.imag).max() > 0 or omega.real.min() < 0:
        raise ValueError(f"omega must be real and >= 0, got entries down to {float(omega.real.min())} "
                         f"and imaginary parts up to {float(np.abs(omega.imag).max())}")
    omega = np.unique(omega.real)
    w = np.unique(np.concatenate([-omega[::-1], omega]))
    g = gap(1j * w)
    best, at = float(g.max()), float(w[int(g.argmax())])
    interior = np.flatnonzero((g[1:-1] >= g[:-2]) & (g[1:-1] >= g[2:])) + 1
    for i in interior[np.argsort(g[interior])[::-1][:peaks]]:
        lo, hi = w[i - 1], w[i + 1]
        for _ in range(rounds):
            ws = np.linspace(lo, hi, points)
            gs = gap(1j * ws)
            j = int(gs.argmax())
            if gs[j] > best:
                best, at = float(gs[j]), float(ws[j])
            lo, hi = ws[max(j - 1, 0)], ws[min(j + 1, points - 1)]
    return best, at
