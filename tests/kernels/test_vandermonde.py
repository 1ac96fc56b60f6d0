"""Vandermonde op: every backend against an independent float64 oracle, long L, |x| near 1, gradients, errors."""
import pytest
import torch

from ssm.kernels import vandermonde
from ssm.kernels.reference import vandermonde_ref

from kernel_helpers import TOL, crandn, near_unit, rel, usable

CPU_FAST = ["ext", "keops"]
SLOW_KEOPS = ["ext", pytest.param("keops", marks=pytest.mark.slow)]  # each keops formula costs a g++ compile


def oracle(v: torch.Tensor, x: torch.Tensor, L: int) -> torch.Tensor:
    """sum_n v x^l with powers by cumulative product in complex128 (no logs): an independent check of log space."""
    v, x = torch.broadcast_tensors(v.to(torch.complex128), x.to(torch.complex128))
    steps = x.unsqueeze(-1).expand(*x.shape, L - 1)
    powers = torch.cat([torch.ones_like(x).unsqueeze(-1), torch.cumprod(steps, dim=-1)], dim=-1)
    return (v.unsqueeze(-1) * powers).sum(-2)


@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
def test_reference_matches_oracle_long_L_near_unit(dtype):
    gen = torch.Generator().manual_seed(0)
    v, x = crandn(2, 8, dtype=dtype, gen=gen), near_unit(2, 8, dtype=dtype, gen=gen)
    L = 16384
    assert rel(vandermonde_ref(v, x, L), oracle(v, x, L)) < TOL[dtype]


def test_naive_complex64_powers_would_fail():
    """The oracle is sharp enough to see the error of a direct complex64 exp(l log x) that the reference avoids."""
    gen = torch.Generator().manual_seed(1)
    v, x = crandn(4, 16, dtype=torch.complex64, gen=gen), near_unit(4, 16, dtype=torch.complex64, gen=gen)
    L = 16384
    naive = (v.unsqueeze(-1) * torch.exp(torch.log(x).unsqueeze(-1) * torch.arange(L))).sum(-2)
    assert rel(naive, oracle(v, x, L)) > 1e-4


@pytest.mark.parametrize("backend", CPU_FAST)
@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
def test_backend_long_L_near_unit(backend, dtype):
    usable("vandermonde", backend)
    if backend == "keops" and dtype == torch.complex64:
        pytest.skip("keops evaluates Vandermonde in float64 for both dtypes: covered by complex128")
    gen = torch.Generator().manual_seed(2)
    v, x = crandn(3, 2, 8, dtype=dtype, gen=gen), near_unit(2, 8, dtype=dtype, gen=gen)
    L = 16384
    out = vandermonde(v, x, L, backend=backend)
    assert out.shape == (3, 2, L) and out.dtype == dtype
    assert rel(out, oracle(v, x, L)) < TOL[dtype]


@pytest.mark.parametrize("backend", ["torch"] + SLOW_KEOPS)
def test_backend_random_and_decaying(backend):
    """Ordinary inputs: |x| spread over (0, 1], odd L, an x that is exactly 0 only for the ext backend."""
    usable("vandermonde", backend)
    gen = torch.Generator().manual_seed(3)
    v = crandn(5, 7, gen=gen)
    x = crandn(5, 7, gen=gen)
    x = x / x.abs() * torch.rand(5, 7, generator=gen, dtype=torch.float64)
    if backend == "ext":
        x[0, 0] = 0
    L = 77
    assert rel(vandermonde(v, x, L, backend=backend), oracle(v, x, L)) < 1e-9


@pytest.mark.parametrize("backend", ["torch"] + CPU_FAST)
def test_gradcheck(backend):
    usable("vandermonde", backend)
    gen = torch.Generator().manual_seed(4)
    v = crandn(2, 3, 4, gen=gen).requires_grad_()
    x = near_unit(3, 4, decay=0.2, gen=gen).requires_grad_()  # broadcast over the leading dim like the layers
    assert torch.autograd.gradcheck(lambda v, x: vandermonde(v, x, 70, backend=backend), (v, x), fast_mode=True)


