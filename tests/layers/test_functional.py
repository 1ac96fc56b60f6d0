"""Each equation of ssm.layers.functional against its oracle: dense matrices, the naive unrolled recurrence,
torch's own cells, and gradcheck in float64."""
from __future__ import annotations

import pytest
import torch
from torch.autograd import gradcheck

from layer_helpers import rel
from ssm.layers import functional as Fn

torch.manual_seed(0)
f64, c128 = torch.float64, torch.complex128


def crandn(*shape):
    return torch.randn(*shape, dtype=c128)


def stable_lambda(*shape):
    """Eigenvalues with negative real parts."""
    return torch.complex(-0.2 - torch.rand(*shape, dtype=f64), 3 * torch.randn(*shape, dtype=f64))


# --- discretization ------------------------------------------------------------------------------------------
def test_zoh_equals_augmented_matrix_exponential():
    """expm([[A, B], [0, 0]] dt) = [[Abar, Bbar], [0, 1]]: an oracle independent of A^-1."""
    A, B, dt = torch.randn(5, 5, dtype=f64) - 2 * torch.eye(5, dtype=f64), torch.randn(5, dtype=f64), torch.tensor(0.3)
    M = torch.zeros(6, 6, dtype=f64)
    M[:5, :5], M[:5, 5] = A, B
    E = torch.linalg.matrix_exp(dt * M)
    Abar, Bbar = Fn.discretize_dense(A, B, dt.to(f64), "zoh")
    assert rel(Abar, E[:5, :5]) < 1e-12 and rel(Bbar, E[:5, 5]) < 1e-12
    lam, b = stable_lambda(4), crandn(4)
    Ad, Bd = Fn.discretize(lam, b, torch.tensor(0.3, dtype=f64), "zoh")
    Adense, Bdense = Fn.discretize_dense(torch.diag(lam), b, torch.tensor(0.3, dtype=f64), "zoh")
    assert rel(Ad, torch.diagonal(Adense)) < 1e-12 and rel(Bd, Bdense) < 1e-12


def test_bilinear_solves_the_trapezoid_rule():
    """(I - dt/2 A) Abar = I + dt/2 A and (I - dt/2 A) Bbar = dt B, dense and diagonal."""
    A, B, dt = torch.randn(5, 5, dtype=f64), torch.randn(5, dtype=f64), torch.tensor(0.2, dtype=f64)
    Abar, Bbar = Fn.discretize_dense(A, B, dt, "bilinear")
    eye = torch.eye(5, dtype=f64)
    assert rel((eye - dt / 2 * A) @ Abar, eye + dt / 2 * A) < 1e-12 and rel((eye - dt / 2 * A) @ Bbar, dt * B) < 1e-12
    lam, b = stable_lambda(4), crandn(4)
    Ad, Bd = Fn.discretize(lam, b, dt, "bilinear")
    assert rel((1 - dt / 2 * lam) * Ad, 1 + dt / 2 * lam) < 1e-12 and rel((1 - dt / 2 * lam) * Bd, dt * b) < 1e-12


@pytest.mark.parametrize("method", ["zoh", "bilinear"])
def test_log_abar_and_input_factor(method):
    lam, dt = stable_lambda(3, 4), torch.rand(3, 1, dtype=f64)
    Abar, Bbar = Fn.discretize(lam, torch.ones_like(lam), dt, method)
    assert rel(torch.exp(Fn.log_abar(lam, dt, method)), Abar) < 1e-12
    assert rel(Fn.input_factor(lam, dt, method), Bbar) < 1e-12
    assert gradcheck(lambda l, d: torch.view_as_real(Fn.discretize(l, torch.ones_like(l), d, method)[1]),
                     (lam.clone().requires_grad_(), dt.clone().requires_grad_()))


