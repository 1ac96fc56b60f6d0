"""Cauchy op: every backend against the float64 definition, conjugate pairs, broadcasting, gradients, errors."""
import pytest
import torch

from ssm.kernels import cauchy
from ssm.kernels.reference import cauchy_ref

from kernel_helpers import TOL, crandn, rel, usable

CPU_FAST = ["ext", "keops"]
SLOW_KEOPS = ["ext", pytest.param("keops", marks=pytest.mark.slow)]  # each keops formula costs a g++ compile


def s4_like(shape, L, dtype=torch.complex128, gen=None):
    """v, w (...,N) with Re w < 0 (stable A) and z on the S4 bilinear contour (imaginary axis-like)."""
    v = crandn(*shape, dtype=dtype, gen=gen)
    w = torch.complex(-0.5 - torch.rand(*shape[-2:], generator=gen, dtype=torch.float64),
                      10 * torch.randn(*shape[-2:], generator=gen, dtype=torch.float64)).to(dtype)
    omega = torch.exp(-2j * torch.pi * torch.arange(L, dtype=torch.float64) / L)
    z = (2 * (1 - omega) / (1 + omega + 1e-3)).to(dtype)
    return v, z, w


def test_conj_form_equals_explicit_pairs():
    gen = torch.Generator().manual_seed(0)
    v, z, w = s4_like((3, 5), 11, gen=gen)
    both = cauchy_ref(torch.cat([v, v.conj()], -1), z, torch.cat([w, w.conj()], -1))
    assert rel(cauchy_ref(v, z, w, conj=True), both) < 1e-13


@pytest.mark.parametrize("backend", SLOW_KEOPS)
@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
@pytest.mark.parametrize("conj", [False, True])
def test_backend_matches_reference(backend, dtype, conj):
    usable("cauchy", backend)
    gen = torch.Generator().manual_seed(1)
    v, z, w = s4_like((2, 3, 16), 4096 if backend == "ext" else 300, dtype=dtype, gen=gen)
    out = cauchy(v, z, w, conj=conj, backend=backend)
    assert out.shape == (2, 3, z.shape[0]) and out.dtype == dtype
    ref = cauchy_ref(*(t.to(torch.complex128) for t in (v, z, w)), conj=conj)
    assert rel(out, ref) < TOL[dtype]


@pytest.mark.parametrize("backend", ["torch"] + CPU_FAST)
def test_gradcheck_all_inputs(backend):
    usable("cauchy", backend)
    gen = torch.Generator().manual_seed(2)
    v, z, w = (t.requires_grad_() for t in s4_like((2, 3, 4), 9, gen=gen))  # w (3, 4) broadcast over v (2, 3, 4)
    assert torch.autograd.gradcheck(lambda v, z, w: cauchy(v, z, w, conj=True, backend=backend), (v, z, w),
                                    fast_mode=True)


@pytest.mark.parametrize("conj", [False, True])
def test_ext_gradients_match_reference(conj):
    usable("cauchy", "ext")
    gen = torch.Generator().manual_seed(3)
    v, z, w = s4_like((4, 3, 8), 500, gen=gen)
    g = crandn(4, 3, 500, gen=gen)
    res = []
    for b in ("ext", "torch"):
        leaves = [t.clone().requires_grad_() for t in (v, z, w)]
        out = cauchy(*leaves, conj=conj, backend=b)
        res.append((out, *torch.autograd.grad(out, leaves, g)))
    for a, b in zip(*res):
        assert rel(a, b) < 1e-10


def test_real_inputs_promote_to_complex():
    out = cauchy(torch.randn(3, 4), torch.randn(5) + 0j, -torch.rand(3, 4) - 1, backend="torch")
    assert out.dtype == torch.complex64 and out.shape == (3, 5)


@pytest.mark.parametrize("args, match", [
    ((crandn(3, 4), crandn(5), crandn(3, 5)), "same last dim"),
    ((crandn(3, 4), crandn(5, 1), crandn(3, 4)), "z must be 1-D"),
    ((crandn(3, 4), crandn(5), crandn(2, 4)), "broadcastable"),
])
def test_bad_input_raises_value_error(args, match):
    with pytest.raises(ValueError, match=match):
        cauchy(*args)
