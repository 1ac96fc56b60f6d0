"""Backend registry and selection for the kernel ops (probe on first use, env override, reasons)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

import torch

ENV_VAR = "SSM_KERNEL_BACKEND"


@dataclass
class Backend:
    """One implementation of one op: `fn(*args)`, a `probe(device)` that raises with a reason if unusable."""

    name: str
    fn: Callable
    probe: Callable[[torch.device], None]
    devices: Tuple[str, ...] = ("cpu", "cuda")
    priority: Dict[str, int] = field(default_factory=dict)  # device type -> rank (lower = preferred)
    hint: str = ""  # how to fix a failure, appended to errors


_BACKENDS: Dict[str, Dict[str, Backend]] = {}
_PROBED: Dict[Tuple[str, str, str], Optional[str]] = {}  # (op, backend, device type) -> None if ok else reason


def register(op: str, backend: Backend) -> None:
    """Register `backend` for `op` (replacing one of the same name)."""
    _BACKENDS.setdefault(op, {})[backend.name] = backend


def backends(op: str) -> Dict[str, Backend]:
    """All registered backends of `op` by name."""
    return dict(_BACKENDS.get(op, {}))


def status(op: str, name: str, device: torch.device) -> Optional[str]:
    """None if backend `name` of `op` works on `device`, else the reason it does not (probed once, cached)."""
    dev = torch.device(device)
    key = (op, name, dev.type)
    if key not in _PROBED:
        b = _BACKENDS.get(op, {}).get(name)
        if b is None:
            _PROBED[key] = f"no backend {name!r} is registered for {op!r}"
        elif dev.type not in b.devices:
            _PROBED[key] = f"{name} does not support device type {dev.type!r}"
        else:
            try:
                b.probe(dev)
                _PROBED[key] = None
            except Exception as e:  # noqa: BLE001 - any failure means "unusable", keep the reason
                _PROBED[key] = f"{type(e).__name__}: {e}".strip()
    return _PROBED[key]


def reset_cache() -> None:
    """Forget probe results (tests, or after installing a backend)."""
    _PROBED.clear()


def choose(op: str, device: torch.device, backend: Optional[str] = None) -> Backend:
    """Pick the backend for `op` on `device`: explicit > $SSM_KERNEL_BACKEND > fastest that probes ok."""
    dev = torch.device(device)
    forced = backend or os.environ.get(ENV_VAR) or None
    table = _BACKENDS.get(op, {})
    if forced is not None:
        if forced not in table:
            raise ValueError(
                f"backend must be one of {sorted(table)} for {op}, got {forced!r}"
                + (f" (from ${ENV_VAR})" if backend is None else "")
            )
        reason = status(op, forced, dev)
        if reason is not None:
            hint = table[forced].hint
            raise RuntimeError(
                f"kernel backend {forced!r} for {op} does not work on {dev.type}: {reason}"
                + (f". {hint}" if hint else "")
                + (f" (forced by ${ENV_VAR}; unset it to choose automatically)" if backend is None else "")
            )
        return table[forced]
    ranked = sorted(
        (b for b in table.values() if dev.type in b.priority), key=lambda b: b.priority[dev.type]
    )
    for b in ranked:
        if status(op, b.name, dev) is None:
            return b
    raise RuntimeError(f"no working backend for {op} on {dev.type}: " + "; ".join(
        f"{b.name}: {status(op, b.name, dev)}" for b in table.values()))


def report(devices: Optional[List[str]] = None) -> List[Tuple[str, str, str, str]]:
    """Rows (op, backend, device, 'ok' | 'failed (reason)') for every registered backend and device."""
    if devices is None:
        devices = ["cpu"] + [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    rows = []
    for op in sorted(_BACKENDS):
        for name in _BACKENDS[op]:
            for d in devices:
                reason = status(op, name, torch.device(d))
                rows.append((op, name, d, "ok" if reason is None else f"failed ({reason})"))
    return rows
