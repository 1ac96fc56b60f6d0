"""HiPPO matrices against oracles built here from the definitions: the projection ODE checked by quadrature,
and the translated measures' (A, B) assembled from integrals of their basis functions, in both conventions."""
import math

import numpy as np
import pytest
from numpy.polynomial import Polynomial, laguerre, legendre

from ssm import hippo
from ssm.hippo import rank_correction, transition

WINDOW = {"unit": 1.0, "s4": 2.0}


def legendre_basis(x, N):
    """g_n(x) = sqrt(2n+1) P_n(2x - 1) and g_n'(x) at x in [0, 1] (M,) -> (M, N) each."""
    V = legendre.legvander(2 * x - 1, N - 1)
    dV = np.stack([legendre.legval(2 * x - 1, legendre.legder(np.eye(N)[n])) * 2 for n in range(N)], 1)
    r = np.sqrt(2 * np.arange(N) + 1)
    return V * r, dV * r


def fourier_basis(x, N, convention):
    """The fourier basis and its derivative at x in [0, 1] -> (M, N) each.

    unit: [1, cos 2pi x, sin 2pi x, cos 4pi x, ...] * sqrt 2 (a lone cos last for even N);
    s4 (even N): [1, 0, cos 2pi x, -sin 2pi x, cos 4pi x, -sin 4pi x, ...] * sqrt 2."""
    G, dG = np.zeros((len(x), N)), np.zeros((len(x), N))
    G[:, 0] = 1
    for i in range(1, N):
        if convention == "unit":
            k, kind, sign = (i + 1) // 2, "cos" if i % 2 else "sin", 1.0
        else:
            if i == 1:
                continue  # the state that stays 0
            k, kind, sign = i // 2, "cos" if i % 2 == 0 else "sin", -1.0
        w = 2 * math.pi * k
        if kind == "cos":
            G[:, i], dG[:, i] = math.sqrt(2) * np.cos(w * x), -math.sqrt(2) * w * np.sin(w * x)
        else:
            G[:, i], dG[:, i] = sign * math.sqrt(2) * np.sin(w * x), sign * math.sqrt(2) * w * np.cos(w * x)
    return G, dG


def translated_from_integrals(measure, N, convention):
    """(A, B) of the window [t - theta, t] from c_n = int_0^1 f(t - theta + theta x) g_n(x) dx.

    dc_n/dt = (f(t) g_n(1) - f(t - theta) g_n(0) - sum_m c_m int g_m g_n') / theta, with f(t - theta) read off
    the expansion (legt: sum_m c_m g_m(0)) or its midpoint value at a jump (fourier: 2 sum_m c_m g_m(0) - f(t))."""
    x, w = legendre.leggauss(200)
    x, w = (x + 1) / 2, w / 2
    basis = legendre_basis if measure == "legt" else (lambda x, N: fourier_basis(x, N, convention))
    G, dG = basis(x, N)
    (g0, _), (g1, _) = basis(np.zeros(1), N), basis(np.ones(1), N)
    g0, g1 = g0[0], g1[0]
    gamma = 1.0 if measure == "legt" else 2.0
    theta = WINDOW[convention]
    A = -(gamma * np.outer(g0, g0) + (dG * w[:, None]).T @ G) / theta
    B = (g1 + (gamma - 1) * g0) / theta
    return A, B


def cases(Ns, measures):
    """(measure, convention, N), without the odd N the s4 fourier basis does not have."""
    return [(m, c, N) for m in measures for c in hippo.CONVENTIONS for N in Ns
            if not (m == "fourier" and c == "s4" and N % 2)]


@pytest.mark.parametrize("measure,convention,N", cases([2, 4, 7, 10], ["legt", "fourier"]))
def test_translated_measures_match_their_integrals(measure, convention, N):
    A, B = (t.numpy() for t in transition(measure, N, convention=convention))
    A_ref, B_ref = translated_from_integrals(measure, N, convention)
    np.testing.assert_allclose(A, A_ref, atol=1e-10 * np.abs(A_ref).max())
    np.testing.assert_allclose(B, B_ref, atol=1e-12)


def test_s4_convention_as_written_in_the_official_code():
    """The differences spelled out: legt halved; lagt + I/2; fourier entries at N = 6 written by hand."""
    for N in (3, 8):
        A1, B1 = transition("legt", N)
        A2, B2 = transition("legt", N, convention="s4")
        np.testing.assert_allclose(A2.numpy(), A1.numpy() / 2)
        np.testing.assert_allclose(B2.numpy(), B1.numpy() / 2)
        np.testing.assert_allclose(transition("lagt", N, convention="s4")[0].numpy(),
                                   transition("lagt", N)[0].numpy() + np.eye(N) / 2)
    r = math.sqrt(2)
    g = np.array([1, 0, r, 0, r, 0])
    K = np.zeros((6, 6))
    K[2, 3], K[3, 2], K[4, 5], K[5, 4] = -math.pi, math.pi, -2 * math.pi, 2 * math.pi
    A, B = transition("fourier", 6, convention="s4")
    np.testing.assert_allclose(A.numpy(), K - np.outer(g, g), atol=1e-15)
    np.testing.assert_allclose(B.numpy(), g)


