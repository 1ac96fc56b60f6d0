"""Every op with every registered backend that runs on the CPU: values and gradients against the op's reference,
and gradcheck in float64. The (op, backend) pairs come from the registry, so a new backend or op is covered."""
import pytest
import torch

from ssm.kernels import dispatch, registry

from kernel_helpers import TOL, case, rel, registry_backends, usable


def grads(fn, args, wrt, g=None):
    leaves = [a.detach().clone().requires_grad_(i in wrt) if isinstance(a, torch.Tensor) else a
              for i, a in enumerate(args)]
    out = fn(*leaves)
    if g is None:
        gen = torch.Generator().manual_seed(7)
        g = torch.randn(out.shape, generator=gen, dtype=out.dtype)
    return out, g, torch.autograd.grad(out, [leaves[i] for i in wrt], g.to(out.dtype))


PAIRS = [pytest.param(op, *p.values, marks=p.marks, id=f"{op}-{p.id}") for op in registry.OPS
         for p in registry_backends(op, exclude=())]


@pytest.mark.parametrize("op, backend", PAIRS)
@pytest.mark.parametrize("dtype", [torch.complex128, torch.complex64], ids=["c128", "c64"])
def test_backend_matches_reference(op, backend, dtype):
    usable(op, backend)
    args, wrt = case(op, dtype)
    spec = dispatch._OPS[op]
    out, g, got = grads(dispatch.implementation(op, backend), args, wrt)
    ref_args = tuple(a.to(torch.complex128 if a.is_complex() else torch.float64) if isinstance(a, torch.Tensor) else a
                     for a in args)
    ref, _, want = grads(spec.reference, ref_args, wrt, g)
    assert out.dtype == (dtype if out.is_complex() else dtype.to_real())
    tol = TOL[dtype]
    assert rel(out, ref) < tol, "forward"
    for i, a, b in zip(wrt, got, want):
        assert a.shape == args[i].shape
        assert rel(a, b) < tol * 10, f"gradient of argument {i}"


@pytest.mark.parametrize("op, backend", PAIRS)
def test_gradcheck_float64(op, backend):
    usable(op, backend)
    args, wrt = case(op, torch.complex128, small=True)
    leaves = tuple(a.detach().clone().requires_grad_(i in wrt) if isinstance(a, torch.Tensor) else a
                   for i, a in enumerate(args))
    fn = dispatch.implementation(op, backend)
    assert torch.autograd.gradcheck(fn, leaves, fast_mode=True)


@pytest.mark.parametrize("op", registry.OPS)
def test_every_op_has_a_reference_probe_and_cpu_backend(op):
    spec = dispatch._OPS[op]
    args, wrt = spec.probe_case(torch.device("cpu"))
    assert all(isinstance(args[i], torch.Tensor) for i in wrt)
    assert registry.PRIORITY["cpu"][op] and registry.PRIORITY["cuda"][op]
    assert dispatch.choose(op, "cpu") in registry.PRIORITY["cpu"][op]


def test_priority_lists_name_registered_backends_of_the_op():
    names = {b.name: b for b in registry.BACKENDS}
    for device, table in registry.PRIORITY.items():
        assert set(table) == set(registry.OPS)
        for op, order in table.items():
            for n in order:
                assert op in names[n].ops and device in names[n].devices, (device, op, n)
