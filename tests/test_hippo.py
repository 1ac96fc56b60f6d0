"""HiPPO matrices, NPLR forms, diagonal inits, transfer functions and the PTD init (ssm.hippo)."""
import math

import numpy as np
import pytest
import scipy.linalg
import torch
from numpy.polynomial import Polynomial, laguerre, legendre

import ssm._ptd
from ssm import hippo
from ssm.hippo import diag_init, nplr, ptd, ptd_table, rank_correction, transfer_function, transition


def _legendre_basis(x, N):
    """g_n(x) = sqrt(2n+1) P_n(x) at x (M,) -> (M, N)."""
    return legendre.legvander(x, N - 1) * np.sqrt(2 * np.arange(N) + 1)


def _fourier_basis(x, N):
    """[1, sqrt2 cos 2pi k x, sqrt2 sin 2pi k x, ...] at x (M,) -> (M, N)."""
    G = np.ones((len(x), N))
    for i in range(1, N):
        k = (i + 1) // 2
        G[:, i] = math.sqrt(2) * (np.cos if i % 2 else np.sin)(2 * math.pi * k * x)
    return G


def _projection_and_derivative(measure, N, f, df, t):
    """Coefficients c(t) of f under the measure and their exact time derivative, by quadrature."""
    if measure == "legs":  # c(t) = int_0^1 f(t u) g(2u - 1) du
        x, w = legendre.leggauss(N + 40)
        u, w = (x + 1) / 2, w / 2
        G = _legendre_basis(x, N)
        return (w * f(t * u)) @ G, (w * u * df(t * u)) @ G
    if measure == "legt":  # c(t) = int_0^1 f(t - 1 + u) g(2u - 1) du
        x, w = legendre.leggauss(N + 40)
        u, w = (x + 1) / 2, w / 2
        G = _legendre_basis(x, N)
        return (w * f(t - 1 + u)) @ G, (w * df(t - 1 + u)) @ G
    if measure == "lagt":  # c(t) = int_0^inf f(t - y) L_n(y) e^-y dy
        y, w = laguerre.laggauss(N + 40)
        G = laguerre.lagvander(y, N - 1)
        return (w * f(t - y)) @ G, (w * df(t - y)) @ G
    u = np.arange(8 * N) / (8 * N)  # fourier: uniform rule, exact for these trigonometric integrands
    G = _fourier_basis(u, N) / (8 * N)
    return f(t - 1 + u) @ G, df(t - 1 + u) @ G


def _test_function(measure, N, rng):
    """A function the measure's ODE must track exactly, and its derivative."""
    if measure == "fourier":  # period 1, frequencies with both cos and sin in the basis
        K = (N - 1) // 2
        a, b = rng.standard_normal(K + 1), rng.standard_normal(K + 1)
        k = np.arange(K + 1)[:, None] * 2 * math.pi
        return (lambda s: a @ np.cos(k * s) + b @ np.sin(k * s),
                lambda s: (-a[:, None] * k * np.sin(k * s) + b[:, None] * k * np.cos(k * s)).sum(0))
    if measure == "legs":  # exact for any smooth f
        return (lambda s: np.cos(3 * s) + s ** (N + 2), lambda s: -3 * np.sin(3 * s) + (N + 2) * s ** (N + 1))
    # lagt: exact for any f (a polynomial beyond degree N keeps Gauss-Laguerre exact); legt: degree < N
    p = Polynomial(rng.standard_normal(N + 3 if measure == "lagt" else N) / 2)
    return p, p.deriv()


@pytest.mark.parametrize("measure", hippo.MEASURES)
@pytest.mark.parametrize("N", [1, 4, 9, 16])
def test_transition_is_the_exact_projection_ode(measure, N):
    """dc/dt of the true projection equals A c + B f(t) (legs at t = 1, where 1/t = 1)."""
    A, B = (x.numpy() for x in transition(measure, N))
    assert A.dtype == np.float64 and A.shape == (N, N) and B.shape == (N,)
    f, df = _test_function(measure, N, np.random.default_rng(N))
    t = 1.0 if measure in ("legs", "lagt") else 0.7
    c, dc = _projection_and_derivative(measure, N, f, df, t)
    np.testing.assert_allclose(A @ c + B * f(t), dc, atol=1e-9 * (1 + np.abs(dc).max()))


