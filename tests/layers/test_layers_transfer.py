"""transfer_function of every SSM layer against its own discrete kernel.

For ZOH and bilinear alike the infinite kernel sums to the DC gain: sum_l C Abar^l Bbar = -C A^-1 B = G(0).
For the bilinear map the whole generating function is fixed: sum_l K[l] w^l = 2/(1+w) G((2/dt)(1-w)/(1+w)).
"""
import math

import pytest
import torch
from torch import nn

import ssm

L = 4000  # dt = 0.05 and Re(A) <= -0.5 (or a PTD spectrum): the kernel has decayed far below 1e-12 by then


def _layer(name, **kw):
    torch.manual_seed(0)
    layer = ssm.layers.build(name, d_model=3, d_state=8, dt_min=0.05, dt_max=0.05, **kw).double()
    return layer


CONV = [("s4d", {}), ("s4d", {"discretization": "bilinear"}), ("dss", {"variant": "exp"}),
        ("dss", {"variant": "softmax"}), ("s4-ptd", {}), ("s4", {"l_max": 8192})]


@pytest.mark.parametrize("name,kw", CONV)
def test_dc_gain_is_kernel_sum(name, kw):
    layer = _layer(name, **kw)
    with torch.no_grad():
        k = layer.kernel(L)[0]  # (H, L)
        G0 = layer.transfer_function(torch.zeros(1, dtype=torch.complex128))[:, 0]
    assert G0.shape == (3,)
    torch.testing.assert_close(G0.real, k.sum(-1) / 1.0, rtol=1e-8, atol=1e-10)
    assert G0.imag.abs().max() < 1e-10  # real SISO systems


@pytest.mark.parametrize("name,kw", [("s4", {"l_max": 8192}), ("s4d", {"discretization": "bilinear"})])
def test_bilinear_generating_function(name, kw):
    """sum_l K[l] w^l at points w on the unit circle equals 2/(1+w) G(z(w)) with the bilinear image z(w)."""
    layer = _layer(name, **kw)
    theta = torch.tensor([0.1, 0.7, 2.0, 3.0], dtype=torch.float64)
    w = torch.exp(-1j * theta)
    with torch.no_grad():
        k = layer.kernel(L)[0].to(torch.complex128)
        lhs = (k.unsqueeze(-1) * w ** torch.arange(L, dtype=torch.float64).unsqueeze(-1)).sum(1)  # (H, F)
        dt = layer.step_sizes().unsqueeze(-1)  # (H, 1)
        z = (2 / dt) * (1 - w) / (1 + w)
        rhs = torch.stack([layer.transfer_function(z[h])[h] for h in range(3)]) * 2 / (1 + w)
    torch.testing.assert_close(lhs, rhs, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("name,kw", [("s5", {"blocks": 2}), ("s5", {"discretization": "bilinear", "blocks": 2}),
                                     ("s5-ptd", {"blocks": 1})])
def test_s5_dc_gain_is_impulse_response_sum(name, kw):
    layer = _layer(name, **kw)
    layer.output = nn.Identity()
    H = 3
    with torch.no_grad():
        x = torch.zeros(H, L, H, dtype=torch.float64)
        x[torch.arange(H), 0, torch.arange(H)] = 1.0  # impulse in channel h of batch element h
        y, _ = layer(x)
        y = y - layer.D * x  # drop the skip term
        impulse_sum = y.sum(1)[torch.arange(H), torch.arange(H)]
        G0 = layer.transfer_function(torch.zeros(1, dtype=torch.complex128))[:, 0]
    assert layer.step_sizes().shape == (layer.n_states,)
    torch.testing.assert_close(G0.real, impulse_sum, rtol=1e-8, atol=1e-10)


def test_step_sizes_scale_with_rate():
    for name in ("s4", "s4d", "dss", "s4-ptd", "s5"):
        layer = ssm.layers.build(name, d_model=4, d_state=8, **({"blocks": 2} if name == "s5" else {}))
        assert torch.allclose(layer.step_sizes(2.0), 2 * layer.step_sizes())
        with torch.no_grad():
            assert bool((layer.step_sizes() > 0).all()) and math.isfinite(float(layer.step_sizes().sum()))
