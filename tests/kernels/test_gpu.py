"""The same checks on a CUDA device for ext (CUDA kernels), triton and keops (skipped without a GPU)."""
import pytest
import torch

from ssm.kernels import cauchy, vandermonde
from ssm.kernels.reference import cauchy_ref, vandermonde_ref

from kernel_helpers import TOL, crandn, near_unit, rel, usable

pytestmark = pytest.mark.gpu
BACKENDS = ["ext", "triton", "keops"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
def test_vandermonde_cuda(backend, dtype):
    usable("vandermonde", backend, "cuda")
    gen = torch.Generator().manual_seed(0)
    v, x, g = crandn(3, 4, 64, gen=gen), near_unit(4, 64, gen=gen), crandn(3, 4, 16384, gen=gen)
    x[0, 0] = 0.5
    grads = []
    for b, dev, dt in ((backend, "cuda", dtype), ("torch", "cpu", torch.complex128)):
        vv, xx = v.to(dev, dt).requires_grad_(), x.to(dev, dt).requires_grad_()
        out = vandermonde(vv, xx, 16384, backend=b)
        grads.append((out, *torch.autograd.grad(out, (vv, xx), g.to(dev, dt))))
    for a, b in zip(*grads):
        assert rel(a.cpu(), b) < TOL[dtype] * 10


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
def test_cauchy_cuda(backend, dtype):
    usable("cauchy", backend, "cuda")
    gen = torch.Generator().manual_seed(1)
    v, w, z = crandn(3, 4, 64, gen=gen), crandn(4, 64, gen=gen) - 2, 1j * torch.linspace(-5, 5, 4096, dtype=torch.float64)
    g = crandn(3, 4, 4096, gen=gen)
    res = []
    for b, dev, dt in ((backend, "cuda", dtype), ("torch", "cpu", torch.complex128)):
        leaves = [t.to(dev, dt).requires_grad_() for t in (v, z, w)]
        out = cauchy(*leaves, conj=True, backend=b)
        res.append((out, *torch.autograd.grad(out, leaves, g.to(dev, dt))))
    for a, b in zip(*res):
        assert rel(a.cpu(), b) < TOL[dtype] * 10


def test_auto_choice_on_cuda_agrees():
    v, x = crandn(2, 8).cuda(), near_unit(2, 8).cuda()
    assert rel(vandermonde(v, x, 100).cpu(), vandermonde_ref(v.cpu(), x.cpu(), 100)) < 1e-9
    w, z = crandn(2, 8).cuda() - 2, crandn(50).cuda()
    assert rel(cauchy(v, z, w, conj=True).cpu(), cauchy_ref(v.cpu(), z.cpu(), w.cpu(), conj=True)) < 1e-9
