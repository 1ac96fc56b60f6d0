"""Cases for the Triton kernels, run by test_triton.py in a subprocess with TRITON_INTERPRET=1 set before triton
loads (the interpreter must be on when triton.language is imported). Direct: TRITON_INTERPRET=1 python triton_cases.py

Every op the registry gives triton runs forward and backward through the same autograd as on a GPU, against the
op's float64 reference; sizes are small (the interpreter runs each tile with numpy) but cover several n-tiles,
several L-segments of the backward sums (SEG is lowered) and masked tails."""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kernel_helpers import crandn, near_unit, near_unit_log, rel  # noqa: E402


def setup():
    import ssm.kernels  # noqa: F401 - registers the ops
    from ssm.kernels import dispatch
    from ssm.kernels.backends import triton as tk

    tk.SEG = 2 * tk.BL  # several partial segments at these small L
    dispatch._LOADED[("triton", "cpu")] = tk.load(torch.device("cpu"))
    return dispatch


def check(dispatch, op, args, wrt, dtype, tol):
    """Values and gradients of the triton path against the float64 reference."""
    spec = dispatch._OPS[op]
    low = [a.to(dtype if a.is_complex() else dtype.to_real()) if isinstance(a, torch.Tensor) else a for a in args]
    high = [a.to(torch.complex128 if a.is_complex() else torch.float64) if isinstance(a, torch.Tensor) else a
            for a in low]  # the reference sees the same (rounded) inputs
    gen = torch.Generator().manual_seed(3)
    results = []
    for fn, inputs in ((dispatch.implementation(op, "triton"), low), (spec.reference, high)):
        leaves = [a.clone().requires_grad_(i in wrt) if isinstance(a, torch.Tensor) else a for i, a in enumerate(inputs)]
        out = fn(*leaves)
        if not results:
            g = torch.randn(out.shape, generator=gen, dtype=torch.complex128 if out.is_complex() else torch.float64)
        results.append((out, torch.autograd.grad(out, [leaves[i] for i in wrt], g.to(out.dtype))))
    (out, grads), (ref, ref_grads) = results
    assert out.dtype == (dtype if out.is_complex() else dtype.to_real()), (out.dtype, dtype)
    assert rel(out, ref) < tol, ("forward", rel(out, ref))
    for i, a, b in zip(wrt, grads, ref_grads):
        assert rel(a, b) < 10 * tol, (f"gradient {i}", rel(a, b))


def cases():
    gen = torch.Generator().manual_seed(0)
    z = crandn(160, gen=gen)
    w = crandn(3, 20, gen=gen) - 1
    lx = near_unit_log(3, 20, decay=0.05, gen=gen)
    x = torch.exp(lx)
    x[0, 0] = 0
    yield "cauchy", (crandn(2, 3, 20, gen=gen), z, w, False), (0, 1, 2)
    yield "cauchy", (crandn(2, 3, 20, gen=gen), z, w, True), (0, 1, 2)
    yield "vandermonde", (crandn(2, 3, 20, gen=gen), x, 160), (0, 1)
    yield "log_vandermonde", (crandn(2, 3, 20, gen=gen), lx, 160), (0, 1)
    yield "log_vandermonde_transpose", (torch.randn(2, 3, 160, generator=gen, dtype=torch.float64), lx), (0, 1)
    yield "log_vandermonde_transpose", (crandn(2, 3, 160, gen=gen), lx), (0, 1)
    a = 0.9 * near_unit(1, 1, 70, gen=gen)
    yield "scan", (a, crandn(2, 9, 70, gen=gen), crandn(2, 70, gen=gen), False), (0, 1, 2)
    yield "scan", (0.9 * near_unit(2, 9, 70, gen=gen), crandn(2, 9, 70, gen=gen), None, True), (0, 1)


def main() -> int:
    """Run every case in complex128 and complex64; print one line each; exit status = number of failures."""
    assert os.environ.get("TRITON_INTERPRET") == "1", "set TRITON_INTERPRET=1 before starting python"
    dispatch = setup()
    failures = 0
    for op, args, wrt in cases():
        for dtype, tol in ((torch.complex128, 1e-10), (torch.complex64, 2e-6)):
            name = f"{op}{'[conj]' if op == 'cauchy' and args[3] else ''} {dtype}"
            try:
                check(dispatch, op, args, wrt, dtype, tol)
                print(f"ok   {name}")
            except Exception as e:  # noqa: BLE001 - report every case
                failures += 1
                print(f"FAIL {name}: {type(e).__name__}: {e}")
    from ssm.kernels.backends import triton as tk

    os.environ["TRITON_INTERPRET"] = "0"
    try:
        tk.load(torch.device("cpu"))
        print("FAIL load() accepted a CPU device without the interpreter")
        failures += 1
    except RuntimeError as e:
        print("ok   load refuses the CPU without the interpreter" if "CUDA tensors" in str(e) else f"FAIL {e}")
    return failures


if __name__ == "__main__":
    sys.exit(main())
