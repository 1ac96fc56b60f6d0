"""Perturb-then-diagonalize (PTD) init by the secular (rank-one inverse eigenvalue) method.

Write A = U (Lam - q q^*) U^* (NPLR, U unitary). For any target spectrum mu there is a rank-one
term a b^* with eig(Lam - a b^*) = mu: a_k conj(b_k) = pi_k = prod_j (lam_k - mu_j) / prod_{l!=k} (lam_k - lam_l).
So A + E with E = U (q q^* - a b^*) U^* has eigenvalues mu, right eigenvectors U (mu_j - Lam)^-1 a and
left eigenvectors U (conj(mu_j) - conj(Lam))^-1 b: ||E||_F and every eigenvalue condition number
s_j = ||v_j|| ||w_j|| / |w_j^* v_j| are closed forms in mu, O(N^2) to evaluate with no eig.
We minimise ||E||_F^2 / ||A||_2^2 + weight * mean_j s_j^2 over mu (conjugate-closed, so E is real)
by L-BFGS (about 30-150 gradient evaluations for N = 8..256), starting from eig(A_N - q q^*/2)
and scaling each mu_j by its distance to its nearest neighbour.
Public home: ssm.hippo."""
from __future__ import annotations

import functools
import math
import time
from typing import Dict, List, NamedTuple, Optional, Sequence

import numpy as np
import torch



def _h():
    """ssm.hippo, imported late: it re-exports this module, so neither may import the other at the top."""
    from . import hippo
    return hippo

DEFAULT_WEIGHT = 3e-3


class PTDInit(NamedTuple):
    """Lambda (N,), V (N, N), V_inv (N, N) complex128 with A + E = V diag(Lambda) V_inv; E (N, N); cond = cond_2(V)."""
    Lambda: torch.Tensor
    V: torch.Tensor
    V_inv: torch.Tensor
    E: torch.Tensor
    cond: float


def _start(AN: np.ndarray, p: np.ndarray, jitter: int):
    """Starting spectrum eig(A_N - p p^T / 2) -> (pairs with Im > 0 (k,), reals (m,), scale (k + m,))."""
    mu = np.linalg.eigvals(AN - 0.5 * np.outer(p, p))
    pairs = np.sort_complex(mu[mu.imag > 0])
    pairs = pairs[np.argsort(pairs.imag)]
    reals = np.sort(mu[mu.imag == 0].real)
    full = np.concatenate([pairs, pairs.conj(), reals])
    d = np.abs(full[:, None] - full[None, :]) + np.diag(np.full(len(full), np.inf))
    sig = d.min(1)
    sig = np.concatenate([sig[:len(pairs)], sig[2 * len(pairs):]])
    if jitter:
        rng = np.random.default_rng(jitter)
        k = len(pairs)
        pairs = pairs + 1e-2 * sig[:k] * (rng.standard_normal(k) + 1j * rng.standard_normal(k))
        reals = reals + 1e-2 * sig[len(pairs):] * rng.standard_normal(len(reals))
    return pairs, reals, sig


