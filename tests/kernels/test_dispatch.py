"""Dispatch: automatic choice by probe and priority table, forcing by argument and $SSM_KERNEL_BACKEND (with errors
listing the valid values), fallback warnings, the report."""
import subprocess
import sys
import warnings

import pytest
import torch

import ssm.kernels as K
from ssm.kernels import dispatch
from ssm.kernels.ops.cauchy import cauchy_ref
from ssm.kernels.registry import BackendSpec

from kernel_helpers import crandn


def _raise(exc):
    def fn(*args):
        raise exc
    return fn


@pytest.fixture
def fake_op():
    """An op 'fake' with a missing backend, a broken one, a working slow one and a GPU-only one."""
    dispatch.register_op(dispatch.OpSpec("fake", lambda x: 2 * x, lambda name, x: None,
                                         lambda d: ((torch.ones(3, dtype=torch.float64, device=d),), (0,)), {
        "missing": _raise(dispatch.BackendNotInstalled("libfoo is not installed")),
        "broken": _raise(RuntimeError("compiler exploded")),
        "slow": lambda x: 2 * x,
        "gpu": lambda x: 2 * x,
    }))
    specs = [BackendSpec("missing", "", ("cpu",), ("fake",), "pip install foo", warn_on_fallback=True),
             BackendSpec("broken", "", ("cpu",), ("fake",), "set CXX"),
             BackendSpec("slow", "", ("cpu",), ("fake",)),
             BackendSpec("gpu", "", ("cuda",), ("fake",))]
    for s in specs:
        dispatch.register_backend(s, {"cpu": {"fake": ("missing", "broken", "slow")}, "cuda": {"fake": ("gpu",)}})
    yield
    for s in specs:
        dispatch.unregister_backend(s.name)
    dispatch._OPS.pop("fake")


def test_auto_skips_failures_and_warns_once(fake_op, monkeypatch):
    monkeypatch.delenv(dispatch.ENV_VAR, raising=False)
    with pytest.warns(RuntimeWarning, match="'missing' is unavailable.*libfoo.*pip install foo.*using 'slow'"):
        assert dispatch.choose("fake", "cpu") == "slow"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert dispatch.choose("fake", "cpu") == "slow"  # second time: silent


def test_states_are_informative(fake_op):
    assert dispatch.state("fake", "missing", "cpu")[0] == dispatch.NOT_INSTALLED
    assert dispatch.state("fake", "broken", "cpu") == (dispatch.FAILED, "RuntimeError: compiler exploded")
    assert dispatch.state("fake", "gpu", "cpu")[0] == dispatch.UNSUPPORTED
    rows = {(r[1], r[2]): r[3] for r in dispatch.report(["cpu"], ops=["fake"])}
    assert rows[("slow", "cpu")] == "ok"
    assert rows[("broken", "cpu")] == "failed (RuntimeError: compiler exploded. Fix: set CXX)"
    assert rows[("missing", "cpu")].startswith("not installed (libfoo is not installed. Fix: pip install foo")


def test_forcing_a_broken_backend_says_why_and_how(fake_op, monkeypatch):
    with pytest.raises(RuntimeError, match=r"'broken' for fake does not work on cpu: failed \(.*exploded. Fix: set CXX"):
        dispatch.choose("fake", "cpu", "broken")
    monkeypatch.setenv(dispatch.ENV_VAR, "fake=broken")
    with pytest.raises(RuntimeError, match=r"forced by \$SSM_KERNEL_BACKEND"):
        dispatch.choose("fake", "cpu")
    with pytest.raises(ValueError, match=r"backend must be one of \['broken', 'gpu', 'missing', 'slow'\]"):
        dispatch.choose("fake", "cpu", "nope")


def test_env_forces_per_op_and_globally(fake_op, monkeypatch):
    monkeypatch.setenv(dispatch.ENV_VAR, "fake=slow,cauchy=torch")
    assert dispatch.choose("fake", "cpu") == "slow"
    assert dispatch.choose("cauchy", "cpu") == "torch"
    monkeypatch.setenv(dispatch.ENV_VAR, "torch")  # a global name applies to the ops that have it; 'fake' has none
    assert dispatch.choose("cauchy", "cpu") == "torch"
    assert dispatch.choose("fake", "cpu", "slow") == "slow"