# --- diagonal SSM --------------------------------------------------------------------------------------------
def naive_diagonal(u, Abar, Bbar, C, x0=None, scale=2.0):
    """Unrolled x_l = Abar x_{l-1} + Bbar u_l, y_l = scale Re(C x_l): u (B, H, L) -> y (B, H, L), every x."""
    x = torch.zeros(u.shape[0], *Abar.shape, dtype=c128) if x0 is None else x0
    ys, xs = [], []
    for l in range(u.shape[-1]):
        x = Abar * x + Bbar * u[..., l, None]
        xs.append(x)
        ys.append(scale * (C * x).sum(-1).real)
    return torch.stack(ys, -1), torch.stack(xs, -1)


def diag_case(H=3, N=4, L=23, B=2):
    lam, dt = stable_lambda(H, N), 0.1 * torch.rand(H, 1, dtype=f64) + 0.05
    Abar, Bbar = Fn.discretize(lam, crandn(H, N), dt, "zoh")
    return Fn.log_abar(lam, dt), Abar, Bbar, crandn(H, N), torch.randn(B, H, L, dtype=f64)


def test_vandermonde_kernel_is_the_impulse_response():
    log_A, Abar, Bbar, C, u = diag_case()
    L = u.shape[-1]
    impulse = torch.zeros(1, 3, L, dtype=f64)
    impulse[..., 0] = 1.0
    y, _ = naive_diagonal(impulse, Abar, Bbar, C)
    assert rel(Fn.vandermonde_kernel(C * Bbar, log_A, L), y[0]) < 1e-12
    assert gradcheck(lambda W, la: Fn.vandermonde_kernel(W, la, 9),
                     ((C * Bbar).requires_grad_(), log_A.clone().requires_grad_()), fast_mode=True)


def test_diagonal_final_state_and_initial_response_equal_the_recurrence():
    log_A, Abar, Bbar, C, u = diag_case()
    x0 = crandn(2, 3, 4)
    y, xs = naive_diagonal(u, Abar, Bbar, C, x0)
    assert rel(Fn.diagonal_final_state(u, log_A, Bbar, x0), xs[..., -1]) < 1e-12
    y0, _ = naive_diagonal(torch.zeros_like(u), Abar, Bbar, C, x0)
    assert rel(Fn.diagonal_initial_response(x0, log_A, C, u.shape[-1]), y0) < 1e-12
    lengths = torch.tensor([7, 0])
    got = Fn.diagonal_final_state(u, log_A, Bbar, x0, lengths)
    assert rel(got[0], xs[0, ..., 6]) < 1e-12 and rel(got[1], x0[1]) < 1e-15
    step = Fn.diagonal_step(x0, u[..., 0], Abar, Bbar)
    assert rel(Fn.diagonal_readout(step, C), y[..., 0]) < 1e-12
    assert gradcheck(lambda u, la, b: torch.view_as_real(Fn.diagonal_final_state(u, la, b, None, lengths)),
                     (u[..., :6].clone().requires_grad_(), log_A.clone().requires_grad_(),
                      Bbar.clone().requires_grad_()), fast_mode=True)


def test_diagonal_transfer_is_the_resolvent():
    lam, CB = stable_lambda(2, 3), crandn(2, 3)
    s = torch.tensor([0.0, 1j, 2.5 - 1j], dtype=c128)
    G = Fn.diagonal_transfer(CB, lam, s, conj=False)
    for h in range(2):
        A = torch.diag(torch.cat([lam[h], lam[h].conj()]))
        cb = torch.cat([CB[h], CB[h].conj()])
        ref = torch.stack([(cb * torch.linalg.solve(z * torch.eye(6, dtype=c128) - A, torch.ones(6, dtype=c128))).sum()
                           for z in s]) / 2
        assert rel(G[h], ref) < 1e-12


# --- DPLR (S4) ---------------------------------------------------------------------------------------------------
def dplr_case(H=2, M=3, r=1):
    return stable_lambda(H, M), 0.5 * crandn(r, H, M), crandn(H, M), 0.1 * torch.rand(H, 1, dtype=f64) + 0.05


