"""Fidelity to the official code: S4's `convention="official"` init, the DSS-softmax scale at init, and the numerics of
DSS-softmax at long l_max and S4-PTD at steps up to dt = 1 (the published ListOps range). Every oracle is written
here from the formulas: dense matrices, explicit powers, unrolled recurrences."""
from __future__ import annotations

import copy

import pytest
import torch

from layer_helpers import rel, run_steps
from ssm import hippo
from ssm.layers import build
from ssm.layers.s4d import _inv_geometric_sum

f64, c128 = torch.float64, torch.complex128


def full(x):
    return torch.cat([x, x.conj()], -1)


def s4(convention, H=3, N=64, seed=0, **kw):
    torch.manual_seed(seed)
    return build("s4", d_model=H, d_state=N, convention=convention, output="none", activation=None, **kw)


def dense_bilinear(layer):
    """Abar (H, N, N), Bbar (H, N) from Lambda, P, B, dt by explicit inverses over all N states (float64)."""
    p = {k: v.detach().to(c128 if v.is_complex() else f64) for k, v in layer.ssm_params().items()}
    Pf = full(p["P"])
    A = torch.diag_embed(full(p["Lambda"])) - torch.einsum("rhn,rhm->hnm", Pf, Pf.conj())
    dt = p["dt"].unsqueeze(-1)
    inv = torch.linalg.inv(torch.eye(A.shape[-1], dtype=c128) - dt / 2 * A)
    Abar = inv @ (torch.eye(A.shape[-1], dtype=c128) + dt / 2 * A)
    return Abar, (inv @ full(p["B"]).unsqueeze(-1)).squeeze(-1) * p["dt"]


def naive_kernel(C, Abar, Bbar, L):
    """K_l = C Abar^l Bbar by repeated products: C (H, N), Abar (H, N, N), Bbar (H, N) -> (H, L) real."""
    out, x = [], Bbar
    for _ in range(L):
        out.append((C * x).sum(-1).real)
        x = torch.einsum("hnm,hm->hn", Abar, x)
    return torch.stack(out, -1)


# --- S4, convention="official" ------------------------------------------------------------------------------------
def test_official_clip_changes_exactly_the_entries_with_large_imaginary_B():
    ours, official = s4("ssm"), s4("official")
    B_ours, B_off = torch.view_as_complex(ours.B)[0], torch.view_as_complex(official.B)[0]
    big = B_ours.imag.abs() > 2
    assert int(big.sum()) == 11 and B_ours.numel() == 32  # N = 64: 11 of the 32 stored entries
    assert torch.equal(B_off != B_ours, big)
    assert torch.equal(B_off.real, B_ours.real)
    assert torch.equal(B_off.imag[big], 2 * B_ours.imag[big].sign())
    nplr_B = hippo.nplr("legs", 64)[2][:32]  # the unclipped B = V* B_H of the NPLR form
    assert rel(B_ours.to(c128), nplr_B) < 1e-6


def test_official_init_draws_C_and_stores_Ct():
    ours, official = s4("ssm", l_max=1024), s4("official", l_max=1024)  # same seed: the same draw of C
    drawn = torch.view_as_complex(ours.C.detach()).to(c128)
    Abar, _ = dense_bilinear(official)
    AL = torch.linalg.matrix_power(Abar, 1024)
    C_eff = torch.einsum("chn,hnm->chm", full(torch.view_as_complex(official.C.detach()).to(c128)),
                         torch.linalg.inv(torch.eye(64, dtype=c128) - AL))[..., :32]
    assert rel(C_eff, drawn) < 1e-5  # float32 storage of Ct
    assert rel(official.dense()[2][..., :32].detach().to(c128), drawn) < 1e-4  # the layer's own C agrees