@pytest.mark.parametrize("value", ["nonsense", "TORCH", "ext,torch", "cauchy=nope", "nope=torch", "scan=keops",
                                   "cauchy="])
def test_bad_env_value_is_an_error_listing_the_valid_values(monkeypatch, value):
    monkeypatch.setenv(dispatch.ENV_VAR, value)
    with pytest.raises(ValueError, match=r"SSM_KERNEL_BACKEND.*(ext, keops|op=backend).*got '" + value):
        K.cauchy(crandn(2, 3), crandn(4), crandn(2, 3))


def test_real_ops_choose_a_working_backend_and_agree(monkeypatch):
    monkeypatch.delenv(dispatch.ENV_VAR, raising=False)
    v, w, z = crandn(3, 4), crandn(3, 4) - 2, crandn(6)
    name = dispatch.choose("cauchy", "cpu")
    assert dispatch.status("cauchy", name, "cpu") is None
    expected = "ext" if dispatch.state("cauchy", "ext", "cpu")[0] == dispatch.OK else "torch"
    assert name == expected
    assert torch.allclose(K.cauchy(v, z, w, conj=True), cauchy_ref(v, z, w, conj=True), atol=1e-12)


def test_ext_missing_falls_back_with_one_warning(monkeypatch):
    """Without ssm._C, auto choice warns once, then uses the next working backend (keops marked absent here)."""
    monkeypatch.delenv(dispatch.ENV_VAR, raising=False)
    monkeypatch.setitem(sys.modules, "ssm._C", None)  # import ssm._C now raises ImportError
    monkeypatch.setattr(dispatch, "_LOADED", {})
    dispatch.reset_cache()
    for op in ("cauchy", "vandermonde"):
        dispatch._STATE[(op, "keops", "cpu")] = (dispatch.NOT_INSTALLED, "not in this test")
    try:
        with pytest.warns(RuntimeWarning, match="'ext' is unavailable.*not installed.*ssm._C is not built"):
            K.vandermonde(crandn(2, 3), crandn(2, 3) * 0.5, 5)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            K.cauchy(crandn(2, 3), crandn(4), crandn(2, 3))
        with pytest.raises(RuntimeError, match="pip install --no-build-isolation"):
            K.vandermonde(crandn(2, 3), crandn(2, 3), 5, backend="ext")
    finally:
        dispatch.reset_cache()


@pytest.mark.parametrize("mode", [torch.no_grad, torch.inference_mode])
def test_first_call_under_no_grad_or_inference_mode_probes_correctly(monkeypatch, mode):
    """The first op call of a process may come from evaluation code: its probes still run backward."""
    monkeypatch.delenv(dispatch.ENV_VAR, raising=False)
    dispatch.reset_cache()
    with mode():
        K.fftconv(torch.randn(1, 2, 8), torch.randn(2, 8))
        K.vandermonde(crandn(2, 3), crandn(2, 3) * 0.5, 5)
    assert dispatch.state("fftconv", "torch", "cpu") == (dispatch.OK, None)
    assert dispatch.state("vandermonde", "torch", "cpu") == (dispatch.OK, None)
    assert dispatch.state("vandermonde", "ext", "cpu")[0] in (dispatch.OK, dispatch.NOT_INSTALLED)


def test_backend_report_rows_cover_every_registered_pair():
    rows = K.backend_report(["cpu"], names=["torch", "ref", "ext"])  # keops, triton: test_probe.py
    assert {(r[0], r[1]) for r in rows} >= {("cauchy", "torch"), ("cauchy", "ext"), ("scan", "ref"),
                                            ("log_vandermonde_transpose", "ext"), ("fftconv", "torch")}
    assert all(r[3] == "ok" or r[3].split(" (")[0] in ("failed", "not installed", "unsupported") for r in rows)


def test_import_loads_no_optional_backend():
    """keops, triton and the compiled library load on first use, not at `import ssm.kernels`."""
    code = ("import sys, ssm, ssm.kernels; "
            "print([m for m in ('pykeops', 'keopscore', 'triton', 'ssm._C') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
