"""Vandermonde family (vandermonde, log_vandermonde, log_vandermonde_transpose): every backend against float64
oracles that do not use log space, long L with |x| near 1 in complex64, the adjoint identity, special values."""
import pytest
import torch

from ssm.kernels import log_vandermonde, log_vandermonde_transpose, vandermonde

from kernel_helpers import crandn, near_unit_log, rel, registry_backends, usable

L_LONG = 16384


def powers_oracle(x: torch.Tensor, L: int) -> torch.Tensor:
    """x^l for l < L by cumulative products in complex128 (no logarithm): (..., N) -> (..., N, L)."""
    x = x.to(torch.complex128).unsqueeze(-1)
    return torch.cat([torch.ones_like(x), torch.cumprod(x.expand(*x.shape[:-1], L - 1), -1)], -1)


def vandermonde_oracle(v, x, L):
    return (v.to(torch.complex128).unsqueeze(-1) * powers_oracle(x, L)).sum(-2)


def test_naive_complex64_powers_would_fail():
    """The oracle sees the ~l * eps phase error of a direct complex64 exp(l log x) that every backend avoids."""
    gen = torch.Generator().manual_seed(1)
    v, lx = crandn(4, 16, dtype=torch.complex64, gen=gen), near_unit_log(4, 16, gen=gen).to(torch.complex64)
    naive = (v.unsqueeze(-1) * torch.exp(lx.unsqueeze(-1) * torch.arange(L_LONG))).sum(-2)
    assert rel(naive, vandermonde_oracle(v, torch.exp(lx.to(torch.complex128)), L_LONG)) > 10 * 5e-6


def _grads(fn, args, g):
    leaves = [a.clone().requires_grad_() for a in args]
    out = fn(*leaves)
    return (out, *torch.autograd.grad(out, leaves, g.to(out.dtype)))


@pytest.mark.parametrize("backend", registry_backends("log_vandermonde"))
def test_log_vandermonde_long_L_complex64(backend):
    """complex64 at L = 16384, |x| near 1: values and both gradients within 5e-6 of float64 at the same inputs."""
    usable("log_vandermonde", backend)
    gen = torch.Generator().manual_seed(2)
    v, lx = crandn(2, 3, 32, dtype=torch.complex64, gen=gen), near_unit_log(3, 32, gen=gen).to(torch.complex64)
    g = crandn(2, 3, L_LONG, gen=gen)
    got = _grads(lambda v, lx: log_vandermonde(v, lx, L_LONG, backend=backend), (v, lx), g)
    want = _grads(lambda v, lx: log_vandermonde(v, lx, L_LONG, backend="torch"),
                  (v.to(torch.complex128), lx.to(torch.complex128)), g)
    assert got[0].dtype == torch.complex64
    assert rel(want[0], vandermonde_oracle(v, torch.exp(lx.to(torch.complex128)), L_LONG)) < 1e-10
    for a, b in zip(got, want):
        assert rel(a, b) < 5e-6


@pytest.mark.parametrize("backend", registry_backends("vandermonde"))
def test_vandermonde_long_L_complex64(backend):
    usable("vandermonde", backend)
    gen = torch.Generator().manual_seed(3)
    v = crandn(2, 3, 32, dtype=torch.complex64, gen=gen)
    x = torch.exp(near_unit_log(3, 32, gen=gen)).to(torch.complex64)
    g = crandn(2, 3, L_LONG, gen=gen)
    got = _grads(lambda v, x: vandermonde(v, x, L_LONG, backend=backend), (v, x), g)
    want = _grads(lambda v, x: vandermonde(v, x, L_LONG, backend="torch"), (v.to(torch.complex128),
                                                                          x.to(torch.complex128)), g)
    assert rel(want[0], vandermonde_oracle(v, x, L_LONG)) < 1e-10
    for a, b in zip(got, want):
        assert rel(a, b) < 5e-6


