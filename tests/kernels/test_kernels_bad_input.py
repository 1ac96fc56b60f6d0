"""Bad and edge-case input to every op and to `ssm bench`: each case gets a correct result or a clear
ValueError/TypeError naming the argument, what was expected and what was received (table-driven)."""
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import pytest
import torch

from ssm.kernels import cauchy, dispatch, fftconv, log_vandermonde, log_vandermonde_transpose, scan, vandermonde

NAN = float("nan")


def c(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.complex(torch.randn(*shape, generator=g, dtype=torch.float64),
                         torch.randn(*shape, generator=g, dtype=torch.float64))


def r(*shape, seed=0, dtype=torch.float64):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64).to(dtype)


def powers(x, L):
    """x^l by repeated multiplication in complex128, x^0 = 1."""
    out = [torch.ones_like(x, dtype=torch.complex128)]
    for _ in range(L - 1):
        out.append(out[-1] * x)
    return torch.stack(out, -1)


def vdm(v, x, L):
    return (v.unsqueeze(-1) * powers(x, L)).sum(-2)


def scan_loop(a, b, h0=None):
    h = torch.zeros_like(b[..., 0, :]) if h0 is None else h0
    out = []
    for t in range(b.shape[-2]):
        h = a * h + b[..., t, :]
        out.append(h)
    return torch.stack(out, -2)


def same(a, b, tol=1e-10):
    """Equal NaN pattern, shapes, and values to `tol` relative."""
    if a.shape != b.shape or not torch.equal(a.isnan(), b.isnan()):
        return False
    ok = ~b.isnan()
    if not ok.any():
        return True
    a, b = a[ok].to(torch.complex128), b[ok].to(torch.complex128)
    return bool(((a - b).abs().max() <= tol * max(b.abs().max().item(), 1e-30)).item())


@dataclass
class Case:
    name: str
    call: Callable  # call(monkeypatch) -> result
    error: Optional[type] = None  # expected exception type, or None for a result
    match: str = ""  # regex the message must contain (names the argument), or a result check below
    check: Optional[Callable] = None  # check(result) -> bool when no error is expected


def env(value, fn):
    def call(mp):
        mp.setenv(dispatch.ENV_VAR, value)
        dispatch.reset_cache()
        return fn()
    return call


def cli(*args):
    def call(mp):
        return subprocess.run([sys.executable, "-m", "ssm.cli", *args], capture_output=True, text=True, timeout=600,
                              env=dict(os.environ))
    return call


V, W, Z = c(2, 3), c(2, 3, seed=1) - 2, c(5, seed=2)
X0 = torch.tensor([[0, 0.5, 0.3j]], dtype=torch.complex128)
XNAN = torch.tensor([[NAN, 0.5, 0.3j]], dtype=torch.complex128)
V1 = c(1, 3, seed=3)
A, B = 0.9 * c(3, seed=4) / c(3, seed=4).abs(), c(2, 7, 3, seed=5)