def test_woodbury_is_the_resolvent_of_the_low_rank_update():
    """c (zI - A)^-1 b for A = Lambda - P P* equals k00 - k01 (I + k11)^-1 k10 with Cauchy sums k_ab."""
    lam, P, b, _ = dplr_case(H=1, M=4, r=2)
    lam, P, b, c = Fn.full(lam[0]), Fn.full(P[:, 0]), Fn.full(b[0]), crandn(8)
    z = torch.tensor(0.3 + 0.7j, dtype=c128)
    R = 1 / (z - lam)
    k = lambda a, bb: (a.conj() * R * bb).sum(-1)  # noqa: E731
    k00 = k(c, b).reshape(1, 1)
    k01 = torch.stack([k(c, P[i]) for i in range(2)]).reshape(1, 2)
    k10 = torch.stack([k(P[i], b) for i in range(2)]).reshape(2, 1)
    k11 = torch.stack([torch.stack([k(P[i], P[j]) for j in range(2)]) for i in range(2)])
    A = torch.diag(lam) - P.T @ P.conj()
    ref = c.conj() @ torch.linalg.solve(z * torch.eye(8, dtype=c128) - A, b)
    assert rel(Fn.woodbury(k00, k01, k10, k11)[0, 0], ref) < 1e-12
    assert rel(Fn.woodbury(k00, k01[:, :1], k10[:1], k11[:1, :1])[0, 0],
               c.conj() @ torch.linalg.solve(z * torch.eye(8, dtype=c128) - torch.diag(lam) + P[:1].T @ P[:1].conj(),
                                             b)) < 1e-12


@pytest.mark.parametrize("r", [1, 2])
def test_dplr_kernel_equals_dense_powers(r):
    lam, P, B, dt = dplr_case(r=r)
    Ct, L = crandn(1, 2, 3), 16
    Abar, Bbar = Fn.discretize_dense(Fn.dplr_dense(lam, P), Fn.full(B), dt[:, 0], "bilinear")
    eye = torch.eye(6, dtype=c128)
    C = torch.linalg.solve(eye - torch.linalg.matrix_power(Abar, L), Fn.full(Ct[0]).unsqueeze(-2), left=False)
    ref = torch.stack([(C[:, 0] * (torch.linalg.matrix_power(Abar, l) @ Bbar.unsqueeze(-1))[..., 0]).sum(-1).real
                       for l in range(L)], -1)
    K = Fn.dplr_kernel(lam, P, B, Ct, dt, L, backend="torch")
    assert K.shape == (1, 2, L) and rel(K[0], ref) < 1e-10
    f = lambda lam, P, B, Ct: Fn.dplr_kernel(lam, P, B, Ct, dt, 8, backend="torch")  # noqa: E731
    assert gradcheck(f, tuple(t.clone().requires_grad_() for t in (lam, P, B, Ct)), fast_mode=True)


@pytest.mark.parametrize("r", [1, 2])
def test_bilinear_dplr_and_step_equal_dense_discretization(r):
    lam, P, B, dt = dplr_case(r=r)
    Abar, Bbar = Fn.bilinear_dplr(lam, P, B, dt)
    Aref, Bref = Fn.discretize_dense(Fn.dplr_dense(lam, P), Fn.full(B), dt[:, 0], "bilinear")
    assert rel(Abar, Aref) < 1e-12 and rel(Bbar, Bref) < 1e-12
    x, u = crandn(4, 2, 3), torch.randn(4, 2, dtype=f64)
    w = Fn.woodbury_setup(lam, P, dt)
    step = Fn.dplr_step(x, u, lam, P, B, dt, w["D"], w["G_inv"])
    ref = (Aref @ Fn.full(x).unsqueeze(-1))[..., 0] + Bref * u.unsqueeze(-1)
    assert rel(step, ref[..., :3]) < 1e-12