@pytest.mark.parametrize("backend", SLOW_KEOPS)
def test_layer_shapes_gradients_match_reference(backend):
    """v (C, H, N) with x (H, N) and v (B, H, N) with x (H, N): values and both gradients equal the reference's."""
    usable("vandermonde", backend)
    gen = torch.Generator().manual_seed(5)
    for lead in (1, 2, 3):
        v = crandn(lead, 4, 6, gen=gen)
        x = near_unit(4, 6, decay=0.05, gen=gen)
        g = crandn(lead, 4, 200, gen=gen)
        res = []
        for b in (backend, "torch"):
            vv, xx = v.clone().requires_grad_(), x.clone().requires_grad_()
            out = vandermonde(vv, xx, 200, backend=b)
            res.append((out, *torch.autograd.grad(out, (vv, xx), g)))
        for a, b in zip(*res):
            assert rel(a, b) < 1e-9


def test_ext_complex64_gradients_long_L():
    usable("vandermonde", "ext")
    gen = torch.Generator().manual_seed(6)
    v, x = crandn(2, 3, 8, gen=gen), near_unit(3, 8, gen=gen)
    g = crandn(2, 3, 8192, gen=gen)
    grads = []
    for dtype, b in ((torch.complex64, "ext"), (torch.complex128, "torch")):
        vv, xx = v.to(dtype).requires_grad_(), x.to(dtype).requires_grad_()
        grads.append(torch.autograd.grad(vandermonde(vv, xx, 8192, backend=b), (vv, xx), g.to(dtype)))
    for a, b in zip(*grads):
        assert rel(a, b) < 1e-4


def test_mixed_precision_promotes():
    v = crandn(3, 4)
    x = near_unit(3, 4, dtype=torch.complex64)
    assert vandermonde(v, x, 5, backend="torch").dtype == torch.complex128


@pytest.mark.parametrize("args, match", [
    ((torch.randn(3, 4), torch.randn(3, 4), 5), "must be complex"),
    ((crandn(3, 4), crandn(3, 4), 0), "L must be a positive integer"),
    ((crandn(3, 4), crandn(2, 4), 5), "broadcastable"),
])
def test_bad_input_raises_value_error(args, match):
    with pytest.raises(ValueError, match=match):
        vandermonde(*args)


def test_log_vandermonde_matches_vandermonde_oracle():
    """log_vandermonde(v, log x) equals the cumulative-product oracle at x = exp(log x), long L, |x| near 1."""
    from ssm.kernels import log_vandermonde

    gen = torch.Generator().manual_seed(3)
    v = crandn(3, 8, dtype=torch.complex128, gen=gen)
    log_x = torch.log(near_unit(3, 8, dtype=torch.complex128, gen=gen))
    assert rel(log_vandermonde(v, log_x, 4096), oracle(v, torch.exp(log_x), 4096)) < 1e-11


def test_log_vandermonde_transpose_is_the_adjoint():
    """<vandermonde(v), u> = <v, transpose(u)> (bilinear, no conjugation) for a batched u (B, H, L) and log_x (H, N)."""
    from ssm.kernels import log_vandermonde, log_vandermonde_transpose

    gen = torch.Generator().manual_seed(4)
    log_x = torch.log(near_unit(5, 6, dtype=torch.complex128, gen=gen))
    v = crandn(2, 5, 6, dtype=torch.complex128, gen=gen)
    u = torch.randn(2, 5, 300, dtype=torch.float64, generator=gen)
    lhs = (log_vandermonde(v, log_x, 300) * u).sum(-1)
    rhs = (v * log_vandermonde_transpose(u, log_x)).sum(-1)
    assert rel(lhs, rhs) < 1e-12
    assert log_vandermonde_transpose(u, log_x).shape == (2, 5, 6)


def test_log_vandermonde_transpose_gradcheck():
    from ssm.kernels import log_vandermonde_transpose

    gen = torch.Generator().manual_seed(5)
    log_x = torch.log(near_unit(2, 3, dtype=torch.complex128, gen=gen)).requires_grad_()
    u = torch.randn(2, 2, 7, dtype=torch.float64, generator=gen, requires_grad=True)
    assert torch.autograd.gradcheck(log_vandermonde_transpose, (u, log_x))
