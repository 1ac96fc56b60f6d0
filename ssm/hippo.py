"""HiPPO transition matrices, their normal-plus-low-rank forms, diagonal inits, the PTD init and
transfer functions (REFERENCE.md sections 2 and 6). Numerics are float64/complex128 throughout."""
from __future__ import annotations

import math
import sys
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import scipy.linalg
import torch

MEASURES = ("legs", "legt", "lagt", "fourier")
DIAG_KINDS = ("legs", "inv", "lin", "real", "dss")


def _check_measure(measure: str) -> None:
    if measure not in MEASURES:
        raise ValueError(f"measure must be one of {list(MEASURES)}, got {measure!r}")


def _check_N(N: int, minimum: int = 1) -> None:
    if not isinstance(N, (int, np.integer)) or isinstance(N, bool) or N < minimum:
        raise ValueError(f"N must be an int >= {minimum}, got {N!r}")


def _fourier_g0(N: int) -> np.ndarray:
    """Basis [1, sqrt2 cos 2pi k x, sqrt2 sin 2pi k x, ...] evaluated at x = 0 -> (N,)."""
    g0 = np.zeros(N)
    g0[0] = 1.0
    g0[1::2] = math.sqrt(2.0)
    return g0


def _transition_np(measure: str, N: int) -> Tuple[np.ndarray, np.ndarray]:
    n = np.arange(N, dtype=np.float64)
    R = np.sqrt(2 * n + 1)
    if measure == "legs":  # scaled Legendre on [0, t]: c' = (1/t)(A c + B f)
        A = -np.tril(np.outer(R, R), -1) - np.diag(n + 1)
        return A, R.copy()
    if measure == "legt":  # translated Legendre on the window [t - 1, t] (theta = 1): c' = A c + B f
        k, m = np.meshgrid(n, n)  # m: row index, k: column index
        sign = np.where(k <= m, 1.0, (-1.0) ** (m - k))
        return -np.outer(R, R) * sign, R.copy()
    if measure == "lagt":  # Laguerre, measure exp(-(t - s)) on (-inf, t]: c' = A c + B f
        return -np.tril(np.ones((N, N))), np.ones(N)
    # "fourier" (FouT): uniform window [t - 1, t], basis [1, cos_1, sin_1, cos_2, ...]; f(t - 1) is
    # estimated as 2 sum_k c_k g_k(0) - f(t) (a truncated Fourier series converges to the midpoint at a jump).
    g0 = _fourier_g0(N)
    K = np.zeros((N, N))
    for i in range(1, N - 1, 2):  # (cos_k, sin_k) = (i, i + 1), k = (i + 1) / 2
        w = math.pi * (i + 1)
        K[i, i + 1], K[i + 1, i] = w, -w
    return K - 2 * np.outer(g0, g0), 2 * g0