@pytest.mark.parametrize("L", [64, 150])  # at l_max, and longer (m 2^k nodes)
def test_official_kernel_equals_dense_powers_with_the_drawn_C(L):
    layer = s4("official", l_max=64, dt_min=1e-3, dt_max=1e-1).to(f64)
    torch.manual_seed(1)
    C = torch.randn(1, 3, 32, dtype=c128)
    layer.set_output_matrix(C)
    Abar, Bbar = dense_bilinear(layer)
    K = layer.kernel(L)[0].detach()
    assert rel(K, naive_kernel(full(C[0]), Abar, Bbar, L)) < 1e-10


def test_official_convolution_step_and_naive_recurrence_agree():
    layer = s4("official", H=3, N=16, l_max=32).to(f64)
    torch.manual_seed(2)
    drawn = torch.randn(1, 3, 8, dtype=c128)
    layer.set_output_matrix(drawn)
    C = full(drawn[0])
    Abar, Bbar = dense_bilinear(layer)
    x = torch.randn(2, 80, 3, dtype=f64)
    h, ys = torch.zeros(2, 3, 16, dtype=c128), []
    for t in range(x.shape[1]):
        h = torch.einsum("hnm,bhm->bhn", Abar, h) + Bbar * x[:, t, :, None]
        ys.append((C * h).sum(-1).real + layer.D.detach() * x[:, t])
    y_naive = torch.stack(ys, 1)
    y_conv, s_conv = layer(x)
    y_step, s_step = run_steps(layer, x)
    assert rel(y_conv.detach(), y_naive) < 1e-10 and rel(y_step.detach(), y_naive) < 1e-10
    assert rel(s_conv.detach(), s_step.detach()) < 1e-10


def test_set_output_matrix_rejects_a_wrong_shape():
    layer = s4("official", N=8)
    with pytest.raises(ValueError, match=r"C must be a complex tensor of shape \(1, 3, 4\)"):
        layer.set_output_matrix(torch.randn(1, 3, 5, dtype=torch.complex64))
    with pytest.raises(ValueError, match="convention must be one of"):
        s4("paper")


# --- DSS-softmax: the official scale at init ------------------------------------------------------------------------
def official_dss_kernel(W, Lambda, dt, L):
    """The official DSS-softmax kernel: Re sum_n W_n (exp(x) - 1) / (Lambda (exp(L x) - 1)) exp(l x), x = dt Lambda,
    with the exponent shifted by (L - 1) x for Re(Lambda) > 0; the real part taken once."""
    x = dt * Lambda  # (H, M)
    pos = (Lambda.real > 0).to(f64)
    s = -2 * pos + 1  # x of the states with Re > 0 flipped for num/den
    P = x.unsqueeze(-1) * torch.arange(L, dtype=f64) - (x * pos * (L - 1)).unsqueeze(-1)
    num, den = torch.exp(x * s) - 1, torch.exp(x * s * L) - 1
    return torch.einsum("chn,hnl->chl", W * num / (den * Lambda), torch.exp(P)).real


@pytest.mark.parametrize("flip", [False, True])  # at init, and with some Re(Lambda) > 0
def test_dss_softmax_kernel_equals_the_official_formula_at_init(flip):
    L = 256
    torch.manual_seed(0)
    layer = build("dss", d_model=4, d_state=16, variant="softmax", l_max=L).to(f64)
    if flip:
        with torch.no_grad():
            layer.A_real[..., ::2] *= -1  # real_transform "none": Re(Lambda) = -A_real
    W = torch.view_as_complex(layer.C.detach())
    ours = layer.kernel(L).detach()
    official = official_dss_kernel(2 * W, layer.Lambda().detach(), layer.dt().detach(), L)
    assert rel(ours, official) < 1e-10

    # W = C B / 2 with C standard complex normal (E|C|^2 = 1) and B the DSS init: the official draw, halved
    torch.manual_seed(0)
    big = build("dss", d_model=64, d_state=64, variant="softmax")
    C = 2 * torch.view_as_complex(big.C.detach()).to(c128) / hippo.diag_init("dss", 64)[1]
    assert abs(C.abs().pow(2).mean().item() - 1) < 0.1  # 2048 draws: 4.5 standard errors; 4 if W were not halved