def test_legs_entries():
    A, B = transition("legs", 3)
    r = np.sqrt([1.0, 3.0, 5.0])
    expect = np.array([[-1, 0, 0], [-r[1] * r[0], -2, 0], [-r[2] * r[0], -r[2] * r[1], -3]])
    np.testing.assert_allclose(A.numpy(), expect, rtol=1e-15)
    np.testing.assert_allclose(B.numpy(), r, rtol=1e-15)


@pytest.mark.parametrize("N", [4, 8, 16])
def test_legs_reconstructs_polynomials_of_degree_below_N(N):
    """For f(s) = s^j the LegS state at t is t^j (jI - A)^-1 B; sum_n c_n g_n(2s/t - 1) gives f back on [0, t]."""
    A, B = (x.numpy() for x in transition("legs", N))
    s = np.linspace(0, 1, 57)
    for j in range(N):
        c = np.linalg.solve(j * np.eye(N) - A, B)
        np.testing.assert_allclose(_legendre_basis(2 * s - 1, N) @ c, s ** j, atol=1e-12)
    c = np.linalg.solve(N * np.eye(N) - A, B)  # degree N is only approximated
    assert np.abs(_legendre_basis(2 * s - 1, N) @ c - s ** N).max() > 1e-10


@pytest.mark.parametrize("measure,rank", [("legs", 1), ("legs", 3), ("legt", 2), ("lagt", 1), ("fourier", 1)])
@pytest.mark.parametrize("N", [1, 2, 7, 16, 64])
def test_nplr_reconstructs_A(measure, N, rank):
    Lam, P, B, V = nplr(measure, N, rank)
    A, BH = (x.numpy() for x in transition(measure, N))
    assert Lam.dtype == P.dtype == B.dtype == V.dtype == torch.complex128
    assert P.shape == (rank, N) and B.shape == (N,) and V.shape == (N, N)
    Lam, P, B, V = (x.numpy() for x in (Lam, P, B, V))
    A_rec = V @ (np.diag(Lam) - P.T @ P.conj()) @ V.conj().T
    assert np.linalg.norm(A_rec - A) <= 1e-10 * np.linalg.norm(A)
    np.testing.assert_allclose(V.conj().T @ V, np.eye(N), atol=1e-12)
    np.testing.assert_allclose(V @ B, BH, atol=1e-10 * np.abs(BH).max())
    h = N // 2  # conjugate pairing: keep the first half
    np.testing.assert_allclose(Lam[h:2 * h], Lam[:h].conj(), atol=1e-12 * (1 + np.abs(Lam).max()))
    np.testing.assert_allclose(V[:, h:2 * h], V[:, :h].conj(), atol=1e-14)
    assert np.all(Lam[:h].imag >= 0) and np.all(np.diff(Lam[:h].imag) >= 0)
    if N % 2:
        assert abs(Lam[-1].imag) < 1e-12 and np.abs(V[:, -1].imag).max() < 1e-14


@pytest.mark.parametrize("measure,re", [("legs", -0.5), ("lagt", -0.5), ("legt", 0.0), ("fourier", 0.0)])
def test_normal_part_real_part(measure, re):
    Lam = nplr(measure, 32, rank=2)[0].numpy()
    np.testing.assert_allclose(Lam.real, re, atol=1e-12)


def test_rank_correction_errors():
    with pytest.raises(ValueError, match="rank"):
        rank_correction("legt", 8, rank=1)
    with pytest.raises(ValueError, match="measure"):
        transition("legx", 8)
    with pytest.raises(ValueError, match="N must"):
        nplr("legs", 0)