def projection_and_derivative(measure, convention, N, f, df, t):
    """Coefficients c(t) of f under the measure and their exact time derivative, by quadrature."""
    if measure == "legs":  # c(t) = int_0^1 f(t u) g(u) du
        x, w = legendre.leggauss(N + 40)
        u, w = (x + 1) / 2, w / 2
        G = legendre_basis(u, N)[0]
        return (w * f(t * u)) @ G, (w * u * df(t * u)) @ G
    if measure == "lagt":  # unit: int_0^inf f(t - y) L_n(y) e^-y dy; s4: f(t - y) L_n(y) e^(-y/2) dy
        y, w = laguerre.laggauss(N + 40)
        G = laguerre.lagvander(y, N - 1) * (np.exp(y / 2)[:, None] if convention == "s4" else 1)
        return (w * f(t - y)) @ G, (w * df(t - y)) @ G
    theta = WINDOW[convention]
    if measure == "legt":
        x, w = legendre.leggauss(N + 40)
        u, w = (x + 1) / 2, w / 2
        G = legendre_basis(u, N)[0]
    else:  # uniform rule: exact for these trigonometric integrands
        u = np.arange(8 * N) / (8 * N)
        w = np.full(8 * N, 1 / (8 * N))
        G = fourier_basis(u, N, convention)[0]
    s = t - theta + theta * u
    return (w * f(s)) @ G, (w * df(s)) @ G


def exact_input(measure, convention, N, rng):
    """A function the measure's ODE must track exactly, and its derivative."""
    if measure == "fourier":  # period = window, frequencies with both cos and sin in the basis
        K = (N - 1) // 2 if convention == "unit" else N // 2 - 1
        a, b = rng.standard_normal(K + 1), rng.standard_normal(K + 1)
        k = np.arange(K + 1)[:, None] * 2 * math.pi / WINDOW[convention]
        return (lambda s: a @ np.cos(k * s) + b @ np.sin(k * s),
                lambda s: (-a[:, None] * k * np.sin(k * s) + b[:, None] * k * np.cos(k * s)).sum(0))
    if measure == "legs":  # exact for any smooth f
        return (lambda s: np.cos(3 * s) + s ** (N + 2), lambda s: -3 * np.sin(3 * s) + (N + 2) * s ** (N + 1))
    p = Polynomial(rng.standard_normal(N + 3 if measure == "lagt" else N) / 2)
    if measure == "lagt" and convention == "s4":  # f = e^(s/2) p(s) keeps Gauss-Laguerre exact
        return (lambda s: np.exp(s / 2) * p(s), lambda s: np.exp(s / 2) * (p(s) / 2 + p.deriv()(s)))
    return p, p.deriv()  # lagt: exact for any f; legt: degree < N


@pytest.mark.parametrize("measure,convention,N", cases([1, 4, 9, 16], hippo.MEASURES))
def test_transition_is_the_exact_projection_ode(measure, convention, N):
    """dc/dt of the true projection equals A c + B f(t) (legs at t = 1, where 1/t = 1)."""
    A, B = (x.numpy() for x in transition(measure, N, convention=convention))
    assert A.dtype == np.float64 and A.shape == (N, N) and B.shape == (N,)
    f, df = exact_input(measure, convention, N, np.random.default_rng(N))
    t = 1.0 if measure in ("legs", "lagt") else 0.7
    c, dc = projection_and_derivative(measure, convention, N, f, df, t)
    np.testing.assert_allclose(A @ c + B * f(t), dc, atol=1e-9 * (1 + np.abs(dc).max()))


def test_legs_entries():
    A, B = transition("legs", 3)
    r = np.sqrt([1.0, 3.0, 5.0])
    expect = np.array([[-1, 0, 0], [-r[1] * r[0], -2, 0], [-r[2] * r[0], -r[2] * r[1], -3]])
    np.testing.assert_allclose(A.numpy(), expect, rtol=1e-15)
    np.testing.assert_allclose(B.numpy(), r, rtol=1e-15)
    for convention in hippo.CONVENTIONS:
        assert np.array_equal(transition("legs", 5, convention=convention)[0].numpy(), transition("legs", 5)[0].numpy())


@pytest.mark.parametrize("N", [4, 8, 16])
def test_legs_reconstructs_polynomials_of_degree_below_N(N):
    """For f(s) = s^j the LegS state at t is t^j (jI - A)^-1 B; sum_n c_n g_n(s/t) gives f back on [0, t]."""
    A, B = (x.numpy() for x in transition("legs", N))
    s = np.linspace(0, 1, 57)
    G = legendre_basis(s, N)[0]
    for j in range(N):
        np.testing.assert_allclose(G @ np.linalg.solve(j * np.eye(N) - A, B), s ** j, atol=1e-12)
    assert np.abs(G @ np.linalg.solve(N * np.eye(N) - A, B) - s ** N).max() > 1e-10  # degree N: approximated


@pytest.mark.parametrize("convention", hippo.CONVENTIONS)
@pytest.mark.parametrize("measure,rank", [("legs", 1), ("legs", 3), ("legt", 2), ("lagt", 1), ("fourier", 1)])
def test_rank_correction_makes_A_scalar_plus_skew(measure, rank, convention):
    N = 10
    A = transition(measure, N, convention=convention)[0].numpy()
    P = rank_correction(measure, N, rank, convention=convention).numpy()
    own = 2 if measure == "legt" else 1
    assert P.shape == (rank, N) and np.abs(P[:own]).sum(1).min() > 0 and not P[own:].any()
    AN = A + P.T @ P
    sym = (AN + AN.T) / 2
    np.testing.assert_allclose(sym, np.eye(N) * np.trace(AN) / N, atol=1e-12)
    np.testing.assert_allclose(AN @ AN.T, AN.T @ AN, atol=1e-9 * np.abs(AN).max() ** 2)
