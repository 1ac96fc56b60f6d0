"""DSS-softmax with growing states (Re(dt Lambda) > 0): the kernel against the official formula in float64 at
(L-1) Re(dt Lambda) = 102 (beyond float32's exp range) and 819 (beyond float64's), gradients, gradcheck, and the
step mode at moderate growth."""
from __future__ import annotations

import copy
import math

import pytest
import torch

from layer_helpers import rel, run_steps
from ssm.layers import build
from ssm.layers.functional import reversed_vandermonde_kernel
from test_fidelity import official_dss_kernel

f64 = torch.float64
L_MAX, DT = 2048, 0.1


def growing(growth: float, l_max: int = L_MAX, dt: float = DT, H: int = 2, N: int = 8, **kw):
    """A DSS-softmax layer with dt fixed and states 0 and 2 growing: (l_max - 1) Re(dt Lambda) = growth, growth / 2."""
    torch.manual_seed(0)
    layer = build("dss", d_model=H, d_state=N, variant="softmax", l_max=l_max, output="none", activation=None, **kw)
    with torch.no_grad():
        layer.inv_dt.fill_(math.log(dt))
        layer.A_real[..., 0] = -growth / ((l_max - 1) * dt)  # real_transform "none": Re(Lambda) = -A_real
        layer.A_real[..., 2] = -growth / 2 / ((l_max - 1) * dt)
    return layer


def official(layer64, L):
    """The official float64 kernel normalised over l_max, its first L steps (ours normalises over l_max at any L)."""
    W = torch.view_as_complex(layer64.C.detach())
    return official_dss_kernel(2 * W, layer64.Lambda().detach(), layer64.dt().detach(), layer64.l_max)[..., :L]


def test_reversed_vandermonde_kernel_is_its_definition():
    torch.manual_seed(0)
    c = lambda *s: torch.randn(*s, dtype=torch.complex128)  # noqa: E731
    W, W_rev, lx = c(2, 3, 4), c(2, 3, 4), torch.complex(-torch.rand(3, 4, dtype=f64), torch.randn(3, 4, dtype=f64))
    l = torch.arange(9, dtype=f64)
    dense = (W.unsqueeze(-1) * torch.exp(lx.unsqueeze(-1) * l)
             + W_rev.unsqueeze(-1) * torch.exp(lx.unsqueeze(-1) * (8 - l))).sum(-2)
    assert rel(reversed_vandermonde_kernel(W, W_rev, lx, 9, 2.0), 2 * dense.real) < 1e-12
    args = tuple(t.clone().requires_grad_() for t in (W, W_rev, lx))
    assert torch.autograd.gradcheck(lambda a, b, x: reversed_vandermonde_kernel(a, b, x, 9), args)


@pytest.mark.parametrize("growth", [102.0, 819.0])
@pytest.mark.parametrize("L", [L_MAX, L_MAX - 8])  # a shorter input ends 8 steps before the growing states' peak
def test_float32_kernel_equals_the_official_formula_for_growing_states(growth, L):
    layer = growing(growth)
    layer64 = copy.deepcopy(layer).to(f64)
    ref = official(layer64, L)
    K32, K64 = layer.kernel(L).detach(), layer64.kernel(L).detach()
    assert rel(K32.to(f64), ref) < 1e-5 and rel(K64, ref) < 1e-10
    head = slice(0, 1000)  # where the decaying states dominate
    assert rel(K32[..., head].to(f64), ref[..., head]) < 1e-5
    with torch.no_grad():
        layer64.C[..., [0, 2], :] = 0  # without the growing states the kernel is far off: they matter here
    assert rel(layer64.kernel(L).detach(), ref) > 0.1


def grads(layer, x):
    layer.zero_grad()
    y, _ = layer(x)
    y.pow(2).sum().backward()
    return y.detach(), {n: p.grad.detach().clone() for n, p in layer.named_parameters()}


@pytest.mark.parametrize("growth", [102.0, 819.0])
def test_gradients_with_growing_states_are_finite_and_equal_float64(growth):
    layer = growing(growth)
    x = torch.randn(1, L_MAX, 2)
    y32, g32 = grads(layer, x)
    y64, g64 = grads(copy.deepcopy(layer).to(f64), x.to(f64))
    assert torch.isfinite(y32).all() and all(torch.isfinite(g).all() for g in g32.values())
    assert rel(y32.to(f64), y64) < 1e-5
    for name in g32:
        assert rel(g32[name].to(f64), g64[name]) < 1e-4, name


class _Kernel(torch.nn.Module):
    """forward(L) = layer.kernel(L), so `functional_call` can swap the layer's parameters."""

    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def forward(self, L):
        return self.layer.kernel(L)


@pytest.mark.parametrize("L", [16, 11, 24])  # at, below and above l_max
def test_gradcheck_float64_with_growing_and_decaying_states(L):
    module = _Kernel(growing(6.0, l_max=16, dt=0.3, H=2, N=6, bidirectional=True).to(f64))
    names = ["layer.A_real", "layer.A_imag", "layer.inv_dt", "layer.C"]
    params = dict(module.named_parameters())
    assert (params["layer.A_real"] < 0).any() and (params["layer.A_real"] > 0).any()

    def kernel(*ps):
        return torch.func.functional_call(module, dict(zip(names, ps)), (L,))

    assert torch.autograd.gradcheck(kernel, tuple(params[n].detach().clone().requires_grad_() for n in names))


def test_convolution_equals_step_with_moderately_growing_states():
    layer = growing(8.0, l_max=64, dt=0.1, H=3, N=8).to(f64)
    x = torch.randn(2, 64, 3, dtype=f64)
    y_conv, s_conv = layer(x)
    y_step, s_step = run_steps(layer, x)
    assert rel(y_conv.detach(), y_step.detach()) < 1e-10 and rel(s_conv.detach(), s_step.detach()) < 1e-10
