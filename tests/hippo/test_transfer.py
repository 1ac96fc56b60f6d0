"""Transfer functions against dense solves and Sherman-Morrison; the frequency grid and the zoom catch narrow peaks."""
import math

import numpy as np
import torch

from ssm.hippo import frequency_grid, nplr, sup_on_axis, transfer_evaluator, transfer_function, transition


def test_transfer_function_matches_solve_and_diagonal():
    rng = np.random.default_rng(0)
    N = 6
    A = rng.standard_normal((N, N)) + 1j * rng.standard_normal((N, N))
    B, C = rng.standard_normal(N), rng.standard_normal(N) + 1j
    s = 1j * np.linspace(-20, 20, 11) + 0.3
    expect = [C @ np.linalg.solve(z * np.eye(N) - A, B) for z in s]
    G = transfer_function(A, B, C, s)
    assert G.dtype == torch.complex128 and G.shape == (11,)
    np.testing.assert_allclose(G.numpy(), expect, rtol=1e-12)
    lam = rng.standard_normal(N) + 1j * rng.standard_normal(N)
    np.testing.assert_allclose(transfer_function(torch.from_numpy(lam), B, C, s).numpy(),
                               transfer_function(np.diag(lam), B, C, s).numpy(), rtol=1e-12)
    np.testing.assert_allclose(transfer_evaluator(A, B, C)(s), expect, rtol=1e-12)
    assert transfer_function(A, B, C, 2.0 + 1j).shape == (1,)


def legs_by_sherman_morrison(N, s):
    """G_H(s) of LegS (B = B_H/||B_H||, C = B^T) on the unitary NPLR form: diagonal plus rank one."""
    _, B = transition("legs", N)
    B = (B / B.norm()).numpy()
    Lam, P, _, V = (x.numpy() for x in nplr("legs", N))
    R = 1 / (s[:, None] - Lam)
    b, c, q = V.conj().T @ B, B @ V, P[0]
    return (R * c * b).sum(1) - (R * c * q).sum(1) * (R * q.conj() * b).sum(1) / (1 + (R * q.conj() * q).sum(1))


def test_transfer_function_of_legs_matches_sherman_morrison():
    """The Schur solve of the very non-normal A_H agrees with the unitary NPLR form."""
    N = 32
    A, B = (x.numpy() for x in transition("legs", N))
    B = B / np.linalg.norm(B)
    s = 1j * np.concatenate([-np.logspace(-2, 5, 300), np.logspace(-2, 5, 300), [N * N / math.pi]])
    np.testing.assert_allclose(transfer_function(A, B, B, s).numpy(), legs_by_sherman_morrison(N, s),
                               atol=1e-12, rtol=1e-9)


def test_frequency_grid_holds_every_pole_and_its_half_width():
    N = 8
    poles = np.array([-0.5 + 3.3j, -0.5 - 77.7j, -2.0])
    w = frequency_grid(N, poles)
    assert np.all(np.diff(w) > 0) and w[0] >= 0 and w[-1] >= 30 * N * N
    for p in poles:
        for x in (abs(p.imag), abs(p.imag) + abs(p.real) / 2):
            assert np.isclose(w, x, rtol=0, atol=1e-12).any()


def test_sup_on_axis_zooms_into_a_peak_between_samples():
    """A resonance of width 1e-3 at omega = 10.0537 (between samples): the zoom finds its height 1/a."""
    a, w0 = 1e-3, 10.0537
    gap = lambda s: np.abs(1 / (s - (-a + 1j * w0)))
    omega = np.linspace(0, 20, 201)  # spacing 0.1: the nearest samples see < 2.5 % of the height
    value, at = sup_on_axis(gap, omega, rounds=6)
    assert gap(1j * omega).max() < 0.025 / a
    assert value > 0.99 / a and abs(at - w0) < 1e-4


def test_diagonal_init_spike_is_caught_by_the_pole_grid_but_not_by_a_log_grid():
    """S4D-LegS (all N modes, E = p p^T) departs from G_H by ~0.8 near N^2/pi, in a resonance of width ~1/2."""
    N = 32
    A, B = (x.numpy() for x in transition("legs", N))
    B = B / np.linalg.norm(B)
    Lam, _, _, V = (x.numpy() for x in nplr("legs", N))
    G_H, G_D = transfer_evaluator(A, B, B), transfer_evaluator(Lam, V.conj().T @ B, B @ V)
    gap = lambda s: np.abs(G_D(s) - G_H(s))
    spike, at = sup_on_axis(gap, frequency_grid(N, Lam))
    assert spike > 0.79 and abs(abs(at) / (N * N / math.pi) - 1) < 0.01
    assert np.abs(G_H(1j * frequency_grid(N, Lam))).max() < 0.03
    log_only = np.logspace(-2, math.log10(30 * N * N), 200)
    assert gap(1j * log_only).max() < 0.5 * spike