# --- numerics at long l_max and large steps --------------------------------------------------------------------------
def test_inv_geometric_sum_has_finite_gradients_where_the_other_branch_would_overflow():
    x = torch.tensor([-0.05 + 1j, 0.05 - 2j, -1e-4 + 0.5j], dtype=c128, requires_grad=True)
    L = 16384.0  # (L - 1) |Re x| = 819 > 709: exp of it overflows even in float64
    r = _inv_geometric_sum(x, L)
    g, = torch.autograd.grad(r.abs().sum(), x)
    xd = x.detach()
    shift = torch.where(xd.real > 0, (L - 1) * xd, 0)  # 1 / sum_l exp(l x), each term scaled by exp(-shift)
    explicit = torch.exp(-shift) / torch.exp(xd.unsqueeze(-1) * torch.arange(16384, dtype=f64) - shift[:, None]).sum(-1)
    assert torch.isfinite(g).all() and rel(r.detach(), explicit) < 1e-9
    assert torch.autograd.gradcheck(lambda z: _inv_geometric_sum(z, L), (x,))


def grads(layer, x):
    layer.zero_grad()
    y, _ = layer(x)
    y.pow(2).sum().backward()
    return y.detach(), {n: p.grad.detach().clone() for n, p in layer.named_parameters()}


def test_dss_softmax_gradients_at_l_max_16384_are_finite_and_equal_float64():
    torch.manual_seed(0)
    layer = build("dss", d_model=16, d_state=64, variant="softmax", l_max=16384, dt_min=0.05, dt_max=0.1)
    assert (16383 * layer.step_sizes() * 0.5).max() > 709  # the regime where exp((L-1)|x|) overflows float64
    x = torch.randn(1, 32, 16)
    y32, g32 = grads(layer, x)
    y64, g64 = grads(copy.deepcopy(layer).to(f64), x.to(f64))
    assert all(torch.isfinite(g).all() for g in g32.values())
    assert rel(y32.to(f64), y64) < 1e-5
    for name in g32:
        assert rel(g32[name].to(f64), g64[name]) < 1e-4, name


def test_s4ptd_with_steps_up_to_1_is_finite_and_equals_float64_and_the_recurrence():
    torch.manual_seed(0)
    layer = build("s4-ptd", d_model=16, d_state=64, dt_min=0.001, dt_max=1.0, backend="torch",
                  output="none", activation=None)
    x = torch.randn(1, 256, 16)
    y32, g32 = grads(layer, x)
    assert torch.isfinite(y32).all() and all(torch.isfinite(g).all() for g in g32.values())
    layer64 = copy.deepcopy(layer).to(f64)
    y64, g64 = grads(layer64, x.to(f64))
    assert rel(y32.to(f64), y64) < 1e-5
    for name in g32:
        assert rel(g32[name].to(f64), g64[name]) < 1e-4, name
    # naive recurrence from Lambda, W and dt: x_l = exp(dt Lambda) x_(l-1) + (exp(dt Lambda) - 1) / Lambda u_l
    Lam, dt = layer64.Lambda().detach(), layer64.dt().detach()
    W = torch.view_as_complex(layer64.C.detach())[0]
    Abar, Bbar = torch.exp(dt * Lam), torch.expm1(dt * Lam) / Lam
    assert (dt * Lam.real).min() < -103  # exp of it underflows complex64: the regime of the reported NaN
    u, h, ys = x.to(f64), torch.zeros(1, 16, 64, dtype=c128), []
    for t in range(u.shape[1]):
        h = Abar * h + Bbar * u[:, t, :, None]
        ys.append((W * h).sum(-1).real + layer64.D.detach() * u[:, t])
    assert rel(y64, torch.stack(ys, 1)) < 1e-10
