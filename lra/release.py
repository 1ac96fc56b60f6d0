"""The official release's files and our prepared caches: clear errors, checksums, atomic cache directories.

A prepared task lives in `<data_dir>/lra/<name>/`: one `.npy` file per array (opened memory-mapped) and a
`manifest.json` that records the options, the sha256 of everything read from the release, a fingerprint of
the source files (names, sizes, mtimes: a second `prepare` compares it and reuses the cache), and every
array's shape and dtype. The directory is built under a temporary name and renamed into place, so an
interrupted preparation never leaves a half-written cache.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, Optional, Tuple

import numpy as np

from ssm.data.utils import data_dir

RELEASE_URL = "https://github.com/google-research/long-range-arena"
RELEASE = f"the Long Range Arena release (lra_release.gz, linked from {RELEASE_URL})"
CACHE_VERSION = 1


def format_error(path: Path, line: Optional[int], what: str) -> ValueError:
    """A ValueError naming the file, the line (1-based) and where the official files come from."""
    where = f"{path}, line {line}" if line is not None else str(path)
    return ValueError(f"{where}: {what}; this is not the official format (get the files from {RELEASE})")


def require(path: Path, what: str, hint: str = "") -> Path:
    """`path` if it exists, else FileNotFoundError naming it, what it should hold and where to get it."""
    if not path.exists():
        raise FileNotFoundError(f"expected {what} at {path}{hint}; download and unpack {RELEASE}, "
                                "or write synthetic data in that format with `ssm data generate`")
    return path


def cache_root(root: Optional[str] = None) -> Path:
    """`<data_dir>/lra`, where prepared tasks are kept."""
    return data_dir(root) / "lra"


class SourceHash:
    """sha256 over every file read, in reading order, keyed by the file's name relative to the source."""

    def __init__(self, source: Path):
        self.source, self.digest, self.n_files = source, hashlib.sha256(), 0

    def read(self, path: Path) -> bytes:
        """The bytes of `path`, added to the running checksum."""
        data = path.read_bytes()
        self.add(path, data)
        return data

    def add(self, path: Path, data: bytes) -> None:
        """Add a file's name and content to the checksum."""
        self.add_digest(path, hashlib.sha256(data).digest())

    def add_digest(self, path: Path, file_sha256: bytes) -> None:
        """Add a file's name and the sha256 of its content to the checksum."""
        self.digest.update(str(path.relative_to(self.source)).encode() + b"\0" + file_sha256)
        self.n_files += 1

    def lines(self, path: Path) -> Iterator[Tuple[int, str]]:
        """(line number, text) of a UTF-8 file, streamed, its bytes added to the checksum once read through."""
        digest = hashlib.sha256()
        yield from _lines(path, digest)
        self.add_digest(path, digest.digest())

    def hexdigest(self) -> str:
        return self.digest.hexdigest()


def _lines(path: Path, digest: Any = None) -> Iterator[Tuple[int, str]]:
    with open(path, "rb") as f:
        for n, raw in enumerate(f, start=1):
            if digest is not None:
                digest.update(raw)
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise format_error(path, n, f"not UTF-8 text ({e.reason} at byte {e.start})") from e
            yield n, text.rstrip("\r\n")


def read_lines(path: Path) -> Iterator[Tuple[int, str]]:
    """(line number, text) of a UTF-8 file, streamed; a bad byte raises an error naming the file and line."""
    return _lines(path)


def fingerprint(source: Path, files: Iterable[Path]) -> str:
    """sha256 of (relative name, size, mtime) of `files`: cheap to recompute, changes when any file does."""
    h = hashlib.sha256()
    for path in files:
        st = path.stat()
        h.update(f"{path.relative_to(source)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def write_cache(dest: Path, build: Callable[[Path], Dict[str, Any]]) -> Dict[str, Any]:
    """Run `build(tmp)` (it writes `.npy` files into `tmp` and returns the manifest) and move `tmp` to `dest`."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp"))
    old = dest.parent / f".{dest.name}.old-{os.getpid()}"
    try:
        manifest = dict(build(tmp), version=CACHE_VERSION)
        manifest["arrays"] = {p.stem: _describe(p) for p in sorted(tmp.glob("*.npy"))}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
        if dest.exists():
            os.replace(dest, old)
        os.replace(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return manifest


def _describe(path: Path) -> Dict[str, Any]:
    arr = np.load(path, mmap_mode="r")
    return {"shape": list(arr.shape), "dtype": str(arr.dtype), "bytes": path.stat().st_size}


def read_manifest(dest: Path) -> Optional[Dict[str, Any]]:
    """The cache's manifest, or None when there is no readable cache of the current version."""
    try:
        manifest = json.loads((dest / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    return manifest if manifest.get("version") == CACHE_VERSION else None


def load_arrays(dest: Path, how_to_fix: str) -> Tuple[Dict[str, Any], Dict[str, np.ndarray]]:
    """(manifest, arrays memory-mapped read-only), each array checked against the manifest."""
    manifest = read_manifest(dest)
    if manifest is None:
        raise FileNotFoundError(f"no prepared data at {dest} (expected {dest / 'manifest.json'}); {how_to_fix}")
    arrays = {}
    for name, desc in manifest["arrays"].items():
        path = dest / f"{name}.npy"
        try:
            arr = np.load(path, mmap_mode="r")
        except (OSError, ValueError) as e:
            raise ValueError(f"prepared array {path} is unreadable ({e}); delete {dest} and {how_to_fix}") from e
        if list(arr.shape) != desc["shape"] or str(arr.dtype) != desc["dtype"]:
            raise ValueError(f"prepared array {path} has shape {arr.shape} {arr.dtype}, its manifest says "
                             f"{desc['shape']} {desc['dtype']}; delete {dest} and {how_to_fix}")
        arrays[name] = arr
    return manifest, arrays


def fresh(dest: Path, options: Dict[str, Any], stamp: Optional[str]) -> bool:
    """Whether the cache at `dest` was built with `options` from sources with fingerprint `stamp`."""
    manifest = read_manifest(dest)
    if manifest is None or manifest.get("options") != options:
        return False
    return stamp is None or manifest.get("fingerprint") == stamp


def open_array(tmp: Path, name: str, shape: Tuple[int, ...], dtype: Any) -> np.ndarray:
    """A writable `.npy` memmap `tmp/name.npy`, zero-filled (the padding value)."""
    return np.lib.format.open_memmap(tmp / f"{name}.npy", mode="w+", dtype=dtype, shape=shape)
