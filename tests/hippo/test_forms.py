"""NPLR forms reconstruct A with a unitary V and conjugate-paired columns; the diagonal inits are their formulas."""
import math

import numpy as np
import pytest
import scipy.linalg
import torch

from ssm import hippo
from ssm.hippo import diag_init, nplr, rank_correction, transition

CASES = [("legs", 1), ("legs", 3), ("legt", 2), ("lagt", 1), ("fourier", 1)]


@pytest.mark.parametrize("convention", hippo.CONVENTIONS)
@pytest.mark.parametrize("measure,rank", CASES)
@pytest.mark.parametrize("N", [1, 2, 7, 16, 64])
def test_nplr_reconstructs_A(measure, N, rank, convention):
    if measure == "fourier" and convention == "s4" and N % 2:
        with pytest.raises(ValueError, match="N must be even"):
            nplr(measure, N, rank, convention=convention)
        return
    Lam, P, B, V = nplr(measure, N, rank, convention=convention)
    A, BH = (x.numpy() for x in transition(measure, N, convention=convention))
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


@pytest.mark.parametrize("measure,convention,re", [("legs", "unit", -0.5), ("lagt", "unit", -0.5),
                                                   ("legt", "unit", 0.0), ("fourier", "unit", 0.0),
                                                   ("lagt", "s4", 0.0), ("legt", "s4", 0.0)])
def test_normal_part_real_part(measure, convention, re):
    Lam = nplr(measure, 32, rank=2, convention=convention)[0].numpy()
    np.testing.assert_allclose(Lam.real, re, atol=1e-12)


def test_s4_fourier_normal_part_is_half_the_unit_frequencies():
    """Window 2 halves every frequency 2 pi k of the unit window; both keep the pair of zeros."""
    unit = np.sort(nplr("fourier", 9)[0].numpy().imag)
    s4 = np.sort(nplr("fourier", 10, convention="s4")[0].numpy().imag)
    np.testing.assert_allclose(s4[s4 > 1e-9], unit[unit > 1e-9] / 2, rtol=1e-12)
    assert (np.abs(s4) < 1e-9).sum() == 2


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
    assert abs((Bs.abs() ** 2).mean() - 1) < 0.6  # E|B|^2 = 1


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