CASES = [
    # $SSM_KERNEL_BACKEND
    Case("env-nonsense", env("nonsense", lambda: cauchy(V, Z, W)), ValueError, r"SSM_KERNEL_BACKEND.*ext.*'nonsense'"),
    Case("env-uppercase", env("TORCH", lambda: cauchy(V, Z, W)), ValueError, r"SSM_KERNEL_BACKEND.*'TORCH'"),
    Case("env-list-without-ops", env("ext,torch", lambda: cauchy(V, Z, W)), ValueError,
         r"SSM_KERNEL_BACKEND.*'ext,torch'"),
    Case("env-unknown-backend-for-op", env("cauchy=nope", lambda: cauchy(V, Z, W)), ValueError,
         r"SSM_KERNEL_BACKEND.*cauchy=nope"),
    Case("env-per-op-ok", env("cauchy=torch", lambda: cauchy(V, Z, W)), check=lambda y: y.shape == (2, 5)),
    # backend argument
    Case("backend-unknown", lambda mp: cauchy(V, Z, W, backend="nope"), ValueError, r"backend must be one of.*'nope'"),
    Case("backend-not-a-string", lambda mp: vandermonde(V, X0, 3, backend=3), TypeError, r"backend.*int"),
    # special values: every backend agrees with the definition (0^0 = 1, NaN propagates)
    *[Case(f"vandermonde-zero-x-{b}", (lambda b: lambda mp: vandermonde(V1, X0, 4, backend=b))(b),
           check=lambda y: same(y, vdm(V1, X0, 4))) for b in ("torch", "ext")],
    *[Case(f"vandermonde-nan-x-{b}", (lambda b: lambda mp: vandermonde(V1, XNAN, 4, backend=b))(b),
           check=lambda y: same(y, vdm(V1, XNAN, 4))) for b in ("torch", "ext")],
    *[Case(f"log-vandermonde-log-zero-{b}", (lambda b: lambda mp: log_vandermonde(V1, torch.log(X0), 4, backend=b))(b),
           check=lambda y: same(y, vdm(V1, X0, 4))) for b in ("torch", "ext")],
    Case("vandermonde-grad-at-zero", lambda mp: _grad_at_zero(),
        check=lambda g: bool(torch.isfinite(g).all()) and same(g[0, 0], V1[0, 0].conj())),
    Case("cauchy-nan-v", lambda mp: cauchy(torch.tensor([[NAN, 1]], dtype=torch.complex128), Z,
                                           W[:1, :2]), check=lambda y: bool(y.isnan().all())),
    # L
    Case("vandermonde-float-L", lambda mp: vandermonde(V, W, 3.7), TypeError, r"L must be an int, got float 3.7"),
    Case("vandermonde-bool-L", lambda mp: vandermonde(V, W, True), TypeError, r"L must be a Python int"),
    Case("vandermonde-zero-L", lambda mp: vandermonde(V, W, 0), ValueError, r"L must be an int >= 1, got 0"),
    Case("vandermonde-numpy-int-L", lambda mp: vandermonde(V, X0[:, :3].expand(2, 3), np.int64(4)),
         check=lambda y: y.shape == (2, 4)),
    Case("log-vandermonde-float-L", lambda mp: log_vandermonde(V, W, 2.0), TypeError, r"L must be an int"),
    Case("vandermonde-tensor-L", lambda mp: vandermonde(V, W, torch.tensor(4)), TypeError, r"L must be a Python int"),
    # fftconv
    Case("fftconv-1d-u", lambda mp: fftconv(r(8), r(1, 8)), ValueError, r"u must have shape \(\.\.\., H, L\)"),
    Case("fftconv-integer-u", lambda mp: fftconv(torch.ones(1, 2, 8, dtype=torch.long), r(2, 8)), TypeError,
         r"u must be a floating or complex tensor, got dtype torch.int64"),
    Case("fftconv-integer-k", lambda mp: fftconv(r(1, 2, 8), torch.ones(2, 8, dtype=torch.int32)), TypeError, r"k must"),
    Case("fftconv-complex-u", lambda mp: fftconv(c(1, 2, 8), r(2, 8)), TypeError, r"u must be a real"),
    Case("fftconv-wrong-H", lambda mp: fftconv(r(1, 2, 8), r(3, 8)), ValueError, r"k must have shape \(H, L\) with H = 2"),
    Case("fftconv-short-k", lambda mp: fftconv(r(1, 2, 8), r(2, 5)), ValueError, r"length >= L = 8, got \(2, 5\)"),
    Case("fftconv-bad-D", lambda mp: fftconv(r(1, 2, 8), r(2, 8), r(3)), ValueError, r"D must have shape \(H,\)"),
    Case("fftconv-0d-D", lambda mp: fftconv(r(1, 2, 8), r(2, 8), torch.tensor(1.0)), ValueError, r"D must have shape"),
    Case("fftconv-bidirectional-2d-k", lambda mp: fftconv(r(1, 2, 8), r(2, 8), bidirectional=True), ValueError,
         r"k must have shape \(2, H, L\)"),
    Case("fftconv-half", lambda mp: fftconv(r(1, 2, 8, dtype=torch.float16), r(2, 8, dtype=torch.float16)),
         check=lambda y: y.dtype == torch.float16 and bool(torch.isfinite(y).all())),
    # numpy inputs: TypeError naming the argument
    Case("numpy-v-cauchy", lambda mp: cauchy(V.numpy(), Z, W), TypeError, r"v must be a torch.Tensor, got numpy.ndarray"),
    Case("numpy-x-vandermonde", lambda mp: vandermonde(V, W.numpy(), 3), TypeError, r"x must be a torch.Tensor"),
    Case("numpy-log-x", lambda mp: log_vandermonde_transpose(r(2, 5), W.numpy()), TypeError, r"log_x must be a torch"),
    Case("numpy-b-scan", lambda mp: scan(A, B.numpy()), TypeError, r"b must be a torch.Tensor"),
    Case("numpy-u-fftconv", lambda mp: fftconv(r(1, 2, 8).numpy(), r(2, 8)), TypeError, r"u must be a torch.Tensor"),
    Case("list-z-cauchy", lambda mp: cauchy(V, [1j, 2j], W), TypeError, r"z must be a torch.Tensor, got builtins.list"),
    # 0-d and wrong ranks
    Case("cauchy-0d-v", lambda mp: cauchy(torch.tensor(1 + 1j), Z, W), ValueError, r"v must have shape \(\.\.\., N\)"),
    Case("cauchy-2d-z", lambda mp: cauchy(V, Z.reshape(5, 1), W), ValueError, r"z must be 1-D \(L,\), got shape \(5, 1\)"),
    Case("cauchy-conj-string", lambda mp: cauchy(V, Z, W, conj="yes"), TypeError, r"conj must be a bool"),
    Case("vandermonde-0d-x", lambda mp: vandermonde(V, torch.tensor(0.5j), 3), ValueError, r"x must have shape"),
    Case("cauchy-N-mismatch", lambda mp: cauchy(V, Z, c(2, 4)), ValueError, r"same last dim N.*\(2, 3\).*\(2, 4\)"),
    Case("vandermonde-not-broadcastable", lambda mp: vandermonde(c(2, 3), c(4, 3), 3), ValueError,
         r"broadcastable batch dims"),
    Case("transpose-not-broadcastable", lambda mp: log_vandermonde_transpose(r(2, 5), c(3, 4)), ValueError,
         r"u and log_x must have broadcastable batch dims"),
    Case("scan-1d-b", lambda mp: scan(A, c(3)), ValueError, r"b must have shape \(\.\.\., L, N\)"),
    Case("scan-0d-a", lambda mp: scan(torch.tensor(0.5, dtype=torch.float64), B),
         check=lambda y: same(y, scan_loop(torch.tensor(0.5, dtype=torch.float64), B))),
    Case("scan-integer-b", lambda mp: scan(A, torch.ones(2, 3, 3, dtype=torch.long)), TypeError, r"b must be a floating"),
    Case("scan-bad-h0", lambda mp: scan(A, B, c(2, 4)), ValueError, r"h0 must be broadcastable to \(2, 3\)"),
    Case("scan-bad-a", lambda mp: scan(c(4), B), ValueError, r"a must be broadcastable to b"),
    Case("scan-reverse-string", lambda mp: scan(A, B, reverse="yes"), TypeError, r"reverse must be a bool"),
    # half precision scan: computed in float32, returned in the input dtype
    Case("scan-half", lambda mp: scan(torch.full((3,), 0.5, dtype=torch.float16), r(2, 7, 3, dtype=torch.float16)),
         check=lambda y: y.dtype == torch.float16 and same(y.double(), scan_loop(
             torch.full((3,), 0.5, dtype=torch.float64), r(2, 7, 3, dtype=torch.float16).double()), 2e-3)),
    Case("scan-bfloat16", lambda mp: scan(torch.full((3,), 0.5, dtype=torch.bfloat16), r(2, 7, 3, dtype=torch.bfloat16)),
         check=lambda y: y.dtype == torch.bfloat16 and bool(torch.isfinite(y).all())),
    # empty inputs and N = 0
    Case("cauchy-N0", lambda mp: cauchy(c(2, 0), Z, c(2, 0)), check=lambda y: y.shape == (2, 5) and not y.abs().any()),
    Case("cauchy-empty-batch", lambda mp: cauchy(c(0, 3), Z, c(0, 3)), check=lambda y: y.shape == (0, 5)),
    Case("cauchy-L0", lambda mp: cauchy(V, c(0), W), check=lambda y: y.shape == (2, 0)),
    Case("vandermonde-N0", lambda mp: vandermonde(c(2, 0), c(2, 0), 4), check=lambda y: y.shape == (2, 4)
         and not y.abs().any()),
    Case("vandermonde-empty-batch", lambda mp: vandermonde(c(0, 3), c(0, 3), 4), check=lambda y: y.shape == (0, 4)),
    Case("log-vandermonde-N0", lambda mp: log_vandermonde(c(2, 0), c(2, 0), 4), check=lambda y: y.shape == (2, 4)),
    Case("transpose-N0", lambda mp: log_vandermonde_transpose(r(2, 5), c(2, 0)), check=lambda y: y.shape == (2, 0)),
    Case("transpose-empty-batch", lambda mp: log_vandermonde_transpose(r(0, 5), c(3)), check=lambda y: y.shape == (0, 3)),
    Case("transpose-L0", lambda mp: log_vandermonde_transpose(r(2, 0), c(2, 3)), ValueError, r"L >= 1"),
    Case("scan-empty-batch", lambda mp: scan(A, c(0, 7, 3)), check=lambda y: y.shape == (0, 7, 3)),
    Case("scan-N0", lambda mp: scan(c(0), c(2, 7, 0)), check=lambda y: y.shape == (2, 7, 0)),
    Case("fftconv-empty-batch", lambda mp: fftconv(r(0, 2, 8), r(2, 8)), check=lambda y: y.shape == (0, 2, 8)),
    # broadcasting promised by the docstrings
    Case("cauchy-w-more-batch-than-v", lambda mp: cauchy(c(3, 4), Z, c(2, 3, 4) - 2),
         check=lambda y: same(y, (c(3, 4).unsqueeze(-1) / (Z - (c(2, 3, 4) - 2).unsqueeze(-1))).sum(-2))),
    Case("vandermonde-v-1d-x-2d", lambda mp: vandermonde(c(3), X0.expand(2, 3), 4),
         check=lambda y: same(y, vdm(c(3).expand(2, 3), X0.expand(2, 3), 4))),
    Case("transpose-u-1d", lambda mp: log_vandermonde_transpose(r(6), torch.log(X0[:, 1:])),
         check=lambda y: same(y, (r(6).to(torch.complex128) * powers(X0[:, 1:], 6)).sum(-1))),
    Case("transpose-u-batched-log-x-1d", lambda mp: log_vandermonde_transpose(r(2, 3, 6), torch.log(X0[0, 1:])),
         check=lambda y: same(y, (r(2, 3, 6).to(torch.complex128).unsqueeze(-2) * powers(X0[0, 1:], 6)).sum(-1))),
    Case("log-vandermonde-real-log-x", lambda mp: log_vandermonde(V1, torch.tensor([[-0.1, -1.0, 0.0]],
                                                                                   dtype=torch.float64), 4),
         check=lambda y: same(y, vdm(V1, torch.exp(torch.tensor([[-0.1, -1.0, 0.0]], dtype=torch.float64)) + 0j, 4))),
    # ssm bench
    Case("bench-unknown-op", cli("bench", "kernels", "--ops", "nope"),
         check=lambda p: p.returncode != 0 and "unknown op" in p.stderr and "cauchy" in p.stderr),
    Case("bench-unknown-subcommand", cli("bench", "layerz"), check=lambda p: p.returncode != 0 and "usage" in p.stderr),
    Case("bench-cpu-is-quiet", cli("bench", "kernels", "--device", "cpu", "--ops", "cauchy", "--sizes", "4x4x64",
                                   "--backends", "torch,ext", "--repeats", "1"),
         check=lambda p: p.returncode == 0 and "| 4x4x64 | ext |" in p.stdout
         and not any(s in p.stdout + p.stderr for s in ("USDT", "gpuGetDeviceCount", "profiler_start"))),
]


def _grad_at_zero():
    x = X0.clone().requires_grad_()
    g = torch.zeros(1, 3, dtype=torch.complex128)
    g[0, 1] = 1
    return torch.autograd.grad(vandermonde(V1, x, 3), x, g)[0]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    monkeypatch.delenv(dispatch.ENV_VAR, raising=False)
    yield
    monkeypatch.delenv(dispatch.ENV_VAR, raising=False)
    dispatch.reset_cache()


@pytest.mark.parametrize("case", CASES, ids=[k.name for k in CASES])
def test_bad_input(case, monkeypatch):
    if case.error is not None:
        with pytest.raises(case.error, match=case.match):
            case.call(monkeypatch)
    else:
        assert case.check(case.call(monkeypatch)), case.name


def test_case_count():
    """The audit table: how many cases it holds (reported in docs/kernels.md)."""
    assert len(CASES) == len({k.name for k in CASES}) >= 70
