"""Backend registry and selection for the kernel ops (probe on first use, env override, reasons)."""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

import torch

ENV_VAR = "SSM_KERNEL_BACKEND"

OK, FAILED, NOT_INSTALLED, UNSUPPORTED = "ok", "failed", "not installed", "unsupported"


class BackendNotInstalled(ImportError):
    """Raised by a probe when the backend's package or compiled library is absent (not a malfunction)."""


@dataclass
class Backend:
    """One implementation of one op: `fn(*args)`, a `probe(device)` that raises with a reason if unusable."""

    name: str
    fn: Callable
    probe: Callable[[torch.device], None]
    devices: Tuple[str, ...] = ("cpu", "cuda")
    priority: Dict[str, int] = field(default_factory=dict)  # device type -> rank (lower = preferred)
    hint: str = ""  # how to fix a failure, appended to errors
    warn_on_fallback: bool = False  # warn (once per backend name) when auto choice has to skip it


_BACKENDS: Dict[str, Dict[str, Backend]] = {}
_PROBED: Dict[Tuple[str, str, str], Tuple[str, Optional[str]]] = {}  # (op, backend, device type) -> (state, reason)
_WARNED: set = set()


def register(op: str, backend: Backend) -> None:
    """Register `backend` for `op` (replacing one of the same name)."""
    _BACKENDS.setdefault(op, {})[backend.name] = backend
    for key in [k for k in _PROBED if k[:2] == (op, backend.name)]:
        del _PROBED[key]


def backends(op: str) -> Dict[str, Backend]:
    """All registered backends of `op` by name."""
    return dict(_BACKENDS.get(op, {}))


def _probe(op: str, name: str, dev: torch.device) -> Tuple[str, Optional[str]]:
    b = _BACKENDS.get(op, {}).get(name)
    if b is None:
        return FAILED, f"no backend {name!r} is registered for {op!r}"
    if dev.type not in b.devices:
        return UNSUPPORTED, f"{name} runs on {'/'.join(b.devices)} tensors only, not {dev.type}"
    try:
        # probes run backward: the first call may come under torch.no_grad() or torch.inference_mode()
        with torch.inference_mode(False), torch.enable_grad():
            b.probe(dev)
        return OK, None
    except ImportError as e:  # the package / library is absent
        return NOT_INSTALLED, str(e).strip() or type(e).__name__
    except Exception as e:  # noqa: BLE001 - any failure means "unusable", keep the reason
        return FAILED, f"{type(e).__name__}: {e}".strip()


def state(op: str, name: str, device: torch.device) -> Tuple[str, Optional[str]]:
    """(ok | failed | not installed | unsupported, reason or None) of backend `name` of `op` on `device` (cached)."""
    dev = torch.device(device)
    key = (op, name, dev.type)
    if key not in _PROBED:
        _PROBED[key] = _probe(op, name, dev)
    return _PROBED[key]


def status(op: str, name: str, device: torch.device) -> Optional[str]:
    """None if backend `name` of `op` works on `device`, else the reason it does not (probed once, cached)."""
    kind, reason = state(op, name, device)
    return None if kind == OK else reason


def reset_cache() -> None:
    """Forget probe results and issued warnings (tests, or after installing a backend)."""
    _PROBED.clear()
    _WARNED.clear()


def forced(op: str) -> Optional[str]:
    """The backend $SSM_KERNEL_BACKEND names for `op`: 'ext' (every op that has it) or 'cauchy=keops,scan=torch'."""
    spec = os.environ.get(ENV_VAR, "").strip()
    if not spec:
        return None
    if "=" not in spec:
        return spec if spec in _BACKENDS.get(op, {}) else None
    for item in spec.split(","):
        key, _, val = item.partition("=")
        if key.strip() == op:
            return val.strip() or None
    return None


def _explain(op: str, name: str, dev: torch.device) -> str:
    kind, reason = state(op, name, dev)
    hint = _BACKENDS[op][name].hint
    return f"{kind}: {reason}" + (f". Fix: {hint}" if hint and kind in (FAILED, NOT_INSTALLED) else "")


def choose(op: str, device: torch.device, backend: Optional[str] = None) -> Backend:
    """Pick the backend for `op` on `device`: explicit > $SSM_KERNEL_BACKEND > fastest that probes ok."""
    dev = torch.device(device)
    table = _BACKENDS.get(op, {})
    name = backend or forced(op)
    if name is not None:
        if name not in table:
            raise ValueError(
                f"backend must be one of {sorted(table)} for {op}, got {name!r}"
                + (f" (from ${ENV_VAR})" if backend is None else "")
            )
        if state(op, name, dev)[0] != OK:
            raise RuntimeError(
                f"kernel backend {name!r} for {op} does not work on {dev.type}: {_explain(op, name, dev)}"
                + (f" (forced by ${ENV_VAR}; unset it to choose automatically)" if backend is None else "")
            )
        return table[name]
    ranked = sorted((b for b in table.values() if dev.type in b.priority), key=lambda b: b.priority[dev.type])
    skipped = []
    for b in ranked:
        if state(op, b.name, dev)[0] == OK:
            _warn_fallback(op, skipped, b, dev)
            return b
        skipped.append(b)
    raise RuntimeError(f"no working backend for {op} on {dev.type}: " + "; ".join(
        f"{b.name}: {_explain(op, b.name, dev)}" for b in table.values()))


def _warn_fallback(op: str, skipped: List[Backend], chosen: Backend, dev: torch.device) -> None:
    """One warning per skipped backend name (not per op) that asked for it."""
    for b in skipped:
        if b.warn_on_fallback and b.name not in _WARNED:
            _WARNED.add(b.name)
            warnings.warn(
                f"ssm.kernels: backend {b.name!r} is unavailable on {dev.type} ({_explain(op, b.name, dev)}); "
                f"using {chosen.name!r} instead (slower). Further ops fall back silently; "
                "`ssm doctor` lists every backend.", RuntimeWarning, stacklevel=4)


def report(devices: Optional[List[str]] = None) -> List[Tuple[str, str, str, str]]:
    """Rows (op, backend, device, 'ok' | 'failed (reason. Fix: ...)' | 'not installed (...)' | 'unsupported (...)')."""
    if devices is None:
        devices = ["cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    _load_optional_ops()
    rows = []
    for op in sorted(_BACKENDS):
        for name in sorted(_BACKENDS[op], key=lambda n: min(_BACKENDS[op][n].priority.values(), default=999)):
            for d in devices:
                kind, _ = state(op, name, torch.device(d))
                rows.append((op, name, d, OK if kind == OK else f"{kind} ({_explain(op, name, torch.device(d)).split(': ', 1)[1]})"))
    return rows


def _load_optional_ops() -> None:
    """Import the op modules so that every backend is registered before a report."""
    import importlib

    for mod in ("cauchy", "vandermonde", "scan"):
        try:
            importlib.import_module(f"{__package__}.{mod}")
        except ImportError:  # pragma: no cover - an op module that fails to import shows up as missing
            pass
