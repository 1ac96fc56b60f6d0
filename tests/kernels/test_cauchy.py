"""Cauchy op: conjugate pairs, long contours in complex64 against float64, broadcasting, promotion."""
import pytest
import torch

from ssm.kernels import cauchy
from ssm.kernels.ops.cauchy import cauchy_ref

from kernel_helpers import crandn, rel, registry_backends, usable


def s4_like(shape, L, dtype=torch.complex128, gen=None):
    """v, w (..., N) with Re w < 0 (stable A), HiPPO-like Im w, z on S4's bilinear contour."""
    v = crandn(*shape, dtype=dtype, gen=gen)
    N = shape[-1]
    w = torch.complex(-0.5 * torch.ones(*shape[-2:], dtype=torch.float64),
                      torch.pi * torch.arange(N, dtype=torch.float64) + torch.rand(*shape[-2:], generator=gen,
                                                                                dtype=torch.float64)).to(dtype)
    omega = torch.exp(-2j * torch.pi * torch.arange(L, dtype=torch.float64) / L)
    z = (2 * (1 - omega) / (1 + omega + 1e-3)).to(dtype)
    return v, z, w


def test_conj_form_equals_explicit_pairs():
    gen = torch.Generator().manual_seed(0)
    v, z, w = s4_like((3, 5), 11, gen=gen)
    both = cauchy_ref(torch.cat([v, v.conj()], -1), z, torch.cat([w, w.conj()], -1))
    assert rel(cauchy_ref(v, z, w, conj=True), both) < 1e-13


@pytest.mark.parametrize("backend", registry_backends("cauchy"))
@pytest.mark.parametrize("conj", [False, True])
def test_complex64_long_contour_against_float64(backend, conj):
    """S4 sizes in complex64: forward <= 2e-6 and both gradients <= 5e-6 of the float64 values at the same inputs."""
    usable("cauchy", backend)
    gen = torch.Generator().manual_seed(1)
    v, z, w = (t.to(torch.complex64) for t in s4_like((2, 3, 32), 4096, gen=gen))
    g = crandn(2, 3, 4096, gen=gen)
    res = []
    for b, dt in ((backend, torch.complex64), ("torch", torch.complex128)):
        vv, ww = v.to(dt).requires_grad_(), w.to(dt).requires_grad_()
        out = cauchy(vv, z.to(dt), ww, conj=conj, backend=b)
        res.append((out, *torch.autograd.grad(out, (vv, ww), g.to(dt))))
    assert res[0][0].dtype == torch.complex64
    assert rel(res[0][0], res[1][0]) < 2e-6
    for a, b in zip(res[0][1:], res[1][1:]):
        assert rel(a, b) < 5e-6


def test_real_inputs_promote_to_complex():
    out = cauchy(torch.randn(3, 4), torch.randn(5) + 0j, -torch.rand(3, 4) - 1, backend="torch")
    assert out.dtype == torch.complex64 and out.shape == (3, 5)


@pytest.mark.parametrize("backend", ["torch"] + registry_backends("cauchy"))
def test_broadcast_both_ways_and_gradient_shapes(backend):
    """w with more batch dims than v, and v with more than w: the result and gradients keep each input's shape."""
    usable("cauchy", backend)
    gen = torch.Generator().manual_seed(2)
    z = crandn(7, gen=gen)
    for vs, ws in (((3, 4), (2, 3, 4)), ((2, 3, 4), (3, 4)), ((2, 1, 4), (3, 4))):
        v, w = crandn(*vs, gen=gen).requires_grad_(), (crandn(*ws, gen=gen) - 3).requires_grad_()
        out = cauchy(v, z, w, conj=True, backend=backend)
        ref = cauchy_ref(v, z, w, conj=True)
        assert out.shape == ref.shape and rel(out, ref) < 1e-12
        gv, gw = torch.autograd.grad(out.abs().sum(), (v, w))
        rv, rw = torch.autograd.grad(ref.abs().sum(), (v, w))
        assert gv.shape == v.shape and gw.shape == w.shape
        assert rel(gv, rv) < 1e-10 and rel(gw, rw) < 1e-10
