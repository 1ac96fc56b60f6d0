"""scan: every backend against the sequential reference (scan_ref), reverse, state continuation, gradients."""
import pytest
import torch

from ssm.kernels import dispatch, scan
from ssm.kernels.backends.torch import scan_fwd as scan_parallel
from ssm.kernels.ops.scan import scan_ref

TOL = {torch.float64: 1e-10, torch.complex128: 1e-10, torch.float32: 1e-4, torch.complex64: 1e-4}


def working(name):
    return dispatch.status("scan", name, torch.device("cpu")) is None


BACKENDS = ["torch", "ref", pytest.param("ext", marks=pytest.mark.skipif(
    not working("ext"), reason=f"ext: {dispatch.status('scan', 'ext', torch.device('cpu'))}"))]


def make(dtype, shape=(2, 3, 37, 5), a_shape=None, seed=0):
    """Random (a, b, h0) with |a| < 1 so long scans stay bounded."""
    g = torch.Generator().manual_seed(seed)
    b = torch.randn(shape, dtype=dtype, generator=g)
    a = torch.rand(a_shape or shape, dtype=torch.float64, generator=g) * 0.98
    if dtype.is_complex:
        a = a * torch.exp(1j * 3 * torch.rand(a.shape, dtype=torch.float64, generator=g))
    h0 = torch.randn(shape[:-2] + shape[-1:], dtype=dtype, generator=g)
    return a.to(dtype), b, h0


def close(out, ref, dtype):
    err = ((out - ref).abs().max() / ref.abs().max()).item()
    assert err < TOL[dtype], err


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128, torch.float32, torch.complex64])
@pytest.mark.parametrize("a_shape", [None, (5,), (1, 3, 1, 5)], ids=["varying", "shared", "per-row"])
@pytest.mark.parametrize("reverse", [False, True])
def test_matches_sequential(backend, dtype, a_shape, reverse):
    a, b, h0 = make(dtype, a_shape=a_shape)
    ref = scan_ref(a, b, h0.expand(b.shape[:-2] + b.shape[-1:]), reverse)
    close(scan(a, b, h0, reverse, backend=backend), ref, dtype)
    close(scan(a, b, None, reverse, backend=backend), scan_ref(a, b, None, reverse), dtype)


@pytest.mark.parametrize("chunk", [0, 1, 4, 7, 64])
@pytest.mark.parametrize("L", [1, 2, 3, 8, 9, 31, 100])
@pytest.mark.parametrize("varying", [False, True])
def test_parallel_paths_every_length(chunk, L, varying):
    """The odd-even recursion (chunk=0) and the chunked scan handle odd lengths, short tails and L < chunk."""
    a, b, h0 = make(torch.complex128, (2, L, 3), None if varying else (1, 1, 3), seed=L)
    for reverse in (False, True):
        close(scan_parallel(a, b, h0, reverse, chunk=chunk), scan_ref(a, b, h0, reverse), torch.complex128)


@pytest.mark.parametrize("varying", [False, True])
def test_default_cpu_chunking_long_sequence(varying):
    """Long sequences take the chunked path on the CPU (default_chunk > 0): still the exact recurrence."""
    from ssm.kernels.backends.torch import default_chunk

    L = 777
    assert default_chunk(L, torch.device("cpu")) > 0
    a, b, h0 = make(torch.complex128, (2, L, 3), None if varying else (3,), seed=1)
    for reverse in (False, True):
        close(scan(a, b, h0, reverse, backend="torch"), scan_ref(a, b, h0, reverse), torch.complex128)


def test_reverse_is_flipped_forward():
    a, b, h0 = make(torch.complex128)
    flipped = scan(a.flip(-2), b.flip(-2), h0).flip(-2)
    close(scan(a, b, h0, reverse=True), flipped, torch.complex128)


