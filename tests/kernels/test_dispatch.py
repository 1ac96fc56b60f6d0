"""Dispatch: automatic choice by probe, forcing by argument and $SSM_KERNEL_BACKEND, errors that say why, report."""
import warnings

import pytest
import torch

import ssm.kernels as K
from ssm.kernels import dispatch
from ssm.kernels.reference import cauchy_ref

from kernel_helpers import crandn


@pytest.fixture
def fake_op():
    """A throwaway op 'fake' with a fast broken backend, a missing one and a working slow one."""
    def missing(device):
        raise dispatch.BackendNotInstalled("libfoo is not installed")

    def broken(device):
        raise RuntimeError("compiler exploded")

    dispatch.register("fake", dispatch.Backend("missing", lambda: "missing", missing, priority={"cpu": 1},
                                               hint="pip install foo", warn_on_fallback=True))
    dispatch.register("fake", dispatch.Backend("broken", lambda: "broken", broken, priority={"cpu": 2},
                                               hint="set CXX"))
    dispatch.register("fake", dispatch.Backend("slow", lambda: "slow", lambda d: None, priority={"cpu": 3}))
    dispatch.register("fake", dispatch.Backend("gpu", lambda: "gpu", lambda d: None, devices=("cuda",),
                                               priority={"cuda": 1}))
    dispatch.reset_cache()
    yield
    dispatch._BACKENDS.pop("fake")
    dispatch.reset_cache()


def test_auto_skips_failures_and_warns_once(fake_op, monkeypatch):
    monkeypatch.delenv(dispatch.ENV_VAR, raising=False)
    with pytest.warns(RuntimeWarning, match="'missing' is unavailable.*libfoo.*pip install foo.*using 'slow'"):
        assert dispatch.choose("fake", "cpu").fn() == "slow"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert dispatch.choose("fake", "cpu").fn() == "slow"  # second time: silent


def test_states_are_informative(fake_op):
    assert dispatch.state("fake", "missing", "cpu")[0] == dispatch.NOT_INSTALLED
    assert dispatch.state("fake", "broken", "cpu") == (dispatch.FAILED, "RuntimeError: compiler exploded")
    assert dispatch.state("fake", "gpu", "cpu")[0] == dispatch.UNSUPPORTED
    rows = {(r[1], r[2]): r[3] for r in dispatch.report(["cpu"]) if r[0] == "fake"}
    assert rows[("slow", "cpu")] == "ok"
    assert rows[("broken", "cpu")] == "failed (RuntimeError: compiler exploded. Fix: set CXX)"
    assert rows[("missing", "cpu")].startswith("not installed (libfoo is not installed. Fix: pip install foo")


def test_forcing_a_broken_backend_says_why_and_how(fake_op, monkeypatch):
    with pytest.raises(RuntimeError, match="'broken' for fake does not work on cpu: failed: .*exploded. Fix: set CXX"):
        dispatch.choose("fake", "cpu", "broken")
    monkeypatch.setenv(dispatch.ENV_VAR, "broken")
    with pytest.raises(RuntimeError, match=r"forced by \$SSM_KERNEL_BACKEND"):
        dispatch.choose("fake", "cpu")
    with pytest.raises(ValueError, match="backend must be one of"):
        dispatch.choose("fake", "cpu", "nope")


def test_env_forces_per_op_and_globally(fake_op, monkeypatch):
    monkeypatch.setenv(dispatch.ENV_VAR, "fake=slow,cauchy=torch")
    assert dispatch.choose("fake", "cpu").name == "slow"
    assert dispatch.choose("cauchy", "cpu").name == "torch"
    monkeypatch.setenv(dispatch.ENV_VAR, "torch")  # a global name applies to ops that have it; 'fake' has none
    assert dispatch.choose("cauchy", "cpu").name == "torch"
    assert dispatch.choose("fake", "cpu", "slow").name == "slow"


def test_real_ops_choose_a_working_backend_and_agree(monkeypatch):
    monkeypatch.delenv(dispatch.ENV_VAR, raising=False)
    v, w = crandn(3, 4), crandn(3, 4) - 2
    z = crandn(6)
    name = dispatch.choose("cauchy", "cpu").name
    assert dispatch.status("cauchy", name, "cpu") is None
    assert torch.allclose(K.cauchy(v, z, w, conj=True), cauchy_ref(v, z, w, conj=True), atol=1e-12)


def test_ext_is_preferred_on_cpu_when_built(monkeypatch):
    monkeypatch.delenv(dispatch.ENV_VAR, raising=False)
    if dispatch.state("vandermonde", "ext", "cpu")[0] != dispatch.OK:
        pytest.skip("ssm._C not built")
    assert dispatch.choose("vandermonde", "cpu").name == "ext"
    assert dispatch.choose("cauchy", "cpu").name == "ext"


def test_backend_report_rows_cover_ops_and_backends():
    rows = K.backend_report(["cpu"])
    ops = {r[0] for r in rows}
    assert {"cauchy", "vandermonde"} <= ops
    names = {r[1] for r in rows if r[0] == "cauchy"}
    assert {"torch", "ext", "keops", "triton"} <= names
    assert all(r[3] == "ok" or r[3].split(" (")[0] in ("failed", "not installed", "unsupported") for r in rows)


def test_ext_missing_falls_back_with_one_warning(monkeypatch):
    """Simulate an install without ssm._C: auto choice warns once, then uses the next backend."""
    import sys

    monkeypatch.delenv(dispatch.ENV_VAR, raising=False)
    monkeypatch.setitem(sys.modules, "ssm._C", None)  # import ssm._C now raises ImportError
    dispatch.reset_cache()
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


def test_import_loads_no_optional_backend():
    """keops, triton and the compiled library load on first use, not at `import ssm.kernels`."""
    import subprocess
    import sys

    code = ("import sys, ssm, ssm.kernels; "
            "print([m for m in ('pykeops', 'keopscore', 'triton', 'ssm._C') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
