"""Disk cache of PTD results: one .npz per argument set under <root>/hippo (root: $SSM_CACHE_DIR, else the data
directory $SSM_DATA, else ~/.cache/ssm), written atomically and checked on reading (a file that is not a valid
decomposition of A + E is ignored and rewritten)."""
from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np
import torch

FIELDS = ("Lambda", "V", "V_inv", "E", "cond", "steps")


def cache_dir() -> Optional[Path]:
    """<root>/hippo with root = $SSM_CACHE_DIR, else $SSM_DATA, else ~/.cache/ssm; None when SSM_CACHE_DIR=''."""
    root = os.environ.get("SSM_CACHE_DIR")
    if root == "":
        return None
    root = root or os.environ.get("SSM_DATA") or Path.home() / ".cache" / "ssm"
    return Path(root).expanduser() / "hippo"


def cache_path(version: str, key: Tuple) -> Optional[Path]:
    """ptd-<measure>-<N>-<hash of the version and every argument>.npz for key = (measure, N, ...)."""
    folder = cache_dir()
    if folder is None:
        return None
    digest = hashlib.sha256(repr((version,) + tuple(key)).encode()).hexdigest()[:16]
    return folder / f"ptd-{key[0]}-{key[1]}-{digest}.npz"


def read_cached(path: Optional[Path], A: np.ndarray) -> Optional[Dict]:
    """The result in `path` if it is a valid decomposition V diag(Lambda) V_inv = A + E, else None."""
    if path is None or not path.is_file():
        return None
    try:
        with np.load(path) as f:
            r = {k: f[k] for k in FIELDS}
    except (OSError, ValueError, KeyError, EOFError):
        return None
    N = A.shape[0]
    if r["Lambda"].shape != (N,) or any(r[k].shape != (N, N) for k in ("V", "V_inv", "E")):
        return None
    if not all(np.all(np.isfinite(v)) for v in r.values()):
        return None
    V, V_inv, Lam = (torch.from_numpy(r[k]) for k in ("V", "V_inv", "Lambda"))
    residual = float(torch.linalg.norm((V * Lam) @ V_inv - torch.from_numpy(A + r["E"])))
    if residual > 1e-8 * max(1.0, float(np.linalg.norm(A))):
        return None
    return dict(r, cond=float(r["cond"]), steps=int(r["steps"]))


def write_cached(path: Optional[Path], result: Dict) -> None:
    """Write to a temp file, then rename; a cache that cannot be written is skipped with a warning."""
    if path is None:
        return
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **{k: result[k] for k in FIELDS})
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)
        warnings.warn(f"ptd: could not write the cache file {path} ({exc}); set SSM_CACHE_DIR to a writable "
                      f"directory, or to '' to turn the disk cache off", stacklevel=3)
