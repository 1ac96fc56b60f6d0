"""Structured forms of the HiPPO matrices: the NPLR/DPLR form A = V (Lambda - P^T conj(P)) V^* with V unitary
(the eigendecomposition of the normal part A + P^T P) and the diagonal inits of S4D/DSS."""
from __future__ import annotations

import math
from typing import NamedTuple, Tuple

import numpy as np
import torch

from .checks import check_choice, check_even, check_int
from .matrices import rank_correction_array, transition_arrays

DIAG_KINDS = ("legs", "inv", "lin", "real", "dss")


class NPLRArrays(NamedTuple):
    """Lambda (N,), P (rank, N), B (N,), V (N, N) complex128 ndarrays (see `nplr`)."""
    Lambda: np.ndarray
    P: np.ndarray
    B: np.ndarray
    V: np.ndarray


def scalar_plus_skew(AN: np.ndarray, tol: float = 1e-9) -> Tuple[float, np.ndarray]:
    """Split a real normal matrix of the form c I + S (S skew) -> (c, S); raises if it is not of that form."""
    N = AN.shape[0]
    c = float(np.trace(AN)) / N
    scale = max(1.0, float(np.abs(AN).max()))
    if np.abs((AN + AN.T) / 2 - c * np.eye(N)).max() > tol * scale:
        raise ValueError("the corrected matrix A + P^T P is not (scalar + skew-symmetric)")
    return c, (AN - AN.T) / 2


def normal_eig(AN: np.ndarray, tol: float = 1e-9) -> Tuple[np.ndarray, np.ndarray]:
    """Unitary eigendecomposition of a real c I + S (S skew) -> (Lambda (N,), V (N, N)).

    Order: the first N//2 columns hold one member of each conjugate pair (Im >= 0, ascending), the next
    N//2 their conjugates in the same order (V[:, N//2 + j] = conj V[:, j]), and for odd N one real
    eigenvector last. A zero eigenvalue of multiplicity m >= 2 is paired as (a +- i b)/sqrt 2 from a real basis."""
    AN = np.asarray(AN)
    if AN.ndim != 2 or AN.shape[0] != AN.shape[1] or not np.isrealobj(AN) or not np.all(np.isfinite(AN)):
        raise ValueError(f"AN must be a finite real square matrix (N, N), got shape {AN.shape} dtype {AN.dtype}")
    N = AN.shape[0]
    c, S = scalar_plus_skew(AN, tol)
    scale = max(1.0, float(np.abs(AN).max()))
    om, W = (t.numpy() for t in torch.linalg.eigh(torch.from_numpy(-1j * S)))  # torch: honours set_num_threads
    zero = np.abs(om) <= tol * scale
    pos = np.flatnonzero((om > 0) & ~zero)
    pos = pos[np.argsort(om[pos])]
    m = int(zero.sum())
    Z = np.linalg.svd(S)[2][N - m:].T if m else np.zeros((N, 0))  # real orthonormal basis of ker S
    pairs = (Z[:, 0:2 * (m // 2):2] + 1j * Z[:, 1:2 * (m // 2):2]) / math.sqrt(2.0)
    first = np.concatenate([pairs, W[:, pos]], axis=1)
    w_first = np.concatenate([np.zeros(m // 2), om[pos]])
    V = np.concatenate([first, first.conj(), Z[:, 2 * (m // 2):].astype(complex)], axis=1)
    w = np.concatenate([w_first, -w_first, np.zeros(m % 2)])
    if V.shape[1] != N:
        raise RuntimeError("conjugate pairing of the normal part failed (eigenvalue clusters too close)")
    return c + 1j * w, V


def nplr_arrays(measure: str, N: int, rank: int = 1, convention: str = "unit") -> NPLRArrays:
    """The NPLR form as ndarrays (see `nplr`)."""
    A, B = transition_arrays(measure, N, convention)
    P = rank_correction_array(measure, N, rank, convention)
    Lam, V = normal_eig(A + P.T @ P)
    Vh = V.conj().T
    return NPLRArrays(Lam, (Vh @ P.T).T, Vh @ B, V)


def nplr(measure: str, N: int, rank: int = 1, *, convention: str = "unit"
         ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(Lambda (N,), P (rank, N), B (N,), V (N, N)) complex128 with A = V (diag(Lambda) - P^T conj(P)) V^*.

    V is unitary; P = V^* p and B = V^* B_H are in the eigenbasis. Lambda[:N//2] holds one member of
    each conjugate pair (Im >= 0, ascending) and Lambda[N//2:2*(N//2)] the conjugates in the same order
    (odd N: one real eigenvalue last), so a conjugate-pair layer keeps Lambda[:N//2], P[:, :N//2], B[:N//2]."""
    return tuple(torch.from_numpy(np.ascontiguousarray(x)) for x in nplr_arrays(measure, N, rank, convention))


def s4d_inv(N: int) -> np.ndarray:
    """S4D-Inv: -1/2 + i (N/pi)(N/(2n+1) - 1), n = 0..N/2-1."""
    n = np.arange(N // 2, dtype=np.float64)
    return -0.5 + 1j * (N / math.pi) * (N / (2 * n + 1) - 1)


def s4d_lin(N: int) -> np.ndarray:
    """S4D-Lin: -1/2 + i pi n, n = 0..N/2-1."""
    return -0.5 + 1j * math.pi * np.arange(N // 2, dtype=np.float64)


def s4d_real(N: int) -> np.ndarray:
    """S4D-Real: -(n + 1), n = 0..N/2-1."""
    return -(np.arange(N // 2, dtype=np.float64) + 1) + 0j


def complex_normal(n: int, seed: int) -> np.ndarray:
    """n draws of a standard complex normal (E|z|^2 = 1) from `seed`."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(n) + 1j * rng.standard_normal(n)) / math.sqrt(2.0)


def diag_init(kind: str, N: int, seed: int = 0) -> Tuple[torch.Tensor, torch.Tensor]:
    """Diagonal init -> (Lambda (N//2,), B (N//2,)) complex128, one eigenvalue per conjugate pair.

    "legs": Lambda of the normal part A_N of HiPPO-LegS (Re = -1/2, Im >= 0 ascending), B = (V^* B_H)[:N//2];
    "inv": -1/2 + i (N/pi)(N/(2n+1) - 1), B = 1; "lin": -1/2 + i pi n, B = 1; "real": -(n+1), B = 1;
    "dss": the "legs" Lambda with B ~ complex normal (E|B|^2 = 1) drawn from `seed` (DSS learns B*C as one W)."""
    check_choice("kind", kind, DIAG_KINDS)
    N = check_even("N", check_int("N", N, 2), "diagonal inits keep one eigenvalue of each conjugate pair")
    seed = check_int("seed", seed, 0)
    h = N // 2
    B = np.ones(h, dtype=complex)
    if kind in ("legs", "dss"):
        form = nplr_arrays("legs", N)
        Lam = form.Lambda[:h]
        B = form.B[:h] if kind == "legs" else complex_normal(h, seed)
    else:
        Lam = {"inv": s4d_inv, "lin": s4d_lin, "real": s4d_real}[kind](N)
    return torch.from_numpy(np.ascontiguousarray(Lam)), torch.from_numpy(np.ascontiguousarray(B))
