"""Fidelity to the official code: S4's `convention="official"` init. Every oracle is written here from the
formulas: dense matrices, explicit powers, unrolled recurrences."""
from __future__ import annotations

import pytest
import torch

from layer_helpers import rel, run_steps
from ssm import hippo
from ssm.layers import build

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