@pytest.mark.parametrize("backend", BACKENDS)
def test_state_continuation(backend):
    """scan(b[:t]) then scan(b[t:], h0=last state) equals scan(b)."""
    a, b, h0 = make(torch.complex128, (2, 50, 4))
    full = scan(a, b, h0, backend=backend)
    first = scan(a[:, :17], b[:, :17], h0, backend=backend)
    second = scan(a[:, 17:], b[:, 17:], first[:, -1], backend=backend)
    close(torch.cat([first, second], 1), full, torch.complex128)


@pytest.mark.parametrize("backend", ["torch", pytest.param("ext", marks=BACKENDS[-1].marks)])
@pytest.mark.parametrize("varying", [False, True])
@pytest.mark.parametrize("reverse", [False, True])
def test_gradcheck(backend, varying, reverse):
    a, b, h0 = make(torch.complex128, (2, 9, 3), None if varying else (1, 1, 3))
    a, b, h0 = (t.clone().requires_grad_() for t in (a, b, h0))
    f = lambda a, b, h0: scan(a, b, h0, reverse, backend=backend)  # noqa: E731
    assert torch.autograd.gradcheck(f, (a, b, h0))
    if backend == "torch":  # the backward is built from differentiable ops: second derivatives work too
        assert torch.autograd.gradgradcheck(f, (a, b, h0))


@pytest.mark.parametrize("backend", ["torch", pytest.param("ext", marks=BACKENDS[-1].marks)])
def test_gradcheck_real_a_complex_b(backend):
    """A real decay with complex inputs (promotion inside scan) gets a real gradient."""
    a = (torch.rand(3, dtype=torch.float64) * 0.9).requires_grad_()
    b = torch.randn(2, 12, 3, dtype=torch.complex128, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: scan(a, b, backend=backend), (a, b))


@pytest.mark.parametrize("backend", ["torch", pytest.param("ext", marks=BACKENDS[-1].marks)])
@pytest.mark.parametrize("varying", [False, True])
@pytest.mark.parametrize("needs", ["all", "b"])
def test_gradient_matches_reference_autograd(backend, varying, needs):
    """The custom backward (reverse scan; fused in C++ for ext) equals autograd through the sequential loop."""
    a, b, h0 = make(torch.complex128, (2, 20, 3), None if varying else (1, 1, 3))
    grads = []
    for name in (backend, "ref"):
        ts = [t.clone().requires_grad_(needs == "all" or i == 1) for i, t in enumerate((a, b, h0))]
        for reverse in (False, True):
            out = scan(*ts, reverse=reverse, backend=name)
            (out.real * torch.arange(20.0, dtype=torch.float64).unsqueeze(-1)).sum().backward()
        grads.append([t.grad for t in ts])
    for g1, g2 in zip(*grads):
        assert (g1 is None) == (g2 is None)
        if g1 is not None:
            close(g1, g2, torch.complex128)


def test_bad_inputs_raise_value_error():
    b = torch.randn(2, 5, 3)
    with pytest.raises(ValueError, match="b must"):
        scan(torch.ones(3), torch.randn(3))
    with pytest.raises(ValueError, match="a must be broadcastable"):
        scan(torch.ones(4), b)
    with pytest.raises(ValueError, match="a must be broadcastable"):
        scan(torch.ones(3, 5, 3), b)  # would broadcast b up, not down
    with pytest.raises(ValueError, match="h0 must be broadcastable"):
        scan(torch.ones(3), b, torch.zeros(2, 4))
    with pytest.raises(TypeError, match="floating or complex"):
        scan(torch.ones(3, dtype=torch.long), b)
    with pytest.raises(ValueError, match="backend must be one of"):
        scan(torch.ones(3), b, backend="nope")


def test_auto_choice_on_cpu():
    """backend=None picks the compiled kernel when it works, else the parallel torch scan (never `ref`)."""
    chosen = dispatch.choose("scan", torch.device("cpu"))
    assert chosen == ("ext" if working("ext") else "torch")


def test_triton_is_cuda_only():
    reason = dispatch.status("scan", "triton", torch.device("cpu"))
    assert reason is not None and "cpu" in reason
