"""Cases for the Triton kernels, run by test_triton.py in a subprocess with TRITON_INTERPRET=1 set before triton loads
(the interpreter must be on when triton.language is imported). Run directly: TRITON_INTERPRET=1 python triton_cases.py"""
import itertools
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kernel_helpers import TOL, crandn, near_unit, rel  # noqa: E402

from ssm.kernels.reference import cauchy_ref, vandermonde_ref  # noqa: E402


def ops():
    import ssm.kernels  # noqa: F401 - registers the op modules

    return sys.modules["ssm.kernels.cauchy"], sys.modules["ssm.kernels.vandermonde"]


def case_cauchy_forward(tk, dtype, conj):
    gen = torch.Generator().manual_seed(0)
    v, w, z = crandn(2, 3, 20, dtype=dtype, gen=gen), crandn(3, 20, dtype=dtype, gen=gen) - 1, crandn(70, dtype=dtype, gen=gen)
    out = ops()[0].apply(tk, v, z, w, conj)
    assert rel(out, cauchy_ref(*(t.to(torch.complex128) for t in (v, z, w)), conj=conj)) < TOL[dtype]


def case_vandermonde_forward_near_unit(tk, dtype):
    gen = torch.Generator().manual_seed(1)
    v, x = crandn(2, 3, 20, dtype=dtype, gen=gen), near_unit(3, 20, dtype=dtype, gen=gen)
    L = 2000
    out = ops()[1].apply(tk, v, x, L)
    assert rel(out, vandermonde_ref(*(t.to(torch.complex128) for t in (v, x)), L)) < TOL[dtype]


def case_vandermonde_zero_x_matches_definition(tk):
    v = crandn(1, 3)
    x = torch.tensor([[0, 0.5, -0.5j]], dtype=torch.complex128)
    expected = torch.stack([(v * x ** l if l else v).sum(-1) for l in range(5)], -1)
    assert rel(ops()[1].apply(tk, v, x, 5), expected) < 1e-12


def case_gradients_match_reference(tk):
    gen = torch.Generator().manual_seed(2)
    C, V = ops()
    v, w, z = crandn(2, 3, 5, gen=gen), crandn(3, 5, gen=gen) - 1, crandn(40, gen=gen)
    g = crandn(2, 3, 40, gen=gen)
    res = []
    for f in (lambda *a: C.apply(tk, *a, True), lambda *a: cauchy_ref(*a, conj=True)):
        leaves = [t.clone().requires_grad_() for t in (v, z, w)]
        res.append(torch.autograd.grad(f(*leaves), leaves, g))
    x = near_unit(3, 5, decay=0.1, gen=gen)
    for f in (lambda a, b: V.apply(tk, a, b, 40), lambda a, b: vandermonde_ref(a, b, 40)):
        leaves = [t.clone().requires_grad_() for t in (v, x)]
        res.append(torch.autograd.grad(f(*leaves), leaves, g))
    for a, b in zip(res[0] + res[2], res[1] + res[3]):
        assert rel(a, b) < 1e-10


def case_load_refuses_cpu_without_interpreter(tk):
    os.environ["TRITON_INTERPRET"] = "0"
    try:
        tk.load(torch.device("cpu"))
    except RuntimeError as e:
        assert "CUDA tensors" in str(e)
    else:
        raise AssertionError("load() accepted a CPU device without the interpreter")
    finally:
        os.environ["TRITON_INTERPRET"] = "1"


def main() -> int:
    """Run every case; print one line each; exit status = number of failures."""
    assert os.environ.get("TRITON_INTERPRET") == "1", "set TRITON_INTERPRET=1 before starting python"
    from ssm.kernels import triton_kernels

    tk = triton_kernels.load(torch.device("cpu"))
    dtypes = (torch.complex64, torch.complex128)
    cases = [(case_cauchy_forward, (d, c)) for d, c in itertools.product(dtypes, (False, True))]
    cases += [(case_vandermonde_forward_near_unit, (d,)) for d in dtypes]
    cases += [(f, ()) for f in (case_vandermonde_zero_x_matches_definition, case_gradients_match_reference,
                                case_load_refuses_cpu_without_interpreter)]
    failures = 0
    for f, args in cases:
        try:
            f(tk, *args)
            print(f"ok   {f.__name__}{args}")
        except Exception as e:  # noqa: BLE001 - report every case
            failures += 1
            print(f"FAIL {f.__name__}{args}: {type(e).__name__}: {e}")
    return failures


if __name__ == "__main__":
    sys.exit(main())
