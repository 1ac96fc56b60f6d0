"""Perturb-then-diagonalize (PTD): a small real E with A + E = V diag(Lambda) V^-1 and V well conditioned.

With the NPLR form A = U (Lam - q q^*) U^* (U unitary), every target spectrum mu (conjugate-closed) has
the rank-one family Lam - a b^* with eigenvalues mu: a_k conj(b_k) = pi_k (the secular residues, below)
and a = q r, b = q conj(r), r = sqrt(pi / |q|^2). Then E = U (q q^* - a b^*) U^*, the eigenvectors are
U (Lam - mu_j)^-1 a and the transfer function follows from Sherman-Morrison, all in closed form. We minimise

    J(mu) = ||E||_F^2 / ||A||_2^2 + weight kappa_2(V)^2 + transfer_weight (||G_PTD - G_H||_16 / max|G_H|)^2

(V with unit columns; G with B = B_H/||B_H||, C = B^T, the 16-norm over a sampling grid of the imaginary
axis) by L-BFGS, warm-started from the solution at N/2 (a coarse-to-fine chain of even N). Results are
deterministic per arguments and cached in memory and on disk."""
from __future__ import annotations

import contextlib
import functools
import math
from typing import Dict, NamedTuple, Optional, Tuple

import numpy as np
import torch

from .checks import check_choice, check_int, check_positive
from .forms import nplr_arrays
from .matrices import MEASURES, transition_arrays
from .store import cache_path, read_cached, write_cached

PTD_MEASURES = ("legs", "lagt", "fourier")
DEFAULT_WEIGHT = 1.2e-3
DEFAULT_TRANSFER_WEIGHT = {"legs": 3.0, "lagt": 0.0, "fourier": 0.0}  # only LegS is judged on its transfer gap
FAST_N = 256  # N <= FAST_N takes seconds (coarse levels included)
MAX_N = 512  # larger N is refused up front
CPU_SECONDS_AT_256 = 8.0  # one ptd("legs", 256) from nothing on 1 thread (512: ~45 s); the estimate grows as N^3
CACHE_VERSION = "ptd-2"
RTOL = 1e-4  # stop when 10 L-BFGS iterations lower J by less than this, relatively
P_NORM = 16
CHAIN_MIN_N = 16  # even N >= this start from the solution at N / 2
c128 = torch.complex128


class PTDInit(NamedTuple):
    """Lambda (N,), V (N, N), V_inv (N, N) complex128 with A + E = V diag(Lambda) V_inv; E (N, N); cond = cond_2(V);
    steps = objective evaluations at this N (the coarser levels not counted)."""
    Lambda: torch.Tensor
    V: torch.Tensor
    V_inv: torch.Tensor
    E: torch.Tensor
    cond: float
    steps: int


