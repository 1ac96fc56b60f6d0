"""Every op with every GPU backend (ext CUDA kernels, triton, keops) on a CUDA device: values and gradients against
the float64 reference, the complex64 accuracy targets at S4 sizes, no device->host synchronisation in forward or
backward, and the automatic choice. Skipped without a GPU (benchmarks/gpu/run.sh runs them)."""
import pytest
import torch

from ssm.kernels import cauchy, dispatch, log_vandermonde, log_vandermonde_transpose, registry, vandermonde

from kernel_helpers import TOL, case, crandn, near_unit_log, rel, registry_backends, usable

pytestmark = pytest.mark.gpu
PAIRS = [pytest.param(op, *p.values, marks=p.marks, id=f"{op}-{p.id}") for op in registry.OPS
         for p in registry_backends(op, "cuda")]


def _run(fn, args, wrt, device, g=None):
    leaves = [a.detach().to(device).requires_grad_(i in wrt) if isinstance(a, torch.Tensor) else a
              for i, a in enumerate(args)]
    out = fn(*leaves)
    if g is None:
        g = torch.randn(out.shape, generator=torch.Generator().manual_seed(7), dtype=out.dtype)
    grads = torch.autograd.grad(out, [leaves[i] for i in wrt], g.to(device, out.dtype))
    return [t.cpu() for t in (out, *grads)], g


@pytest.mark.parametrize("op, backend", PAIRS)
@pytest.mark.parametrize("dtype", [torch.complex128, torch.complex64], ids=["c128", "c64"])
def test_backend_matches_reference_on_cuda(op, backend, dtype):
    usable(op, backend, "cuda")
    args, wrt = case(op, dtype)
    got, g = _run(dispatch.implementation(op, backend), args, wrt, "cuda")
    high = tuple(a.to(torch.complex128 if a.is_complex() else torch.float64) if isinstance(a, torch.Tensor) else a
                 for a in args)
    want, _ = _run(dispatch._OPS[op].reference, high, wrt, "cpu", g)
    for a, b in zip(got, want):
        assert rel(a, b) < TOL[dtype] * 10


def _s4_cauchy(H, N, L, gen):
    w = torch.complex(-0.5 * torch.ones(H, N, dtype=torch.float64), torch.pi * torch.arange(N, dtype=torch.float64)
                      + torch.rand(H, N, generator=gen, dtype=torch.float64))
    omega = torch.exp(-2j * torch.pi * torch.arange(L, dtype=torch.float64) / L)
    return crandn(H, N, gen=gen), (2 * (1 - omega) / (1 + omega + 1e-3)), w


@pytest.mark.parametrize("backend", registry_backends("cauchy", "cuda"))
def test_cauchy_complex64_accuracy_targets(backend):
    """256 x 32 x 4096 in complex64: forward <= 1e-6 and gradients <= 5e-6 of float64 at the same inputs."""
    usable("cauchy", backend, "cuda")
    gen = torch.Generator().manual_seed(1)
    v, z, w = (t.to(torch.complex64) for t in _s4_cauchy(256, 32, 4096, gen))
    g = crandn(256, 4096, gen=gen)
    got, _ = _run(lambda v, z, w: cauchy(v, z, w, conj=True, backend=backend), (v, z, w), (0, 2), "cuda", g)
    want, _ = _run(lambda v, z, w: cauchy(v, z, w, conj=True, backend="torch"),
                   tuple(t.to(torch.complex128) for t in (v, z, w)), (0, 2), "cpu", g)
    assert rel(got[0], want[0]) < 1e-6
    assert max(rel(a, b) for a, b in zip(got[1:], want[1:])) < 5e-6


@pytest.mark.parametrize("op", ["vandermonde", "log_vandermonde", "log_vandermonde_transpose"])
@pytest.mark.parametrize("backend", registry_backends("log_vandermonde", "cuda"))
def test_vandermonde_family_complex64_accuracy_targets(op, backend):
    """64 x 64 x 16384, |x| near 1, complex64: forward <= 1e-6 (transpose 5e-6) and gradients <= 5e-6 of float64."""
    usable(op, backend, "cuda")
    gen = torch.Generator().manual_seed(2)
    L = 16384
    lx = near_unit_log(64, 64, gen=gen).to(torch.complex64)
    if op == "log_vandermonde_transpose":
        first, g = torch.randn(4, 64, L, generator=gen), crandn(4, 64, 64, gen=gen)
        fn = lambda be: lambda u, lx: log_vandermonde_transpose(u, lx, backend=be)  # noqa: E731
    else:
        first, g = crandn(64, 64, dtype=torch.complex64, gen=gen), crandn(64, L, gen=gen)
        f = vandermonde if op == "vandermonde" else log_vandermonde
        lx = torch.exp(lx.to(torch.complex128)).to(torch.complex64) if op == "vandermonde" else lx
        fn = lambda be: lambda v, a: f(v, a, L, backend=be)  # noqa: E731
    got, _ = _run(fn(backend), (first, lx), (0, 1), "cuda", g)
    high = (first.to(torch.float64 if not first.is_complex() else torch.complex128), lx.to(torch.complex128))
    want, _ = _run(fn("ext" if dispatch.state(op, "ext", "cpu")[0] == dispatch.OK else "torch"), high, (0, 1), "cpu", g)
    assert rel(got[0], want[0]) < (5e-6 if op == "log_vandermonde_transpose" else 1e-6)
    assert max(rel(a, b) for a, b in zip(got[1:], want[1:])) < 5e-6


@pytest.mark.parametrize("op, backend", [p for p in PAIRS if "keops" not in p.id])
def test_no_device_host_sync(op, backend):
    """Forward and backward of a warmed-up op never synchronise the GPU with the host."""
    usable(op, backend, "cuda")
    args, wrt = case(op, torch.complex64)
    fn = dispatch.implementation(op, backend)
    _run(fn, args, wrt, "cuda")  # warm-up: compiles, loads, probes
    leaves = [a.detach().cuda().requires_grad_(i in wrt) if isinstance(a, torch.Tensor) else a for i, a in enumerate(args)]
    torch.cuda.set_sync_debug_mode("error")
    try:
        out = fn(*leaves)
        torch.autograd.grad(out, [leaves[i] for i in wrt], torch.ones_like(out))
    finally:
        torch.cuda.set_sync_debug_mode("default")


def test_auto_choice_on_cuda_follows_the_priority_table():
    for op in registry.OPS:
        chosen = dispatch.choose(op, "cuda")
        order = registry.PRIORITY["cuda"][op]
        working = [b for b in order if dispatch.state(op, b, "cuda")[0] == dispatch.OK]
        assert chosen == working[0], (op, chosen, working)
