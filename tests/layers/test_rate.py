"""`rate` multiplies every step size: a layer at rate r on x[:, ::r] approximates itself at rate 1 on x (for a
smooth x), in forward and in step; CfC scales its elapsed times; RNNs without a time step refuse rate != 1."""
from __future__ import annotations

import math

import pytest
import torch

from layer_helpers import rel, run_steps
from ssm.layers import build

L, H, R = 600, 3, 2
SSMS = [("s4", {}), ("s4d", {}), ("s4d", {"discretization": "bilinear"}), ("dss", {"variant": "exp"}),
        ("dss", {"variant": "softmax", "l_max": L}), ("s4-ptd", {}), ("s5", {"blocks": 2}), ("s5-ptd", {"blocks": 2})]


def smooth(B=2):
    """Slow sines (periods of 150-300 samples) with random phases: (B, L, H)."""
    t = torch.arange(L, dtype=torch.float64).reshape(1, L, 1)
    g = torch.Generator().manual_seed(0)
    period = 150 + 150 * torch.rand(B, 1, H, generator=g, dtype=torch.float64)
    return torch.sin(2 * math.pi * t / period + 6 * torch.rand(B, 1, H, generator=g, dtype=torch.float64))


def make(name, **kw):
    torch.manual_seed(0)
    return build(name, d_model=H, d_state=8, dt_min=0.005, dt_max=0.02, **kw).double().eval()


@pytest.mark.parametrize("name,kw", SSMS, ids=[n + "-" + "-".join(map(str, k.values())) for n, k in SSMS])
def test_rate_r_on_subsampled_input_approximates_rate_1(name, kw):
    layer = make(name, **kw)
    x = smooth()
    with torch.no_grad():
        fine = layer(x)[0][:, R - 1::R]  # the outputs at the coarse sample times
        coarse = layer(x[:, R - 1::R], rate=R)[0]
        wrong = layer(x[:, R - 1::R])[0]  # the same coarse input at rate 1: dt too small by R
        stepped = run_steps(layer, x[:, R - 1::R], rate=R)[0] if not layer.bidirectional else coarse
    err, err_wrong = rel(coarse[:, 50:], fine[:, 50:]), rel(wrong[:, 50:], fine[:, 50:])
    assert err < 0.05, f"rate {R} on x[:, ::{R}] is {err:.3g} away from rate 1 on x"
    assert err_wrong > 5 * err  # the test would notice a rate that is not applied
    assert rel(stepped, coarse) < 1e-9


@pytest.mark.parametrize("name", ["s4", "s4d", "s5"])
def test_step_sizes_follow_rate(name):
    layer = make(name, **({"blocks": 2} if name == "s5" else {}))
    torch.testing.assert_close(layer.step_sizes(2.5), 2.5 * layer.step_sizes())


def test_s5_rate_multiplies_step_rescale():
    torch.manual_seed(0)
    a = build("s5", d_model=H, d_state=8, blocks=2, step_rescale=2.0).double()
    torch.manual_seed(0)
    b = build("s5", d_model=H, d_state=8, blocks=2).double()
    x = smooth()[:, :40]
    torch.testing.assert_close(a(x, rate=1.5)[0], b(x, rate=3.0)[0], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(a.step_sizes(), 2 * b.step_sizes())


def test_cfc_rate_scales_elapsed_time():
    torch.manual_seed(0)
    layer = build("cfc", d_model=H, units=5, backbone_units=8).double()
    x = smooth()[:, :20]
    ts = torch.rand(2, 20, dtype=torch.float64) + 0.5
    torch.testing.assert_close(layer(x, rate=2.0)[0], layer(x, timespans=torch.full((2, 20), 2.0,
                                                                                     dtype=torch.float64))[0])
    torch.testing.assert_close(layer(x, timespans=ts, rate=3.0)[0], layer(x, timespans=3 * ts)[0])
    y_step, _ = run_steps(layer, x, rate=2.0)
    torch.testing.assert_close(y_step, layer(x, rate=2.0)[0])
    assert not torch.allclose(layer(x, rate=2.0)[0], layer(x)[0])


@pytest.mark.parametrize("name", ["lowrank-gru", "lowrank-lstm"])
def test_rnns_without_time_step_refuse_other_rates(name):
    layer = build(name, d_model=H, rank=2)
    x = smooth()[:, :5].float()
    assert torch.equal(layer(x, rate=1.0)[0], layer(x)[0])
    with pytest.raises(ValueError, match="no time step"):
        layer(x, rate=2.0)
    with pytest.raises(ValueError, match="no time step"):
        layer.step(x[:, 0], None, rate=0.5)
