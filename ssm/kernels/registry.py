"""The one table of kernel backends and the order in which `backend=None` tries them.

Adding a backend: write ssm/kernels/backends/<name>.py (load(device) and its primitives for every op it supports,
see docs/kernels.md) and add one `BackendSpec` line to BACKENDS (and its name to PRIORITY where it should be tried).
Adding an op: write ssm/kernels/ops/<op>.py and add its name to OPS.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Tuple

OPS = ("cauchy", "vandermonde", "log_vandermonde", "log_vandermonde_transpose", "scan", "fftconv")
_VANDERMONDE = ("vandermonde", "log_vandermonde", "log_vandermonde_transpose")


@dataclass(frozen=True)
class BackendSpec:
    """One backend: where its primitives live, where it runs, how it is probed and how to fix it."""

    name: str
    module: str  # importable module with load(device) and the primitives; "" = pure torch inside the op modules
    devices: Tuple[str, ...]  # device types it can run on
    ops: Tuple[str, ...]  # ops it implements
    hint: str = ""  # how to fix a failure (appended to errors and `ssm doctor`)
    isolated: bool = False  # probe in a child process (it may crash the interpreter: JIT compilers, pykeops)
    package: str = ""  # distribution whose version keys the cached probe verdict
    warn_on_fallback: bool = False  # warn once when `backend=None` has to skip it


EXT_HINT = ("rebuild the extension: `pip install --no-build-isolation -e .` (needs a C++ compiler; "
            "SSM_BUILD_CUDA=1 and CUDA_HOME for the GPU kernels), then `ssm doctor`")
KEOPS_HINT = ("pykeops compiles with the system C++ compiler (and nvrtc on GPUs) on first use: install g++ "
              "(or set CXX), clear ~/.cache/keops* after upgrades, `pip install pykeops`; then `ssm doctor --reprobe`")
TRITON_HINT = "pip install triton (needs a CUDA GPU; TRITON_INTERPRET=1 runs it slowly on the CPU for tests)"

_PKG = "ssm.kernels.backends."
BACKENDS: Tuple[BackendSpec, ...] = (
    BackendSpec("torch", "", ("cpu", "cuda"), OPS),
    BackendSpec("ref", "", ("cpu", "cuda"), ("scan",)),  # the sequential loop: only when asked for, the oracle
    BackendSpec("ext", _PKG + "ext", ("cpu", "cuda"), ("cauchy", "scan") + _VANDERMONDE, EXT_HINT, False, "ssm",
                warn_on_fallback=True),
    BackendSpec("keops", _PKG + "keops", ("cpu", "cuda"), ("cauchy",) + _VANDERMONDE, KEOPS_HINT, True, "pykeops"),
    BackendSpec("triton", _PKG + "triton", ("cuda",), ("cauchy", "scan") + _VANDERMONDE, TRITON_HINT, True, "triton"),
)

# Order tried by `backend=None`, per device type and op; a backend missing from a list is used only when forced.
# CPU: the ext kernels are measured fastest for every op (docs/kernels.md: `ssm bench kernels --device cpu`,
# 2-core machine); keops beats torch's materialised reference only in memory.
# CUDA: from fwd+bwd medians on one H200 (complex64, `ssm bench kernels --device cuda`) of the previous kernel
# generation: cauchy triton 0.65 / ext 0.94 ms at 256x32x4096 and 4.3 / 10.1 ms at 1024x32x16384, so triton
# first; vandermonde ext 2.2 / triton 3.8 ms at 256x64x16384 and 4.0 / 7.7 ms at 1024x32x16384, so ext first.
# The log-space ops share the Vandermonde kernels' structure and follow their order. Rerun
# benchmarks/gpu/run.sh after changing the GPU kernels and update these lists from its tables.
_CPU = ("ext", "keops", "torch")
PRIORITY: Dict[str, Dict[str, Tuple[str, ...]]] = {
    "cpu": {**{op: _CPU for op in ("cauchy",) + _VANDERMONDE}, "scan": ("ext", "torch"), "fftconv": ("torch",)},
    "cuda": {
        "cauchy": ("triton", "ext", "keops", "torch"),
        **{op: ("ext", "triton", "keops", "torch") for op in _VANDERMONDE},
        "scan": ("ext", "triton", "torch"),
        "fftconv": ("torch",),
    },
}