def test_diag_init_kinds():
    N, h = 16, 8
    n = np.arange(h)
    Lam, _, B, _ = nplr("legs", N)
    L, Bd = diag_init("legs", N)
    assert L.dtype == Bd.dtype == torch.complex128 and L.shape == Bd.shape == (h,)
    torch.testing.assert_close(L, Lam[:h]), torch.testing.assert_close(Bd, B[:h])
    np.testing.assert_allclose(diag_init("inv", N)[0].numpy(), -0.5 + 1j * (N / math.pi) * (N / (2 * n + 1) - 1))
    np.testing.assert_allclose(diag_init("lin", N)[0].numpy(), -0.5 + 1j * math.pi * n)
    np.testing.assert_allclose(diag_init("real", N)[0].numpy(), -(n + 1.0))
    for kind in ("inv", "lin", "real"):
        np.testing.assert_array_equal(diag_init(kind, N)[1].numpy(), np.ones(h))
    Ld, Bs = diag_init("dss", N)
    torch.testing.assert_close(Ld, Lam[:h])
    torch.testing.assert_close(Bs, diag_init("dss", N)[1])
    assert not torch.allclose(Bs, diag_init("dss", N, seed=1)[1])
    with pytest.raises(ValueError, match="even"):
        diag_init("legs", 7)
    with pytest.raises(ValueError, match="kind"):
        diag_init("foo", 8)


