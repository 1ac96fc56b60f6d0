"""Backend selection for the kernel ops: probe on first use (crash-prone backends in a child process), an
environment override, errors that say why and how to fix, and a report for `ssm doctor`.

The backends themselves are declared once in registry.py; the ops register how to run them (register_op).
"""
from __future__ import annotations

import dataclasses
import importlib
import json
import os
import sys
import warnings
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch

from . import probe, registry
from .probe import FAILED, NOT_INSTALLED, OK, UNSUPPORTED, BackendNotInstalled  # noqa: F401 - re-exported
from .registry import BackendSpec

ENV_VAR = "SSM_KERNEL_BACKEND"


@dataclass(frozen=True)
class OpSpec:
    """How to run one op: its reference, its pure-torch implementations and its path through backend primitives."""

    name: str
    reference: Callable
    run: Callable  # run(backend name, *args): through that backend's primitives (custom autograd)
    probe_case: Callable[[torch.device], Tuple[tuple, Sequence[int]]]  # -> (args, indices to differentiate)
    native: Dict[str, Callable] = field(default_factory=dict)  # backend name -> differentiable torch function


_SPECS: Dict[str, BackendSpec] = {b.name: b for b in registry.BACKENDS}
_PRIORITY: Dict[str, Dict[str, Tuple[str, ...]]] = {d: dict(t) for d, t in registry.PRIORITY.items()}
_OPS: Dict[str, OpSpec] = {}
_STATE: Dict[Tuple[str, str, str], probe.Verdict] = {}  # (op, backend, device type) -> verdict
_LOADED: Dict[Tuple[str, str], object] = {}  # (backend, device type) -> backend module
_WARNED: set = set()


def register_op(spec: OpSpec) -> None:
    """Called by each ops/<op>.py at import."""
    _OPS[spec.name] = spec


def register_backend(spec: BackendSpec, priority: Optional[Dict[str, Dict[str, Sequence[str]]]] = None) -> None:
    """Add or replace a backend at run time (tests, plug-ins); `priority` {device: {op: names}} replaces those lists."""
    _SPECS[spec.name] = spec
    for dev, table in (priority or {}).items():
        _PRIORITY.setdefault(dev, {}).update({op: tuple(names) for op, names in table.items()})
    reset_cache()


def unregister_backend(name: str) -> None:
    """Remove a backend added by register_backend and restore the registry's priority lists."""
    _SPECS.pop(name, None)
    if name in {b.name for b in registry.BACKENDS}:
        _SPECS[name] = next(b for b in registry.BACKENDS if b.name == name)
    _PRIORITY.clear()
    _PRIORITY.update({d: dict(t) for d, t in registry.PRIORITY.items()})
    reset_cache()


def backends(op: str) -> List[str]:
    """Names of the backends that implement `op`."""
    return [b.name for b in _SPECS.values() if op in b.ops]


def spec(name: str) -> BackendSpec:
    return _SPECS[name]


def reset_cache(disk: bool = False) -> None:
    """Forget probe verdicts and warnings in this process (and on disk if `disk`)."""
    _STATE.clear()
    _WARNED.clear()
    if disk:
        probe.clear()


def load(name: str, device: torch.device):
    """The primitives module of backend `name` for `device` (imported and checked by its load())."""
    dev = torch.device(device).type
    if (name, dev) not in _LOADED:
        module = importlib.import_module(_SPECS[name].module)
        _LOADED[(name, dev)] = module.load(torch.device(dev))
    return _LOADED[(name, dev)]


def loaded(name: str, device_type: str):
    """The module load() returned for backend `name` on `device_type` (after a successful probe or load)."""
    return _LOADED[(name, device_type)]


def implementation(op: str, name: str) -> Callable:
    """The differentiable function that evaluates `op` with backend `name`."""
    spec_ = _OPS[op]
    if name in spec_.native:
        return spec_.native[name]
    return lambda *args: spec_.run(name, *args)


