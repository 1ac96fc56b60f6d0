"""setup.py switches: SSM_BUILD_EXT / SSM_BUILD_CUDA semantics, checked without compiling (`setup.py --version`)."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def setup_py(**env):
    """Run `python setup.py --version` (evaluates the extension list, builds nothing) with extra environment."""
    full = dict(os.environ, **env)
    return subprocess.run([sys.executable, "setup.py", "--version"], cwd=ROOT, env=full, capture_output=True,
                          text=True, timeout=300)


def test_bad_cuda_switch_is_rejected():
    out = setup_py(SSM_BUILD_CUDA="maybe")
    assert out.returncode != 0 and "SSM_BUILD_CUDA must be 0, 1 or auto, got 'maybe'" in out.stderr


def test_required_cuda_without_toolkit_fails_with_reason():
    out = setup_py(SSM_BUILD_CUDA="1", CUDA_HOME="/nonexistent-cuda")
    assert out.returncode != 0
    assert "SSM_BUILD_CUDA=1 but CUDA cannot be built" in out.stderr and "set CUDA_HOME" in out.stderr


def test_auto_without_toolkit_builds_cpu_only():
    out = setup_py(SSM_BUILD_CUDA="auto", CUDA_HOME="/nonexistent-cuda")
    assert out.returncode == 0, out.stderr
    assert "building the CPU kernels only" in out.stdout and "/nonexistent-cuda" in out.stdout


def test_no_extension_reads_no_other_switch():
    out = setup_py(SSM_BUILD_EXT="0", SSM_BUILD_CUDA="maybe")  # the CUDA switch is not even read
    assert out.returncode == 0, out.stderr