def test_half_kept_legs_system_equals_full_normal_part():
    """2 Re of the kept half reproduces the impulse response of the real system (A_N, B_H, B_H^T)."""
    N = 12
    A, B = (x.numpy() for x in transition("legs", N))
    p = rank_correction("legs", N)[0].numpy()
    AN = A + np.outer(p, p)
    Lam, Bd = (x.numpy() for x in diag_init("legs", N))
    Cd = (B @ nplr("legs", N)[3].numpy())[:N // 2]
    for t in (0.0, 0.03, 0.4, 2.0):
        full = B @ scipy.linalg.expm(AN * t) @ B
        np.testing.assert_allclose(2 * (Cd * Bd * np.exp(Lam * t)).sum().real, full, rtol=1e-10)


def test_transfer_function_matches_solve_and_diagonal():
    rng = np.random.default_rng(0)
    N = 6
    A = rng.standard_normal((N, N)) + 1j * rng.standard_normal((N, N))
    B, C = rng.standard_normal(N), rng.standard_normal(N) + 1j
    s = 1j * np.linspace(-20, 20, 11) + 0.3
    expect = [C @ np.linalg.solve(z * np.eye(N) - A, B) for z in s]
    np.testing.assert_allclose(transfer_function(A, B, C, s).numpy(), expect, rtol=1e-12)
    lam = rng.standard_normal(N) + 1j * rng.standard_normal(N)
    np.testing.assert_allclose(transfer_function(torch.from_numpy(lam), B, C, s).numpy(),
                               transfer_function(np.diag(lam), B, C, s).numpy(), rtol=1e-12)
    with pytest.raises(ValueError, match="B and C"):
        transfer_function(A, B[:3], C, s)
    with pytest.raises(ValueError, match="Lambda_or_A"):
        transfer_function(A[:, :3], B, C, s)


def test_transfer_function_of_legs_matches_woodbury_on_nplr():
    """The Schur solve of the very non-normal A_H agrees with Sherman-Morrison on the unitary NPLR form."""
    N = 32
    A, B = (x.numpy() for x in transition("legs", N))
    B = B / np.linalg.norm(B)
    Lam, P, _, V = (x.numpy() for x in nplr("legs", N))
    s = 1j * np.concatenate([-np.logspace(-2, 5, 300), np.logspace(-2, 5, 300), [N * N / math.pi]])
    R = 1 / (s[:, None] - Lam)
    b, c, q = V.conj().T @ B, B @ V, P[0]
    G = (R * c * b).sum(1) - (R * c * q).sum(1) * (R * q.conj() * b).sum(1) / (1 + (R * q.conj() * q).sum(1))
    np.testing.assert_allclose(transfer_function(A, B, B, s).numpy(), G, atol=1e-12, rtol=1e-9)


@pytest.mark.parametrize("measure,N", [("legs", 8), ("legs", 16), ("legs", 5), ("legs", 2), ("lagt", 10),
                                       ("fourier", 9)])
def test_ptd_decomposition(measure, N):
    init = ptd(measure, N)
    A = transition(measure, N)[0].numpy()
    Lam, V, Vi, E = (x.numpy() for x in (init.Lambda, init.V, init.V_inv, init.E))
    assert Lam.shape == (N,) and V.shape == Vi.shape == E.shape == (N, N)
    assert init.Lambda.dtype == init.V.dtype == init.V_inv.dtype == torch.complex128
    assert init.E.dtype == torch.float64  # conjugate-closed spectrum: the perturbation is real
    nA = np.linalg.norm(A, 2)
    assert np.linalg.norm(V @ np.diag(Lam) @ Vi - (A + E)) <= 1e-9 * nA
    np.testing.assert_allclose(Vi @ V, np.eye(N), atol=1e-9)
    assert init.cond == pytest.approx(np.linalg.cond(V), rel=1e-9)
    np.testing.assert_allclose(np.linalg.norm(V, axis=0), 1.0, rtol=1e-12)
    k = int((Lam.imag > 1e-9).sum())
    np.testing.assert_allclose(Lam[k:2 * k], Lam[:k].conj(), atol=1e-9 * nA)
    assert np.all(np.diff(Lam[:k].imag) >= 0) and np.all(Lam.real < 0)  # stable, as S4-PTD requires
    assert np.linalg.norm(E, 2) <= 0.11 * nA and init.cond <= 20


def test_ptd_deterministic_cached_and_isolated():
    a = ptd("legs", 16)
    a.Lambda.zero_()
    b = ptd("legs", 16)
    assert b.Lambda.abs().min() > 0
    ssm._ptd._ptd_cached.cache_clear()
    c = ptd("legs", 16)
    assert torch.equal(b.Lambda, c.Lambda) and torch.equal(b.E, c.E)
    d = ptd("legs", 16, seed=3)  # another start, a comparable optimum
    assert not torch.equal(d.Lambda, c.Lambda) and d.cond <= 20


def test_ptd_eps_targets_relative_size():
    A = transition("legs", 16)[0].numpy()
    for eps in (0.03, 0.09):
        init = ptd("legs", 16, eps=eps)
        assert np.linalg.norm(init.E.numpy(), 2) / np.linalg.norm(A, 2) == pytest.approx(eps, rel=0.02)
    assert ptd("legs", 16, eps=0.03).cond > ptd("legs", 16, eps=0.09).cond


def test_ptd_errors():
    with pytest.raises(ValueError, match="rank-2"):
        ptd("legt", 8)
    with pytest.raises(ValueError, match="distinct"):
        ptd("fourier", 8)
    with pytest.raises(ValueError, match="eps"):
        ptd("legs", 8, eps=2.0)
    with pytest.raises(ValueError, match="N must"):
        ptd("legs", 0)


def test_ptd_size_one_is_exact():
    init = ptd("legs", 1)
    assert init.Lambda.tolist() == [-1] and init.E.abs().max() == 0 and init.cond == 1.0


def _check_rows(rows):
    for r in rows:
        assert r["relE"] <= 0.1 and r["cond"] <= 20, r
        assert r["err_diag"] >= 0.3 and abs(r["spike"] / r["n2pi"] - 1) < 0.05, r
    errs = [r["err_ptd"] for r in rows]
    assert errs[0] <= 0.02 and all(b < a for a, b in zip(errs, errs[1:])), errs


def test_ptd_acceptance_small_N():
    _check_rows(ptd_table([8, 16, 32]))


@pytest.mark.slow
def test_ptd_acceptance_table():
    _check_rows(ptd_table([8, 16, 32, 64, 128]))


def test_report_cli(capsys):
    assert hippo.main(["report", "8"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("| N |") and "\n| 8 |" in out
    assert hippo.main([]) == 2