# --- dense SSM: Krylov and the final state --------------------------------------------------------------------
def test_real_form_acts_like_the_full_complex_matrix():
    lam, P, B, dt = dplr_case()
    Abar, _ = Fn.bilinear_dplr(lam, P, B, dt)
    z = crandn(5, 2, 3)
    full = (Abar @ Fn.full(z).unsqueeze(-1))[..., 0]
    got = Fn.real_form(Abar) @ Fn.real_vector(z).unsqueeze(-1)
    assert rel(got, Fn.real_vector(full[..., :3]).unsqueeze(-1)) < 1e-12
    assert torch.equal(Fn.complex_vector(Fn.real_vector(z)), z)


def test_krylov_is_the_matrix_powers():
    A, b = torch.randn(2, 4, 4, dtype=f64) / 2, torch.randn(2, 4, dtype=f64)
    K = Fn.krylov(b, Fn.squarings(A, 3), 8)
    ref = torch.stack([(torch.linalg.matrix_power(A, t) @ b.unsqueeze(-1))[..., 0] for t in range(8)], -1)
    assert rel(K, ref) < 1e-12


@pytest.mark.parametrize("complex_", [False, True])
@pytest.mark.parametrize("L,chunk", [(1, None), (23, None), (23, 4), (64, 8), (37, 64)])
def test_dense_final_state_equals_the_unrolled_recurrence(complex_, L, chunk):
    dt_ = c128 if complex_ else f64
    A = (torch.randn(3, 5, 5, dtype=dt_) / 3 + 0.5 * torch.eye(5, dtype=dt_))
    Bb, u, x0 = torch.randn(3, 5, dtype=dt_), torch.randn(2, 3, L, dtype=f64), torch.randn(2, 3, 5, dtype=dt_)
    xs, x = [], x0
    for l in range(L):
        x = (A @ x.unsqueeze(-1))[..., 0] + Bb * u[..., l, None]
        xs.append(x)
    assert rel(Fn.dense_final_state(A, Bb, u, x0, chunk=chunk), xs[-1]) < 1e-11
    assert rel(Fn.dense_final_state(A, Bb, u, chunk=chunk),
               Fn.dense_final_state(A, Bb, u, torch.zeros_like(x0), chunk=chunk)) < 1e-12
    lengths = torch.tensor([L, 0]) if L == 1 else torch.tensor([L // 2, L - 1])
    got = Fn.dense_final_state(A, Bb, u, x0, lengths, chunk=chunk)
    for b, n in enumerate(lengths.tolist()):
        assert rel(got[b], xs[n - 1][b] if n else x0[b]) < 1e-11


def test_dense_final_state_gradcheck():
    A, Bb = torch.randn(2, 3, 3, dtype=f64) / 3, torch.randn(2, 3, dtype=f64)
    u, x0 = torch.randn(2, 2, 11, dtype=f64), torch.randn(2, 2, 3, dtype=f64)
    f = lambda A, Bb, u, x0: Fn.dense_final_state(A, Bb, u, x0, torch.tensor([11, 5]), chunk=4)  # noqa: E731
    assert gradcheck(f, tuple(t.clone().requires_grad_() for t in (A, Bb, u, x0)), fast_mode=True)


# --- S5 ----------------------------------------------------------------------------------------------------------
def test_s5_scan_and_step_equal_the_recurrence():
    Lb, Bb, Ct = torch.exp(stable_lambda(4) * 0.1), crandn(4, 3), crandn(3, 4)
    u, x0 = torch.randn(2, 9, 3, dtype=f64), crandn(2, 4)
    mask = torch.ones(2, 9, dtype=torch.bool)
    mask[1, 5:] = False
    x, xs = x0, []
    for l in range(9):
        x = Lb * x + (u[:, l].to(c128) @ Bb.T) * mask[:, l, None]
        xs.append(x)
    ref = torch.stack(xs, 1)
    assert rel(Fn.s5_scan(Lb, Bb, u, x0, mask, backend="ref"), ref) < 1e-12
    assert rel(Fn.s5_step(x0, u[:, 0], Lb, Bb), ref[:, 0]) < 1e-12
    assert rel(Fn.s5_readout(ref, Ct, True), 2 * (ref @ Ct.T).real) < 1e-12
    back = Fn.s5_scan(Lb, Bb, u, None, reverse=True, backend="ref")
    x = torch.zeros_like(x0)
    for l in range(8, -1, -1):
        x = Lb * x + u[:, l].to(c128) @ Bb.T
    assert rel(back[:, 0], x) < 1e-12


# --- RNN cells ---------------------------------------------------------------------------------------------------
def test_gru_and_lstm_cells_equal_torch_cells():
    torch.manual_seed(1)
    gru, lstm = torch.nn.GRUCell(3, 4).double(), torch.nn.LSTMCell(3, 4).double()
    x, h, c = torch.randn(5, 3, dtype=f64), torch.randn(5, 4, dtype=f64), torch.randn(5, 4, dtype=f64)
    g = x @ gru.weight_ih.T + gru.bias_ih
    got = Fn.gru_cell(g, h, Fn.lowrank_matvec(h, gru.weight_hh, None, None), gru.bias_hh)
    assert rel(got, gru(x, h)) < 1e-12
    g = x @ lstm.weight_ih.T + lstm.bias_ih + h @ lstm.weight_hh.T + lstm.bias_hh
    hc = Fn.lstm_cell(g, c)
    ref = lstm(x, (h, c))
    assert rel(hc[0], ref[0]) < 1e-12 and rel(hc[1], ref[1]) < 1e-12


def test_lowrank_matvec_and_reset_before_gru():
    torch.manual_seed(2)
    n, d = 4, 2
    Lf, R, D = torch.randn(3 * n, d, dtype=f64), torch.randn(d, n, dtype=f64), torch.randn(3 * n, dtype=f64)
    h = torch.randn(5, n, dtype=f64)
    W = Lf @ R + torch.cat([torch.diag(D[i * n:(i + 1) * n]) for i in range(3)])
    assert rel(Fn.lowrank_matvec(h, R, Lf, D), h @ W.T) < 1e-12
    g, bh = torch.randn(5, 3 * n, dtype=f64), torch.randn(3 * n, dtype=f64)
    Wr, Wz, Wc = W.chunk(3)
    r, z = torch.sigmoid(g[:, :n] + h @ Wr.T + bh[:n]), torch.sigmoid(g[:, n:2 * n] + h @ Wz.T + bh[n:2 * n])
    ref = (1 - z) * torch.tanh(g[:, 2 * n:] + (r * h) @ Wc.T + bh[2 * n:]) + z * h
    got = Fn.gru_cell_reset_before(g, h, h @ W[:2 * n].T, bh, Wc, None, None)
    assert rel(got, ref) < 1e-12
    assert gradcheck(lambda h, Lf: Fn.lowrank_matvec(h, R, Lf, D), (h.requires_grad_(), Lf.requires_grad_()))


@pytest.mark.parametrize("mode", ["default", "no_gate", "pure"])
def test_cfc_update_is_the_closed_form(mode):
    torch.manual_seed(3)
    n, ts = 3, torch.rand(4, 1, dtype=f64) + 0.5
    z = torch.randn(4, (1 if mode == "pure" else 4) * n, dtype=f64)
    A, w_tau = torch.randn(n, dtype=f64), torch.randn(n, dtype=f64)
    if mode == "pure":
        ref = -A * torch.exp(-ts * (w_tau.abs() + z.abs())) * z + A
    else:
        f1, f2, a, b = z.chunk(4, -1)
        s = 1 / (1 + torch.exp(-(a * ts + b)))
        gated = torch.tanh(f1) * (1 - s) if mode == "default" else torch.tanh(f1)
        ref = gated + s * torch.tanh(f2)
    assert rel(Fn.cfc_update(z, ts, mode, A, w_tau), ref) < 1e-12
    assert gradcheck(lambda z, ts: Fn.cfc_update(z, ts, mode, A, w_tau), (z.requires_grad_(), ts.requires_grad_()))
    assert rel(Fn.lecun_tanh(z), 1.7159 * torch.tanh(0.666 * z)) < 1e-15
