"""torch.compile(fullgraph=True) of each op (auto backend choice, so ext where it is built) matches eager, values
and gradients: the backend choice is a traced constant and every primitive is a torch.library op with a fake."""
import pytest
import torch

import ssm.kernels as K

from kernel_helpers import crandn, near_unit, near_unit_log, rel


def _inputs():
    gen = torch.Generator().manual_seed(0)
    return {
        "cauchy": (lambda v, w: K.cauchy(v, torch.linspace(-3, 3, 40, dtype=torch.float64) * 1j, w, conj=True),
                   (crandn(2, 3, 4, gen=gen), crandn(3, 4, gen=gen) - 1)),
        "vandermonde": (lambda v, x: K.vandermonde(v, x, 50), (crandn(2, 3, 4, gen=gen), near_unit(3, 4, gen=gen))),
        "log_vandermonde": (lambda v, lx: K.log_vandermonde(v, lx, 50),
                            (crandn(2, 3, 4, gen=gen), near_unit_log(3, 4, gen=gen))),
        "log_vandermonde_transpose": (lambda u, lx: K.log_vandermonde_transpose(u, lx),
                                      (torch.randn(2, 3, 50, generator=gen, dtype=torch.float64),
                                       near_unit_log(3, 4, gen=gen))),
        "scan": (lambda a, b: K.scan(a, b, reverse=True), (0.9 * near_unit(4, gen=gen), crandn(2, 30, 4, gen=gen))),
        "fftconv": (lambda u, k: K.fftconv(u, k, bidirectional=True),
                    (torch.randn(2, 3, 20, generator=gen, dtype=torch.float64),
                     torch.randn(2, 3, 20, generator=gen, dtype=torch.float64))),
    }


def _run(fn, args):
    leaves = [a.clone().requires_grad_() for a in args]
    out = fn(*leaves)
    loss = (out.abs() ** 2).sum() if out.is_complex() else (out ** 2).sum()
    return (out, *torch.autograd.grad(loss, leaves))


@pytest.mark.parametrize("op", list(_inputs()))
def test_compiled_op_matches_eager(op):
    torch._dynamo.reset()
    fn, args = _inputs()[op]
    eager = _run(fn, args)
    compiled = _run(torch.compile(fn, fullgraph=True, backend="aot_eager"), args)
    for a, b in zip(compiled, eager):
        assert rel(a, b) < 1e-12


@pytest.mark.slow  # inductor's C++ code generation takes tens of seconds
def test_inductor_compiles_all_ops_in_one_graph():
    """The default backend (inductor, C++ codegen) with every op in one function."""
    torch._dynamo.reset()
    ops = _inputs()

    def f(*args):
        total = 0
        for (fn, _), (a, b) in zip(ops.values(), zip(args[::2], args[1::2])):
            out = fn(a, b)
            total = total + (out.abs() if out.is_complex() else out).sum()
        return total

    args = [t for _, pair in ops.values() for t in pair]
    leaves = [a.clone().requires_grad_() for a in args]
    eager = torch.autograd.grad(f(*leaves), leaves)
    leaves2 = [a.clone().requires_grad_() for a in args]
    compiled = torch.autograd.grad(torch.compile(f, fullgraph=True)(*leaves2), leaves2)
    for a, b in zip(compiled, eager):
        assert rel(a, b) < 1e-10