def _probe_here(op: str, name: str, dev: torch.device) -> probe.Verdict:
    """Probe in this process: load the backend, run the op's tiny case, compare with the reference."""
    try:
        if _SPECS[name].module:
            load(name, dev)
        o = _OPS[op]
        probe.probe_here(implementation(op, name), o.reference, o.probe_case(dev), op)
        return OK, None
    except ImportError as e:  # the package or library is absent
        return NOT_INSTALLED, str(e).strip() or type(e).__name__
    except Exception as e:  # noqa: BLE001 - any failure means unusable; keep the reason
        return FAILED, f"{type(e).__name__}: {e}".strip()


_CHILD = "import ssm.kernels; from ssm.kernels.dispatch import probe_child; probe_child()"  # the import registers the ops


def _probe_isolated(b: BackendSpec, dev: torch.device) -> Dict[str, probe.Verdict]:
    """Verdicts for every op of `b` on `dev` from the disk cache, else from child processes (cached after)."""
    key = probe.key(b.name, b.module, b.package, dev)
    verdicts = probe.cached(key)
    if verdicts is not None and set(b.ops) <= set(verdicts):
        return verdicts
    verdicts = {}
    todo = [op for op in b.ops if op in _OPS]
    while todo:  # a crash costs the op it happened in; the others get a fresh child
        records, died = probe.run_child(_CHILD, {"spec": dataclasses.asdict(b), "ops": todo, "device": str(dev)},
                                        probe.timeout())
        for r in records:
            if "kind" in r:
                verdicts[r["op"]] = (r["kind"], r["reason"])
        started = [r["op"] for r in records if "start" in r and r["op"] not in verdicts]
        for op in started or [op for op in todo if op not in verdicts]:  # the op it died in, or all if none began
            verdicts[op] = (FAILED, died or "the probe process exited without a verdict")
        todo = [op for op in todo if op not in verdicts]
    probe.store(key, verdicts)
    return verdicts


def probe_child() -> None:
    """Entry point of a probe child: read {spec, ops, device} from stdin, print one verdict per op."""
    job = json.loads(sys.stdin.read())
    b = BackendSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in job["spec"].items()})
    _SPECS[b.name] = b
    dev = torch.device(job["device"])
    for op in job["ops"]:
        probe.emit({"op": op, "start": True})
        kind, reason = _probe_here(op, b.name, dev)
        probe.emit({"op": op, "kind": kind, "reason": reason})


def state(op: str, name: str, device: torch.device) -> probe.Verdict:
    """(ok | failed | not installed | unsupported, reason or None) of backend `name` for `op` on `device`."""
    dev = torch.device(device)
    k = (op, name, dev.type)
    if k not in _STATE:
        b = _SPECS.get(name)
        if b is None or op not in b.ops or op not in _OPS:
            _STATE[k] = (UNSUPPORTED, f"backend {name!r} has no {op}")
        elif dev.type not in b.devices:
            _STATE[k] = (UNSUPPORTED, f"{name} runs on {'/'.join(b.devices)} tensors only, not {dev.type}")
        elif b.isolated:
            for o, v in _probe_isolated(b, dev).items():
                _STATE[(o, name, dev.type)] = v
        else:
            _STATE[k] = _probe_here(op, name, dev)
        if _STATE[k][0] == OK and b is not None and b.module and b.isolated:
            try:  # the child said it works: load it here (quietly) for use
                load(name, dev)
            except Exception as e:  # noqa: BLE001
                _STATE[k] = (FAILED, f"{type(e).__name__}: {e}")
    return _STATE[k]


def status(op: str, name: str, device: torch.device) -> Optional[str]:
    """None if backend `name` works for `op` on `device`, else why not."""
    kind, reason = state(op, name, device)
    return None if kind == OK else f"{kind}: {reason}"


def _explain(op: str, name: str, dev: torch.device) -> str:
    kind, reason = state(op, name, dev)
    hint = _SPECS[name].hint if name in _SPECS else ""
    return f"{kind} ({reason}" + (f". Fix: {hint}" if hint and kind in (FAILED, NOT_INSTALLED) else "") + ")"