def transition(measure: str, N: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """HiPPO (A (N, N), B (N,)) float64 for measure in "legs", "legt", "lagt", "fourier"."""
    _check_measure(measure)
    _check_N(N)
    A, B = _transition_np(measure, N)
    return torch.from_numpy(A), torch.from_numpy(B)


def _rank_correction_np(measure: str, N: int, rank: int) -> np.ndarray:
    n = np.arange(N, dtype=np.float64)
    if measure == "legs":
        P = np.sqrt(n + 0.5)[None]
    elif measure == "legt":
        R = np.sqrt(2 * n + 1)
        P = np.stack([R * (n % 2 == 1), R * (n % 2 == 0)])
    elif measure == "lagt":
        P = np.full((1, N), math.sqrt(0.5))
    else:
        P = math.sqrt(2.0) * _fourier_g0(N)[None]
    if rank < P.shape[0]:
        raise ValueError(f"rank must be >= {P.shape[0]} for measure {measure!r}, got {rank}")
    return np.concatenate([P, np.zeros((rank - P.shape[0], N))])


def rank_correction(measure: str, N: int, rank: int = 1) -> torch.Tensor:
    """Real P (rank, N) such that A + P^T P is normal (zero rows pad beyond the measure's rank)."""
    _check_measure(measure)
    _check_N(N)
    return torch.from_numpy(_rank_correction_np(measure, N, rank))


def _normal_eig(AN: np.ndarray, tol: float = 1e-9) -> Tuple[np.ndarray, np.ndarray]:
    """Unitary eigendecomposition of a real normal c I + S (S skew) -> (Lambda (N,), V (N, N)).

    Order: the first N//2 columns hold one member of each conjugate pair (Im >= 0, ascending),
    the next N//2 their conjugates in the same order (V[:, N//2 + j] = conj V[:, j]), and for odd N
    one real eigenvector last. A real eigenvalue of even multiplicity is paired as (a +- i b)/sqrt 2."""
    N = AN.shape[0]
    c = float(np.trace(AN)) / N
    S = (AN - AN.T) / 2
    scale = max(1.0, float(np.abs(AN).max()))
    if np.abs((AN + AN.T) / 2 - c * np.eye(N)).max() > tol * scale:
        raise ValueError("the corrected matrix A + P^T P is not (scalar + skew-symmetric)")
    om, W = np.linalg.eigh(-1j * S)
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


def _nplr_np(measure: str, N: int, rank: int = 1):
    A, B = _transition_np(measure, N)
    P = _rank_correction_np(measure, N, rank)
    Lam, V = _normal_eig(A + P.T @ P)
    Vh = V.conj().T
    return Lam, (Vh @ P.T).T, Vh @ B, V


def nplr(measure: str, N: int, rank: int = 1) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(Lambda (N,), P (rank, N), B (N,), V (N, N)) complex128 with A = V (diag(Lambda) - P^T conj(P)) V^*.

    V is unitary; P = V^* p and B = V^* B_H are in the eigenbasis. Lambda[:N//2] holds one member of
    each conjugate pair (Im >= 0, ascending) and Lambda[N//2:2*(N//2)] the conjugates in the same order
    (odd N: one real eigenvalue last), so a conjugate-pair layer keeps Lambda[:N//2], P[:, :N//2], B[:N//2]."""
    _check_measure(measure)
    _check_N(N)
    return tuple(torch.from_numpy(np.ascontiguousarray(x)) for x in _nplr_np(measure, N, rank))


def diag_init(kind: str, N: int, seed: int = 0) -> Tuple[torch.Tensor, torch.Tensor]:
    """Diagonal init -> (Lambda (N//2,), B (N//2,)) complex128, one eigenvalue per conjugate pair.

    "legs": Lambda of the normal part A_N of HiPPO-LegS (Re = -1/2, Im >= 0 ascending), B = (V^* B_H)[:N//2];
    "inv": -1/2 + i (N/pi)(N/(2n+1) - 1), B = 1; "lin": -1/2 + i pi n, B = 1; "real": -(n+1), B = 1;
    "dss": the "legs" Lambda with B ~ complex normal (E|B|^2 = 1) drawn from `seed` (DSS learns B*C as one W)."""
    if kind not in DIAG_KINDS:
        raise ValueError(f"kind must be one of {list(DIAG_KINDS)}, got {kind!r}")
    _check_N(N, 2)
    if N % 2:
        raise ValueError(f"N must be even (conjugate pairs are kept once), got {N}")
    h = N // 2
    n = np.arange(h, dtype=np.float64)
    B = np.ones(h, dtype=complex)
    if kind in ("legs", "dss"):
        Lam, _, BV, _ = _nplr_np("legs", N)
        Lam = Lam[:h]
        if kind == "legs":
            B = BV[:h]
        else:
            rng = np.random.default_rng(seed)
            B = (rng.standard_normal(h) + 1j * rng.standard_normal(h)) / math.sqrt(2.0)
    elif kind == "inv":
        Lam = -0.5 + 1j * (N / math.pi) * (N / (2 * n + 1) - 1)
    elif kind == "lin":
        Lam = -0.5 + 1j * math.pi * n
    else:
        Lam = -(n + 1) + 0j
    return torch.from_numpy(np.ascontiguousarray(Lam)), torch.from_numpy(np.ascontiguousarray(B))


def _as_np(x, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.asarray(x)
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} must be finite")
    return x.astype(complex)


def transfer_function(Lambda_or_A: Union[torch.Tensor, np.ndarray], B, C, s) -> torch.Tensor:
    """G(s) = C (sI - A)^-1 B for s (S,) complex -> (S,) complex128; A (N, N) or a diagonal Lambda (N,).

    A full A is reduced once to complex Schur form A = Z T Z^* (backward stable even for the very
    non-normal HiPPO matrices), then each (sI - T) x = Z^* B is an O(N^2) back substitution over all s."""
    A, B, C, s = (_as_np(v, k) for v, k in ((Lambda_or_A, "Lambda_or_A"), (B, "B"), (C, "C"), (s, "s")))
    N = A.shape[0]
    if A.ndim not in (1, 2) or (A.ndim == 2 and A.shape != (N, N)):
        raise ValueError(f"Lambda_or_A must have shape (N,) or (N, N), got {tuple(A.shape)}")
    if B.shape != (N,) or C.shape != (N,):
        raise ValueError(f"B and C must have shape ({N},), got {tuple(B.shape)} and {tuple(C.shape)}")
    s = s.reshape(-1)
    if A.ndim == 1:
        G = ((C * B)[None, :] / (s[:, None] - A[None, :])).sum(1)
        return torch.from_numpy(G)
    T, Z = scipy.linalg.schur(A, output="complex")
    b, c = Z.conj().T @ B, C @ Z
    x = np.zeros((s.shape[0], N), dtype=complex)
    for i in range(N - 1, -1, -1):
        x[:, i] = (b[i] + x[:, i + 1:] @ T[i, i + 1:]) / (s - T[i, i])
    return torch.from_numpy(x @ c)


from ._ptd import PTDInit, ptd, ptd_table, format_table  # noqa: E402  (public home of the PTD init)

__all__ = ["MEASURES", "DIAG_KINDS", "transition", "rank_correction", "nplr", "diag_init",
           "transfer_function", "PTDInit", "ptd", "ptd_table", "format_table"]


def main(argv: Optional[Sequence[str]] = None) -> int:
    """`python -m ssm.hippo report [N ...]`: print the PTD acceptance table."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] != "report":
        print("usage: python -m ssm.hippo report [N ...]")
        return 2
    Ns: List[int] = [int(a) for a in args[1:]] or [8, 16, 32, 64, 128]
    print(format_table(ptd_table(Ns)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
