"""Probes that may crash run in a child process: a backend that segfaults is reported, never kills the caller;
verdicts are cached on disk under $SSM_CACHE_DIR; keops' console chatter does not reach users."""
import os
import subprocess
import sys

import pytest
import torch

import ssm.kernels as K
from ssm.kernels import dispatch, probe
from ssm.kernels.registry import BackendSpec

from kernel_helpers import crandn

CRASHY = BackendSpec("crashy", "crashing_backend", ("cpu",), ("cauchy",), "do not use crashing_backend", True,
                     "crashy-dist")


@pytest.fixture
def crashy(tmp_path, monkeypatch):
    """The crashing backend, tried first for cauchy on the CPU; a fresh cache dir."""
    monkeypatch.setenv(probe.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(dispatch.ENV_VAR, raising=False)
    dispatch.register_backend(CRASHY, {"cpu": {"cauchy": ("crashy", "ext", "torch")}})
    yield tmp_path / "cache"
    dispatch.unregister_backend("crashy")


def test_segfaulting_backend_is_reported_and_skipped(crashy):
    kind, reason = dispatch.state("cauchy", "crashy", "cpu")
    assert kind == dispatch.FAILED and reason.startswith("crashed the probe process: signal 11"), reason
    (row,) = K.backend_report(["cpu"], ops=["cauchy"], names=["crashy"])
    assert row[3].startswith("failed (crashed the probe process: signal 11") and "Fix: do not use" in row[3]
    v, w, z = crandn(2, 3), crandn(2, 3) - 2, crandn(5)
    assert dispatch.choose("cauchy", "cpu") in ("ext", "torch")  # auto dispatch goes on, in this process
    assert K.cauchy(v, z, w).shape == (2, 5)
    with pytest.raises(RuntimeError, match=r"backend 'crashy' for cauchy does not work on cpu: failed \(crashed the "
                                           r"probe process: signal 11.*Fix: do not use crashing_backend"):
        K.cauchy(v, z, w, backend="crashy")


def test_verdict_is_cached_on_disk_per_environment(crashy, monkeypatch):
    dispatch.state("cauchy", "crashy", "cpu")
    files = list(crashy.rglob("*.json"))
    assert [f.name for f in files] == ["probes.json"]
    key = probe.key("crashy", "crashing_backend", "crashy-dist", torch.device("cpu"))
    assert probe.cached(key)["cauchy"][0] == dispatch.FAILED
    dispatch.reset_cache()  # a new process would only have the disk: no child this time
    monkeypatch.setattr(probe, "run_child", lambda *a, **k: pytest.fail("probed again despite the cache"))
    assert dispatch.state("cauchy", "crashy", "cpu")[0] == dispatch.FAILED
    dispatch.reset_cache(disk=True)
    assert not (crashy / "kernels" / "probes.json").exists()


def test_keops_import_is_quiet():
    """Loading the keops backend prints nothing (pykeops says 'CUDA libraries not found' on CPU machines)."""
    pytest.importorskip("pykeops")
    code = "from ssm.kernels.backends import keops; keops.load()"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env=dict(os.environ))
    assert out.returncode == 0, out.stderr
    assert "KeOps" not in out.stdout + out.stderr and "CUDA" not in out.stdout + out.stderr


def test_bad_timeout_setting_is_reported(monkeypatch):
    monkeypatch.setenv(probe.TIMEOUT_ENV, "soon")
    with pytest.raises(ValueError, match="SSM_PROBE_TIMEOUT must be a number of seconds, got 'soon'"):
        probe.timeout()