@pytest.mark.parametrize("backend", registry_backends("log_vandermonde_transpose"))
@pytest.mark.parametrize("real_u", [True, False], ids=["real-u", "complex-u"])
def test_transpose_long_L_complex64(backend, real_u):
    """u (B, H, L) with log_x (H, N) in complex64 at L = 16384: values and gradients within 5e-6 of float64."""
    usable("log_vandermonde_transpose", backend)
    gen = torch.Generator().manual_seed(4)
    lx = near_unit_log(3, 16, gen=gen).to(torch.complex64)
    u = torch.randn(2, 3, L_LONG, generator=gen) if real_u else crandn(2, 3, L_LONG, dtype=torch.complex64, gen=gen)
    g = crandn(2, 3, 16, gen=gen)
    got = _grads(lambda u, lx: log_vandermonde_transpose(u, lx, backend=backend), (u, lx), g)
    assert got[0].shape == (2, 3, 16) and got[0].dtype == torch.complex64 and got[1].dtype == u.dtype
    oracle = (u.to(torch.complex128).unsqueeze(-2) * powers_oracle(torch.exp(lx.to(torch.complex128)), L_LONG)).sum(-1)
    assert rel(got[0], oracle) < 5e-6
    want = _grads(lambda u, lx: log_vandermonde_transpose(u, lx, backend="torch"),
                  (u.to(torch.float64 if real_u else torch.complex128), lx.to(torch.complex128)), g)
    for a, b in zip(got[1:], want[1:]):
        assert rel(a, b) < 5e-6


@pytest.mark.parametrize("backend", ["torch"] + registry_backends("log_vandermonde_transpose"))
def test_transpose_is_the_ssm_final_state(backend):
    """With u flipped in time, the transpose is the final state of h_l = x h_{l-1} + u_l (Horner's rule)."""
    usable("log_vandermonde_transpose", backend)
    gen = torch.Generator().manual_seed(6)
    lx = near_unit_log(3, 5, decay=0.1, gen=gen)
    u = torch.randn(2, 3, 300, generator=gen, dtype=torch.float64)
    h = torch.zeros(2, 3, 5, dtype=torch.complex128)
    for l in range(300):  # the recurrence on the time-ordered input u.flip(-1)
        h = torch.exp(lx) * h + u.flip(-1)[..., l:l + 1]
    assert rel(log_vandermonde_transpose(u, lx, backend=backend), h) < 1e-12


def test_transpose_is_the_adjoint():
    """<log_vandermonde(v), u> = <v, log_vandermonde_transpose(u)> (bilinear), batched u (B, H, L), log_x (H, N)."""
    gen = torch.Generator().manual_seed(5)
    lx = near_unit_log(5, 6, gen=gen)
    v = crandn(2, 5, 6, gen=gen)
    u = torch.randn(2, 5, 300, dtype=torch.float64, generator=gen)
    lhs = (log_vandermonde(v, lx, 300) * u).sum(-1)
    rhs = (v * log_vandermonde_transpose(u, lx)).sum(-1)
    assert rel(lhs, rhs) < 1e-12


@pytest.mark.parametrize("backend", ["torch"] + registry_backends("vandermonde"))
def test_special_values_follow_the_definition(backend):
    """x = 0 (0^0 = 1), NaN x (NaN from l = 1 on, x^0 = 1 still) and NaN v: every backend matches the definition."""
    usable("vandermonde", backend)
    v = torch.tensor([[1 + 1j, 2 - 1j, 0.5j], [1, 1, float("nan")]], dtype=torch.complex128)
    x = torch.tensor([[0, 0.5, float("nan")], [0, -0.5j, 0.9]], dtype=torch.complex128)
    L = 5
    want = torch.stack([(v * (x ** l if l else torch.ones_like(x))).sum(-1) for l in range(L)], -1)
    for f, arg in ((lambda v, a: vandermonde(v, a, L, backend=backend), x),
                   (lambda v, a: log_vandermonde(v, a, L, backend=backend), torch.log(x))):
        got = f(v, arg)
        assert torch.equal(got.isnan(), want.isnan()), (got, want)
        ok = ~want.isnan()
        assert rel(got[ok], want[ok]) < 1e-12
    u = torch.tensor([[1.0, 2.0, 3.0]], dtype=torch.float64)
    got = log_vandermonde_transpose(u, torch.log(x[1:]), backend=backend)
    assert rel(got, (u.to(torch.complex128).unsqueeze(-2) * powers_oracle(x[1:], 3)).sum(-1)) < 1e-12


@pytest.mark.parametrize("backend", ["torch"] + registry_backends("vandermonde"))
def test_vandermonde_gradient_at_zero(backend):
    """d/dx sum_l g_l v x^l at x = 0 is v g_1 (the log-space formula would divide by zero)."""
    usable("vandermonde", backend)
    v = torch.tensor([[2 + 1j, 1.0]], dtype=torch.complex128, requires_grad=True)
    x = torch.tensor([[0, 0.5]], dtype=torch.complex128, requires_grad=True)
    g = torch.tensor([[1, 3 - 1j, 2, 1]], dtype=torch.complex128)
    gx = torch.autograd.grad(vandermonde(v, x, 4, backend=backend), x, g)[0]
    assert torch.allclose(gx[0, 0], (v[0, 0] * 1).conj() * g[0, 1])
