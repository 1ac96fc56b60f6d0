"""Backend probes: run a tiny case of an op forward and backward and compare it with the op's reference.

Probes of backends that can take the interpreter down (pykeops, JIT compilers) run in a child process with a
timeout; their verdicts are cached on disk under the ssm cache dir ($SSM_CACHE_DIR, default ~/.cache/ssm),
keyed by backend, backend version, device and CUDA/driver version.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch

OK, FAILED, NOT_INSTALLED, UNSUPPORTED = "ok", "failed", "not installed", "unsupported"
CACHE_ENV, TIMEOUT_ENV = "SSM_CACHE_DIR", "SSM_PROBE_TIMEOUT"
DEFAULT_TIMEOUT = 600.0
MARK = "@@ssm-probe "  # prefix of the child's result lines (the rest of its output is chatter)
Verdict = Tuple[str, Optional[str]]


class BackendNotInstalled(ImportError):
    """Raised by a backend's load() when its package or compiled library is absent (not a malfunction)."""


def check_close(out: torch.Tensor, ref: torch.Tensor, what: str, tol: float = 1e-6) -> None:
    """Raise RuntimeError if `out` differs from `ref` by more than `tol` relative to ref's max magnitude (or is NaN)."""
    if out.shape != ref.shape:
        raise RuntimeError(f"{what} has shape {tuple(out.shape)}, the reference {tuple(ref.shape)}")
    scale = max(ref.detach().abs().max().item(), 1e-30) if ref.numel() else 1.0
    err = (out.detach() - ref.detach()).abs().max().item() / scale if ref.numel() else 0.0
    if not err <= tol:  # also catches NaN
        raise RuntimeError(f"{what} differs from the reference (relative error {err:.2e} > {tol:g})")


def probe_here(fn: Callable, reference: Callable, case: Tuple[tuple, Sequence[int]], op: str) -> None:
    """Run `fn` and `reference` on case = (args, indices of the args to differentiate); raise if they differ."""
    args, wrt = case
    results = []
    for f in (fn, reference):
        # the first call of an op may come under torch.no_grad() or torch.inference_mode(): clone inside
        with torch.inference_mode(False), torch.enable_grad():
            leaves = [a.detach().clone().requires_grad_(i in wrt) if isinstance(a, torch.Tensor) else a
                      for i, a in enumerate(args)]
            out = f(*leaves)
            if not results:
                g = torch.randn(out.shape, generator=torch.Generator().manual_seed(0), dtype=out.dtype).to(out.device)
            grads = torch.autograd.grad(out, [leaves[i] for i in wrt], g)
        results.append((out, g, grads))
    check_close(results[0][0], results[1][0], f"{op} forward")
    for i, a, b in zip(wrt, results[0][2], results[1][2]):
        check_close(a, b, f"{op} gradient of argument {i}")


def run_child(code: str, payload: dict, timeout: float) -> Tuple[List[dict], Optional[str]]:
    """Run `python -c code` with `payload` as JSON on stdin; -> (result records it printed, why it died or None)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p and os.path.isdir(p)))
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    try:
        out, err = proc.communicate(json.dumps(payload), timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the child and any compiler it started
        out, err = proc.communicate()
        return _records(out), (f"the probe process did not finish within {timeout:g} s "
                               f"(set ${TIMEOUT_ENV} to wait longer)")
    if proc.returncode == 0:
        return _records(out), None
    if proc.returncode < 0:
        name = signal.Signals(-proc.returncode).name if -proc.returncode in signal.valid_signals() else "?"
        return _records(out), f"crashed the probe process: signal {-proc.returncode} ({name})"
    tail = [line for line in err.strip().splitlines() if line.strip()][-1:] or ["no output"]
    return _records(out), f"the probe process exited with status {proc.returncode}: {tail[0][:300]}"


def _records(out: str) -> List[dict]:
    return [json.loads(line[len(MARK):]) for line in out.splitlines() if line.startswith(MARK)]


def emit(record: dict) -> None:
    """Print one result record for the parent (used in the child)."""
    print(MARK + json.dumps(record), flush=True)


def timeout() -> float:
    """Seconds a probe child may run ($SSM_PROBE_TIMEOUT)."""
    raw = os.environ.get(TIMEOUT_ENV, "")
    try:
        return float(raw) if raw else DEFAULT_TIMEOUT
    except ValueError:
        raise ValueError(f"${TIMEOUT_ENV} must be a number of seconds, got {raw!r}") from None


def cache_dir() -> Path:
    """The ssm cache directory: $SSM_CACHE_DIR, else $XDG_CACHE_HOME/ssm, else ~/.cache/ssm."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ssm"


def cache_file() -> Path:
    return cache_dir() / "kernels" / "probes.json"


def _read() -> Dict[str, dict]:
    try:
        return json.loads(cache_file().read_text())
    except (OSError, ValueError):
        return {}


def cached(key: str) -> Optional[Dict[str, Verdict]]:
    """Verdicts {op: (kind, reason)} stored under `key`, if any."""
    entry = _read().get(key)
    return {op: (v[0], v[1]) for op, v in entry.items()} if isinstance(entry, dict) else None


def store(key: str, verdicts: Dict[str, Verdict]) -> None:
    """Save verdicts under `key` (write to a temp file, then rename: never a half-written cache)."""
    path = cache_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = _read()
        data[key] = {op: list(v) for op, v in verdicts.items()}
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".probes-", suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except OSError:  # a read-only cache dir only costs a probe per process
        pass


def clear() -> None:
    """Forget every cached verdict."""
    try:
        cache_file().unlink()
    except FileNotFoundError:
        pass


def key(name: str, module: str, package: str, device: torch.device) -> str:
    """(backend, its version and source, torch, device, CUDA/driver) as one string."""
    try:
        version = importlib.metadata.version(package) if package else "-"
    except importlib.metadata.PackageNotFoundError:
        version = "absent"
    return "|".join([name, f"{package} {version}", f"src {_source_hash(module)}", f"torch {torch.__version__}",
                     _device_name(device), f"cuda {torch.version.cuda} driver {_driver()}"])


def _source_hash(module: str) -> str:
    try:
        spec = importlib.util.find_spec(module)
        return hashlib.sha1(Path(spec.origin).read_bytes()).hexdigest()[:12] if spec and spec.origin else "-"
    except (ImportError, OSError, ValueError):
        return "-"


def _device_name(device: torch.device) -> str:
    if device.type == "cuda" and torch.cuda.is_available():
        p = torch.cuda.get_device_properties(device.index or 0)
        return f"cuda {p.name} sm_{p.major}{p.minor}"
    return f"{device.type} {platform.machine()}"


def _driver() -> str:
    try:
        return str(torch._C._cuda_getDriverVersion()) if torch.cuda.is_available() else "-"
    except (AttributeError, RuntimeError):
        return "?"