class _Secular:
    """The closed forms of the rank-one family as functions of the parameter vector x."""

    def __init__(self, lam, q, nA, pairs, reals, sig):
        self.lam, self.q = torch.from_numpy(lam), torch.from_numpy(q)
        self.q2 = self.q.abs() ** 2
        N = len(lam)
        off = self.lam[:, None] - self.lam[None, :] + torch.eye(N, dtype=torch.complex128)
        self.logden = torch.log(off).sum(1)
        self.nA, self.k = nA, len(pairs)
        self.pairs, self.reals, self.sig = torch.from_numpy(pairs), torch.from_numpy(reals), torch.from_numpy(sig)

    def mu(self, x: torch.Tensor) -> torch.Tensor:
        k, sig = self.k, self.sig
        m = self.pairs + sig[:k] * torch.complex(x[:k], x[k:2 * k])
        r = (self.reals + sig[k:] * x[2 * k:]).to(torch.complex128)
        return torch.cat([m, m.conj(), r])

    def parts(self, x: torch.Tensor):
        """-> mu (N,), D = lam_k - mu_j (N, N), pi (N,), a (N,), b (N,)."""
        mu = self.mu(x)
        D = self.lam[:, None] - mu[None, :]
        logr = torch.log(D).sum(1) - self.logden - torch.log(self.q2)
        logr = torch.complex(logr.real, torch.remainder(logr.imag + math.pi, 2 * math.pi) - math.pi)
        sr = torch.exp(logr / 2)  # principal sqrt of pi_k / |q_k|^2: a = b = q when mu = eig(A)
        return mu, D, self.q2 * torch.exp(logr), self.q * sr, self.q * sr.conj()

    def terms(self, x: torch.Tensor):
        """-> (||E||_F^2 / ||A||_2^2, eigenvalue condition numbers s_j^2 (N,))."""
        mu, D, pi, a, b = self.parts(x)
        iD2 = 1 / D.abs() ** 2
        s2 = ((a.abs() ** 2) @ iD2) * ((b.abs() ** 2) @ iD2) / (pi[:, None] / D ** 2).sum(0).abs() ** 2
        na, nb = (a.abs() ** 2).sum(), (b.abs() ** 2).sum()
        E2 = self.q2.sum() ** 2 + na * nb - 2 * ((self.q.conj() @ a) * (b.conj() @ self.q)).real
        return E2 / self.nA ** 2, s2

    def minimise(self, x0: np.ndarray, weight: float, max_rounds: int = 200, rtol: float = 1e-6) -> np.ndarray:
        """L-BFGS (strong Wolfe) in rounds of 10 iterations until a round lowers the objective by < rtol."""
        x = torch.tensor(x0, requires_grad=True)
        opt = torch.optim.LBFGS([x], lr=1, max_iter=10, tolerance_grad=1e-14, tolerance_change=0.0,
                                history_size=20, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            e2, s2 = self.terms(x)
            obj = e2 + weight * s2.mean()
            obj.backward()
            return obj

        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # N^2-sized ops: threading only adds overhead
        try:
            prev = math.inf
            for _ in range(max_rounds):
                obj = float(opt.step(closure).detach())
                if prev - obj <= rtol * abs(obj):
                    break
                prev = obj
        finally:
            torch.set_num_threads(threads)
        return x.detach().numpy().copy()


def _assemble(sec: _Secular, x: np.ndarray, U: np.ndarray, A: np.ndarray) -> Dict[str, np.ndarray]:
    mu, D, _, a, b = (t.numpy() for t in sec.parts(torch.from_numpy(x)))
    k = sec.k
    o = np.argsort(mu[:k].imag)  # pairs stay pairs; keep Im > 0 first, ascending
    o = np.concatenate([o, o + k, np.arange(2 * k, len(mu))])
    mu, D = mu[o], D[:, o]
    V = U @ (a[:, None] / -D)
    V = V / np.linalg.norm(V, axis=0)
    E = U @ (np.outer(sec.q.numpy(), sec.q.numpy().conj()) - np.outer(a, b.conj())) @ U.conj().T
    if np.abs(E.imag).max() <= 1e-9 * sec.nA:
        E = E.real
    return dict(Lambda=mu, V=V, V_inv=np.linalg.inv(V), E=E, cond=float(np.linalg.cond(V)))


@functools.lru_cache(maxsize=64)
def _ptd_cached(measure: str, N: int, eps: Optional[float], weight: float, seed: int) -> Dict[str, np.ndarray]:
    A, _ = _h()._transition_np(measure, N)
    if N == 1:  # already diagonal: nothing to perturb
        one = np.ones((1, 1), dtype=complex)
        return dict(Lambda=A[0].astype(complex), V=one, V_inv=one.copy(), E=np.zeros((1, 1)), cond=1.0)
    Lam, P, _, U = _h()._nplr_np(measure, N)
    p = (U @ P[0]).real
    gap = np.abs(Lam[:, None] - Lam[None, :]) + np.diag(np.full(N, np.inf))
    if gap.min() <= 1e-8 * np.abs(Lam).max() or np.abs(P[0]).min() <= 1e-12 * np.abs(P[0]).max():
        raise ValueError(f"ptd needs a normal part with distinct eigenvalues, each seen by the low-rank term; "
                         f"measure {measure!r} at N={N} has a repeated one (fourier: use odd N)")
    nA = float(np.linalg.norm(A, 2))
    pairs, reals, sig = _start(A + np.outer(p, p), p, seed)
    sec = _Secular(Lam, P[0], nA, pairs, reals, sig)
    x = sec.minimise(np.zeros(2 * len(pairs) + len(reals)), weight)
    if eps is not None:  # bisect log(weight) until ||E||_2 / ||A||_2 ~ eps (it grows with the weight)
        lo, hi = math.log(1e-7), math.log(1.0)
        for _ in range(30):
            w = math.exp((lo + hi) / 2)
            x = sec.minimise(x, w)
            rel = np.linalg.norm(_assemble(sec, x, U, A)["E"], 2) / nA
            if abs(rel - eps) <= 0.01 * eps:
                break
            lo, hi = (math.log(w), hi) if rel < eps else (lo, math.log(w))
    return _assemble(sec, x, U, A)


def ptd(measure: str, N: int, eps: Optional[float] = None, seed: int = 0,
        weight: float = DEFAULT_WEIGHT) -> PTDInit:
    """PTD init of the full HiPPO matrix A (N, N) -> PTDInit (all N eigenvalues; see the class).

    Lambda[:k] has Im > 0 (ascending), Lambda[k:2k] their conjugates, then real ones; E is real
    (float64) when the spectrum is conjugate-closed. eps: target ||E||_2 / ||A||_2 (the weight is then
    bisected), else `weight` trades ||E|| against conditioning. seed != 0 jitters the start.
    Deterministic and cached per arguments. Measures with a rank-1 NPLR form: legs, lagt, fourier (odd N)."""
    _h()._check_measure(measure)
    _h()._check_N(N)
    if measure == "legt":
        raise ValueError("measure 'legt' has a rank-2 NPLR form; ptd supports 'legs', 'lagt', 'fourier'")
    if eps is not None and not (0 < eps < 1):
        raise ValueError(f"eps must be in (0, 1) (a relative size of E), got {eps!r}")
    if not weight > 0:
        raise ValueError(f"weight must be > 0, got {weight!r}")
    return _to_init(_ptd_cached(measure, int(N), None if eps is None else float(eps), float(weight), int(seed)))


def _to_init(r: Dict[str, np.ndarray]) -> PTDInit:
    """Fresh tensors (copies), so callers cannot alter the cache."""
    t = {k: torch.from_numpy(np.array(v)) for k, v in r.items() if k != "cond"}
    return PTDInit(t["Lambda"], t["V"], t["V_inv"], t["E"], r["cond"])


def frequencies(N: int, *poles: np.ndarray, n: int = 4000) -> np.ndarray:
    """Test points s = i omega on both half axes: a log grid up to 30 N^2 plus every pole's frequency."""
    w = np.logspace(-2, math.log10(30.0 * N * N), n)
    extra = np.concatenate([np.abs(np.asarray(pl).imag) for pl in poles] or [np.zeros(0)])
    w = np.unique(np.concatenate([w, extra]))
    return 1j * np.concatenate([-w[::-1], w])


def ptd_table(Ns: Sequence[int] = (8, 16, 32, 64, 128), measure: str = "legs") -> List[dict]:
    """Rows per N: ||E||_2, ||E||/||A||, cond(V), wall/CPU seconds of an uncached ptd,
    max_s |G_PTD - G_H| and |G_diag - G_H| (B = B_H/||B_H||, C = B^T)."""
    rows, h = [], _h()
    _ptd_cached.__wrapped__(measure, 5, None, DEFAULT_WEIGHT, 0)  # warm up (lazy imports), not timed
    for N in Ns:
        A, B = h._transition_np(measure, N)
        B = B / np.linalg.norm(B)
        t0, c0 = time.perf_counter(), time.process_time()
        init = _to_init(_ptd_cached.__wrapped__(measure, N, None, DEFAULT_WEIGHT, 0))  # uncached, to time it
        sec, cpu = time.perf_counter() - t0, time.process_time() - c0
        Lam, V, Vi = init.Lambda.numpy(), init.V.numpy(), init.V_inv.numpy()
        LN, _, _, U = h._nplr_np(measure, N)
        s = frequencies(N, Lam, LN)
        GH = h.transfer_function(A, B, B, s).numpy()
        GP = h.transfer_function(Lam, Vi @ B, B @ V, s).numpy()
        GD = h.transfer_function(LN, U.conj().T @ B, B @ U, s).numpy()
        i = int(np.argmax(np.abs(GD - GH)))
        nE = float(np.linalg.norm(init.E.numpy(), 2))
        rows.append(dict(N=N, E=nE, relE=nE / np.linalg.norm(A, 2), cond=init.cond, seconds=sec, cpu=cpu,
                         err_ptd=float(np.abs(GP - GH).max()), err_diag=float(np.abs(GD - GH)[i]),
                         spike=float(abs(s[i].imag)), n2pi=N * N / math.pi, GH_max=float(np.abs(GH).max())))
    return rows


def format_table(rows: List[dict]) -> str:
    """Markdown table of ptd_table rows."""
    head = ("| N | ||E||_2 | ||E||/||A_H|| | cond(V) | max|G_PTD-G_H| | max|G_diag-G_H| | spike at |s| "
            "| N^2/pi | max|G_H| | PTD wall s | PTD CPU s |\n|---|---|---|---|---|---|---|---|---|---|---|")
    lines = [f"| {r['N']} | {r['E']:.3g} | {r['relE']:.4f} | {r['cond']:.2f} | {r['err_ptd']:.2e} | "
             f"{r['err_diag']:.3f} | {r['spike']:.1f} | {r['n2pi']:.1f} | {r['GH_max']:.2e} | "
             f"{r['seconds']:.2f} | {r['cpu']:.2f} |"
             for r in rows]
    return "\n".join([head] + lines)
