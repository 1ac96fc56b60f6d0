"""Triton kernels of every op, checked on the CPU by the Triton interpreter (small sizes, one subprocess)."""
import os
import subprocess
import sys

import pytest

pytest.importorskip("triton")


def test_triton_kernels_under_interpreter():
    """Runs triton_cases.py in a fresh interpreter with TRITON_INTERPRET=1 (it must be set before triton loads)."""
    env = dict(os.environ, TRITON_INTERPRET="1")
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "triton_cases.py")
    proc = subprocess.run([sys.executable, script], env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert proc.stdout.count("ok ") == 17, proc.stdout