def start_spectrum(AN: np.ndarray, p: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """eig(A_N - p p^T / 2), halfway between S4D (E = p p^T) and A -> (pairs Im > 0 (k,), reals (m,), step (k + m,)).

    step_j is mu_j's distance to its nearest neighbour: the unit in which the optimiser moves mu_j."""
    mu = torch.linalg.eigvals(torch.from_numpy(AN - 0.5 * np.outer(p, p))).numpy()
    pairs = np.sort_complex(mu[mu.imag > 0])
    pairs = pairs[np.argsort(pairs.imag)]
    reals = np.sort(mu[mu.imag == 0].real)
    full = np.concatenate([pairs, pairs.conj(), reals])
    gap = np.abs(full[:, None] - full[None, :]) + np.diag(np.full(len(full), np.inf))
    step = gap.min(1)
    return pairs, reals, np.concatenate([step[:len(pairs)], step[2 * len(pairs):]])


def secular_residues(log_D: torch.Tensor, log_den: torch.Tensor) -> torch.Tensor:
    """log(pi_k / |q_k|^2), pi_k = prod_j (lam_k - mu_j) / prod_{l != k} (lam_k - lam_l), from sum_j log D_kj."""
    log_r = log_D.sum(1) - log_den
    return torch.complex(log_r.real, torch.remainder(log_r.imag + math.pi, 2 * math.pi) - math.pi)


def sherman_morrison(R: torch.Tensor, c: torch.Tensor, b: torch.Tensor, u: torch.Tensor, v: torch.Tensor):
    """c^T (sI - Lam + u v^*)^-1 b for R = (s - lam)^-1 (S, N) -> (S,)."""
    Ru = R * u
    return (R * c * b).sum(1) - (Ru * c).sum(1) * (R * v.conj() * b).sum(1) / (1 + (Ru * v.conj()).sum(1))


class SecularFamily:
    """J(x) of the rank-one family; x = offsets of mu (pairs: re, im; then reals) in units of `step`."""

    def __init__(self, measure: str, N: int):
        A, B = transition_arrays(measure, N)
        form = nplr_arrays(measure, N)
        self.A, self.U, self.N = A, form.V, N
        self.nA = float(torch.linalg.matrix_norm(torch.from_numpy(A), ord=2))
        p = (form.V @ form.P[0]).real
        pairs, reals, step = start_spectrum(A + np.outer(p, p), p)
        self.k, self.m = len(pairs), len(reals)
        t = torch.from_numpy
        self.lam, self.q = t(form.Lambda), t(form.P[0])
        self.q2 = self.q.abs() ** 2
        off = self.lam[:, None] - self.lam[None, :] + torch.eye(N, dtype=c128)
        self.log_den = torch.log(off).sum(1) + torch.log(self.q2)
        self.pairs, self.reals, self.step = t(pairs), t(reals), t(step)
        Bn = B / np.linalg.norm(B)
        self.b, self.c = t(form.V.conj().T @ Bn), t(Bn @ form.V)
        omega = np.unique(np.concatenate([np.logspace(-2, math.log10(30.0 * N * N), 200), np.abs(form.Lambda.imag)]))
        self.R = 1 / (t(1j * omega)[:, None] - self.lam[None, :])
        self.G_H = sherman_morrison(self.R, self.c, self.b, self.q, self.q)
        self.G_scale = self.G_H.abs().max()

    def distinct(self) -> bool:
        """Whether the normal part has distinct eigenvalues, each seen by q (else the family degenerates)."""
        lam, q = self.lam.numpy(), self.q.numpy()
        gap = np.abs(lam[:, None] - lam[None, :]) + np.diag(np.full(self.N, np.inf))
        return bool(gap.min() > 1e-8 * np.abs(lam).max() and np.abs(q).min() > 1e-12 * np.abs(q).max())

    def mu(self, x: torch.Tensor) -> torch.Tensor:
        k, step = self.k, self.step
        m = self.pairs + step[:k] * torch.complex(x[:k], x[k:2 * k])
        r = (self.reals + step[k:] * x[2 * k:]).to(c128)
        return torch.cat([m, m.conj(), r])

    def vectors(self, x: torch.Tensor):
        """-> mu (N,), D = lam_k - mu_j (N, N), a (N,), b (N,)."""
        mu = self.mu(x)
        D = self.lam[:, None] - mu[None, :]
        r = torch.exp(secular_residues(torch.log(D), self.log_den) / 2)  # principal root: a = b = q at mu = eig(A)
        return mu, D, self.q * r, self.q * r.conj()

    def terms(self, x: torch.Tensor, gap: bool = True) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> (||E||_F^2 / ||A||_2^2, kappa_2(V)^2, (||G_PTD - G_H||_p / max|G_H|)^2 (0 if not gap))."""
        mu, D, a, b = self.vectors(x)
        na, nb = (a.abs() ** 2).sum(), (b.abs() ** 2).sum()
        E2 = self.q2.sum() ** 2 + na * nb - 2 * ((self.q.conj() @ a) * (b.conj() @ self.q)).real
        X = a[:, None] / D
        W = X / X.norm(dim=0)
        ev = torch.linalg.eigvalsh(W.conj().T @ W)
        if not gap:
            return E2 / self.nA ** 2, ev[-1] / ev[0], torch.zeros((), dtype=torch.float64)
        g = (sherman_morrison(self.R, self.c, self.b, a, b) - self.G_H).abs() / self.G_scale
        return E2 / self.nA ** 2, ev[-1] / ev[0], (g ** P_NORM).mean() ** (2 / P_NORM)

    def objective(self, x: torch.Tensor, weight: float, transfer_weight: float) -> torch.Tensor:
        E2, k2, g2 = self.terms(x, gap=transfer_weight > 0)
        return E2 + weight * k2 + transfer_weight * g2

    def minimise(self, x0: np.ndarray, weight: float, transfer_weight: float, max_rounds: int = 100):
        """L-BFGS (strong Wolfe) in rounds of 10 iterations until a round lowers J by < RTOL -> (x, evaluations)."""
        x = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
        opt = torch.optim.LBFGS([x], lr=1, max_iter=10, tolerance_grad=1e-12, tolerance_change=0.0,
                                history_size=30, line_search_fn="strong_wolfe")
        evaluations = 0

        def closure():
            nonlocal evaluations
            evaluations += 1
            opt.zero_grad()
            J = self.objective(x, weight, transfer_weight)
            J.backward()
            return J

        previous = math.inf
        for _ in range(max_rounds):
            J = float(opt.step(closure).detach())
            if previous - J <= RTOL * abs(J):
                break
            previous = J
        if not math.isfinite(J):
            raise RuntimeError(f"ptd: the optimisation diverged at N={self.N} (objective {J})")
        return x.detach().numpy().copy(), evaluations

    def assemble(self, x: np.ndarray) -> Dict[str, np.ndarray]:
        """The decomposition at x: Lambda (Im > 0 ascending, conjugates, reals), V (unit columns), V_inv, E, cond."""
        with torch.no_grad():
            mu, D, a, b = (t.numpy() for t in self.vectors(torch.from_numpy(x)))
        k = self.k
        o = np.argsort(mu[:k].imag)
        o = np.concatenate([o, o + k, np.arange(2 * k, self.N)])
        mu, D = mu[o], D[:, o]
        U = torch.from_numpy(self.U)
        V = U @ torch.from_numpy(a[:, None] / D)
        V = V / torch.linalg.vector_norm(V, dim=0)
        q = self.q.numpy()
        E = (U @ torch.from_numpy(np.outer(q, q.conj()) - np.outer(a, b.conj())) @ U.mH).numpy()
        if np.abs(E.imag).max() <= 1e-9 * self.nA:
            E = E.real
        cond = float(torch.linalg.cond(V))
        return dict(Lambda=mu, V=V.numpy(), V_inv=torch.linalg.inv(V).numpy(), E=E, cond=cond)


def coarse_to_fine(x: np.ndarray, k_coarse: int, k_fine: int) -> np.ndarray:
    """Offsets of k_coarse pairs -> k_fine pairs, linear in the relative index (j + 1/2) / k."""
    u0, u1 = (np.arange(k_coarse) + 0.5) / k_coarse, (np.arange(k_fine) + 0.5) / k_fine
    return np.concatenate([np.interp(u1, u0, x[:k_coarse]), np.interp(u1, u0, x[k_coarse:2 * k_coarse])])


@functools.lru_cache(maxsize=32)
def family(measure: str, N: int) -> SecularFamily:
    """The precomputed family of (measure, N), cached (it holds only constants)."""
    return SecularFamily(measure, N)


def warm_start(measure: str, N: int, weight: float, transfer_weight: float) -> np.ndarray:
    """x0 at N: zeros, or the solution at N / 2 interpolated (even N >= CHAIN_MIN_N, all eigenvalues in pairs)."""
    fam = family(measure, N)
    zeros = np.zeros(2 * fam.k + fam.m)
    if N % 2 or N < CHAIN_MIN_N or fam.m:
        return zeros
    coarse = family(measure, N // 2)
    if coarse.m or not coarse.distinct():
        return zeros
    x, _ = level_solution(measure, N // 2, weight, transfer_weight)
    return coarse_to_fine(x, coarse.k, fam.k)


@functools.lru_cache(maxsize=64)
def level_solution(measure: str, N: int, weight: float, transfer_weight: float) -> Tuple[np.ndarray, int]:
    """The minimiser x at N (seed 0, no eps target) and its evaluation count; memoised for the finer levels."""
    return family(measure, N).minimise(warm_start(measure, N, weight, transfer_weight), weight, transfer_weight)


def norm2_rank2(q: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """||q q^* - a b^*||_2 from the 2 x 2 Gram matrices (no N x N SVD)."""
    X, Y = np.stack([q, a], 1), np.stack([q, -b], 1)
    return float(np.sqrt(np.abs(np.linalg.eigvals((X.conj().T @ X) @ (Y.conj().T @ Y))).max()))


def relative_size(fam: SecularFamily, x: np.ndarray) -> float:
    """||E||_2 / ||A||_2 at x."""
    with torch.no_grad():
        _, _, a, b = fam.vectors(torch.from_numpy(x))
    return norm2_rank2(fam.q.numpy(), a.numpy(), b.numpy()) / fam.nA


@contextlib.contextmanager
def one_thread():
    """Run torch on one thread: the ops are small and dense, so threads only add overhead (and contention)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def solve(measure: str, N: int, eps: Optional[float], weight: float, transfer_weight: float, seed: int) -> Dict:
    """Uncached PTD of (measure, N) -> dict(Lambda, V, V_inv, E, cond, steps)."""
    with one_thread():
        return solve_here(measure, N, eps, weight, transfer_weight, seed)


def solve_here(measure: str, N: int, eps: Optional[float], weight: float, transfer_weight: float, seed: int) -> Dict:
    """`solve` on the current threads."""
    if N == 1:  # already diagonal: nothing to perturb
        A, _ = transition_arrays(measure, 1)
        one = np.ones((1, 1), dtype=complex)
        return dict(Lambda=A[0].astype(complex), V=one, V_inv=one.copy(), E=np.zeros((1, 1)), cond=1.0, steps=0)
    fam = family(measure, N)
    if not fam.distinct():
        raise ValueError(f"ptd needs a normal part with distinct eigenvalues, each seen by the low-rank term; "
                         f"measure {measure!r} at N={N} has a repeated one")
    if seed == 0 and eps is None:
        x, steps = level_solution(measure, N, weight, transfer_weight)
    else:
        x0 = warm_start(measure, N, weight, transfer_weight)
        if seed:
            x0 = x0 + 1e-2 * np.random.default_rng(seed).standard_normal(x0.shape)
        x, steps = fam.minimise(x0, weight, transfer_weight)
    if eps is not None:
        x, more = match_size(fam, x, eps, weight, transfer_weight)
        steps += more
    return dict(fam.assemble(x), steps=steps)


def match_size(fam: SecularFamily, x: np.ndarray, eps: float, weight: float, transfer_weight: float,
               rtol: float = 0.01) -> Tuple[np.ndarray, int]:
    """Re-minimise with the weight that makes ||E||_2 / ||A||_2 = eps (to rtol) -> (x, evaluations).

    ||E|| grows with the weight of kappa(V)^2: a secant on (log weight, log ||E||) from the solution at
    `weight`, kept inside the bracket of the weights tried so far (bisection when it would leave it)."""
    lo, hi = math.log(1e-9), math.log(10.0)
    lw, lr, steps = math.log(weight), math.log(relative_size(fam, x)), 0
    before = None
    for _ in range(30):
        if abs(math.exp(lr) / eps - 1) <= rtol:
            break
        lo, hi = (lw, hi) if lr < math.log(eps) else (lo, lw)
        slope = (lr - before[1]) / (lw - before[0]) if before and lw != before[0] else 0.3
        new = lw + (math.log(eps) - lr) / slope if slope > 0 else (lo + hi) / 2
        before, lw = (lw, lr), new if lo < new < hi else (lo + hi) / 2
        x, more = fam.minimise(x, math.exp(lw), transfer_weight)
        lr, steps = math.log(relative_size(fam, x)), steps + more
    return x, steps


def estimate_seconds(N: int) -> float:
    """Rough CPU seconds of ptd at N from nothing (1 thread): each of ~100 steps costs O(N^3)."""
    return CPU_SECONDS_AT_256 * (N / 256) ** 3


def format_seconds(seconds: float) -> str:
    """'40 s', '6 min', '7.3 h'."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def check_ptd_arguments(measure, N, eps, seed, weight, transfer_weight) -> Tuple:
    """Validate ptd's arguments, refusing N > MAX_N before any work.

    -> (measure, N, eps, weight, transfer_weight, seed), the key of the caches."""
    check_choice("measure", measure, MEASURES)
    if measure not in PTD_MEASURES:
        raise ValueError(f"measure must be one of {list(PTD_MEASURES)} for ptd (a rank-1 NPLR form), "
                         f"got {measure!r} (rank 2)")
    N = check_int("N", N)
    if measure == "fourier" and N % 2 == 0:
        raise ValueError(f"N must be odd for measure 'fourier' in ptd (even N gives its normal part a repeated "
                         f"zero eigenvalue), got {N}")
    if N > MAX_N:
        raise ValueError(
            f"N must be <= {MAX_N} for ptd, got {N}: it would take about {format_seconds(estimate_seconds(N))} "
            f"of CPU time, because each of ~100 optimisation steps costs O(N^3) (an N x N Hermitian eigenproblem "
            f"for cond(V)). N <= {FAST_N} takes seconds. For more states use blocks of size <= {FAST_N} "
            f"(S5-PTD `blocks`) or a diagonal init (`diag_init`).")
    eps = None if eps is None else check_positive("eps", eps, 1.0)
    seed = check_int("seed", seed, 0)
    if transfer_weight is None:
        transfer_weight = DEFAULT_TRANSFER_WEIGHT[measure]
    weight = check_positive("weight", weight)
    transfer_weight = check_positive("transfer_weight", transfer_weight, zero=True)
    return measure, N, eps, weight, transfer_weight, seed


@functools.lru_cache(maxsize=64)
def cached(key: Tuple) -> Dict:
    """Memory cache over the disk cache over `solve`."""
    path = cache_path(CACHE_VERSION, key)
    result = read_cached(path, transition_arrays(key[0], key[1])[0])
    if result is None:
        result = solve(*key)
        write_cached(path, result)
    return result


def ptd(measure: str, N: int, eps: Optional[float] = None, seed: int = 0, weight: float = DEFAULT_WEIGHT,
        transfer_weight: Optional[float] = None, cache: bool = True) -> PTDInit:
    """PTD init of the full HiPPO matrix A (N, N) -> PTDInit (all N eigenvalues; see the class).

    Lambda[:k] has Im > 0 (ascending), Lambda[k:2k] their conjugates, then real ones; E is real (float64)
    when the spectrum is conjugate-closed. weight / transfer_weight: weights of kappa(V)^2 and of the
    relative transfer-function gap against ||E||_F^2 / ||A||_2^2 (transfer_weight None: 3 for legs, else 0);
    eps: target ||E||_2 / ||A||_2 (the weight is then matched to it). seed != 0 jitters the start.
    Deterministic; cache=False recomputes every level. Measures with a rank-1 NPLR form: legs, lagt,
    fourier (odd N). N <= MAX_N (larger N is refused up front)."""
    key = check_ptd_arguments(measure, N, eps, seed, weight, transfer_weight)
    if not cache:
        family.cache_clear()
        level_solution.cache_clear()
        return to_init(solve(*key))
    return to_init(cached(key))


def clear_cache() -> None:
    """Forget the in-memory results (the disk cache stays)."""
    for f in (cached, level_solution, family):
        f.cache_clear()


def to_init(r: Dict) -> PTDInit:
    """Fresh tensors (copies), so callers cannot alter the cache."""
    t = {k: torch.from_numpy(np.array(r[k])) for k in ("Lambda", "V", "V_inv", "E")}
    return PTDInit(t["Lambda"], t["V"], t["V_inv"], t["E"], float(r["cond"]), int(r["steps"]))