def forced(op: str) -> Optional[str]:
    """The backend $SSM_KERNEL_BACKEND names for `op` ('ext' for every op that has it, or 'cauchy=keops,scan=torch')."""
    raw = os.environ.get(ENV_VAR, "")
    spec_ = raw.strip()
    if not spec_:
        return None
    names = sorted(_SPECS)
    if "=" not in spec_:
        if spec_ not in _SPECS:
            raise ValueError(f"${ENV_VAR} must be a backend name ({', '.join(names)}) or a list op=backend,... "
                             f"with ops {', '.join(_OPS)}; got {raw!r}")
        return spec_ if op in _SPECS[spec_].ops else None
    chosen = None
    for item in spec_.split(","):
        key, sep, val = (s.strip() for s in item.partition("="))
        if not sep or key not in _OPS or val not in _SPECS or key not in _SPECS[val].ops:
            raise ValueError(f"${ENV_VAR} entry {item.strip()!r} must be op=backend with op in "
                             f"{', '.join(_OPS)} and a backend of that op ({', '.join(names)}); got {raw!r}")
        if key == op:
            chosen = val
    return chosen


def choose(op: str, device: torch.device, backend: Optional[str] = None) -> str:
    """Name of the backend for `op` on `device`: explicit `backend` > $SSM_KERNEL_BACKEND > fastest that works."""
    dev = torch.device(device)
    name = backend if backend is not None else forced(op)
    if name is not None:
        if name not in backends(op):
            raise ValueError(f"backend must be one of {sorted(backends(op))} for {op}, got {name!r}"
                             + (f" (from ${ENV_VAR})" if backend is None else ""))
        if state(op, name, dev)[0] != OK:
            raise RuntimeError(f"kernel backend {name!r} for {op} does not work on {dev.type}: "
                               f"{_explain(op, name, dev)}"
                               + (f"; it is forced by ${ENV_VAR}: unset it to choose automatically"
                                  if backend is None else ""))
        return name
    skipped = []
    for cand in _PRIORITY.get(dev.type, {}).get(op, ()):
        if cand in _SPECS and state(op, cand, dev)[0] == OK:
            _warn_fallback(op, skipped, cand, dev)
            return cand
        skipped.append(cand)
    raise RuntimeError(f"no working backend for {op} on {dev.type}: "
                       + "; ".join(f"{b}: {_explain(op, b, dev)}" for b in backends(op)))


def select(op: str, device_type: str, backend: Optional[str]) -> str:
    """choose() for the ops: torch.compile runs it once while tracing and keeps the name as a constant."""
    return choose(op, torch.device(device_type), backend)


# What torch.compiler.assume_constant_result(select) sets, without importing torch._dynamo (seconds, and it loads
# triton) at `import ssm.kernels`; tests/kernels/test_kernels_compile.py fails if a torch release changes the mechanism.
select._dynamo_marked_constant = True


def _warn_fallback(op: str, skipped: List[str], chosen: str, dev: torch.device) -> None:
    """One warning per skipped backend that asks for it (not per op)."""
    for name in skipped:
        if name in _SPECS and _SPECS[name].warn_on_fallback and name not in _WARNED:
            _WARNED.add(name)
            warnings.warn(f"ssm.kernels: backend {name!r} is unavailable on {dev.type}: {_explain(op, name, dev)}; "
                          f"using {chosen!r} instead (slower). Further ops fall back silently; `ssm doctor` lists "
                          "every backend.", RuntimeWarning, stacklevel=5)


def report(devices: Optional[Sequence[str]] = None, ops: Optional[Sequence[str]] = None,
           names: Optional[Sequence[str]] = None) -> List[Tuple[str, str, str, str]]:
    """Rows (op, backend, device, 'ok' | 'failed (reason. Fix: ...)' | 'not installed (...)' | 'unsupported (...)')
    for the given devices (default: cpu and every visible GPU), ops and backend names (default: all)."""
    if devices is None:
        devices = ["cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    rows = []
    for op in ops or list(_OPS):
        for name in [n for n in backends(op) if names is None or n in names]:
            for d in devices:
                kind, _ = state(op, name, torch.device(d))
                rows.append((op, name, d, OK if kind == OK else _explain(op, name, torch.device(d))))
    return rows
