"""Pathfinder and Path-X: are the two markers connected? Binary labels on images read as pixel sequences.

Release layout: `pathfinder{32,64,128,256}/curv_contour_length_14/metadata/<batch>.npy` (plain text despite the
name; a line per image: `imgs/<batch> sample_<k>.png <k> <label> ...`) and the PNGs under `imgs/<batch>/`.
Preparation decodes every image once (in worker processes) into a uint8 array (N, S*S), memory-mapped.
The published split: torch.utils.data.random_split 80/10/10 with seed 42 over the images in metadata order.
Inputs are normalised as published: (pixel / 255 - 0.5) / 0.5, in [-1, 1]. Path-X is pathfinder128
(16,384 steps).
"""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from .datamodule import LRADataModule, PixelRows, random_split_indices
from .generators import process_pool
from .release import SourceHash, cache_root, fingerprint, format_error, fresh, open_array, require, write_cache

LEVEL = "curv_contour_length_14"
RESOLUTIONS = (32, 64, 128, 256)


def read_metadata(root: Path) -> List[Tuple[Path, int]]:
    """(image path, label) for every metadata line, metadata files in numeric order; checks each line."""
    meta = require(root / LEVEL / "metadata", "the metadata folder of a Pathfinder level",
                   f" (the {LEVEL} folder of pathfinderS in the release)")
    files = sorted(meta.glob("*.npy"), key=lambda p: (len(p.stem), p.stem))
    if not files:
        raise FileNotFoundError(f"no metadata files (<batch>.npy) in {meta}")
    samples = []
    for f in files:
        try:
            lines = f.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError as e:
            raise format_error(f, None, "not a text metadata file") from e
        for n, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            fields = line.split()
            if len(fields) < 4 or not fields[0].startswith("imgs/") or fields[3] not in ("0", "1"):
                raise format_error(f, n, f"expected 'imgs/<batch> sample_<k>.png <k> <label 0|1> ...', got {line[:60]!r}")
            samples.append((root / LEVEL / fields[0] / fields[1], int(fields[3])))
    return samples


def decode(path: Path, data: bytes, size: int) -> np.ndarray:
    """PNG bytes -> (size * size,) uint8 grayscale; errors name the file."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            arr = np.asarray(im.convert("L"), dtype=np.uint8)
    except Exception as e:  # noqa: BLE001 - PIL raises many kinds for a broken file
        raise format_error(path, None, f"not a readable image ({e})") from e
    if arr.shape != (size, size):
        raise format_error(path, None, f"image is {arr.shape[1]}x{arr.shape[0]}, expected {size}x{size}")
    return arr.reshape(-1)


def _decode_block(args: Tuple[List[str], int]) -> Tuple[np.ndarray, List[bytes]]:
    """Read and decode a block of images; returns the pixels and each file's sha256."""
    import hashlib

    paths, size = args
    out = np.empty((len(paths), size * size), dtype=np.uint8)
    digests = []
    for i, p in enumerate(paths):
        path = Path(p)
        if not path.exists():
            raise FileNotFoundError(f"{path} is listed in the metadata but missing")
        data = path.read_bytes()
        out[i] = decode(path, data, size)
        digests.append(hashlib.sha256(data).digest())
    return out, digests


def prepare_pathfinder(source: str, data_dir: Optional[str] = None, resolution: int = 32,
                       workers: Optional[int] = None, block: int = 500) -> Path:
    """Decode `source` (a pathfinderS folder) into `<data_dir>/lra/pathfinder<S>/`; reuse it when unchanged."""
    if resolution not in RESOLUTIONS:
        raise ValueError(f"resolution must be one of {list(RESOLUTIONS)}, got {resolution!r}")
    src = Path(source).expanduser()
    samples = read_metadata(src)
    metadata = sorted((src / LEVEL / "metadata").glob("*.npy"))
    dest, options = cache_root(data_dir) / f"pathfinder{resolution}", {"resolution": resolution}
    stamp = fingerprint(src, metadata + [p for p, _ in samples if p.exists()])
    if fresh(dest, options, stamp):
        return dest

    def build(tmp: Path) -> Dict[str, Any]:
        h = SourceHash(src)
        for f in metadata:
            h.read(f)
        pixels = open_array(tmp, "pixels", (len(samples), resolution * resolution), np.uint8)
        jobs = [([str(p) for p, _ in samples[i: i + block]], resolution) for i in range(0, len(samples), block)]
        n = workers or min(os.cpu_count() or 1, 8)
        pool = process_pool(n) if n > 1 and len(jobs) > 1 else None
        try:
            done = 0
            for arr, digests in (pool.imap(_decode_block, jobs) if pool else map(_decode_block, jobs)):
                pixels[done: done + len(arr)] = arr
                for (p, _), d in zip(samples[done: done + len(arr)], digests):
                    h.digest.update(str(p.relative_to(src)).encode() + b"\0" + d)
                done += len(arr)
        finally:
            if pool:
                pool.terminate()
        pixels.flush()
        np.save(tmp / "labels.npy", np.array([label for _, label in samples], dtype=np.uint8))
        return {"task": f"pathfinder{resolution}", "options": options, "fingerprint": stamp,
                "sha256": h.hexdigest(), "n_images": len(samples), "resolution": resolution}

    write_cache(dest, build)
    return dest


class PathfinderDataModule(LRADataModule):
    """Pathfinder as (x (B, S*S, 1) in [-1, 1], y (B,) in {0, 1}); S = resolution (32 in LRA)."""

    task, release_dir, d_input, d_output = "pathfinder", "pathfinder32", 1, 2
    prepare_fn = staticmethod(prepare_pathfinder)

    def __init__(self, data_dir: Optional[str] = None, source: Optional[str] = None, batch_size: int = 64,
                 resolution: int = 32, val_fraction: float = 0.1, test_fraction: float = 0.1, num_workers: int = 0,
                 seed: int = 42, limit: Optional[int] = None):
        super().__init__(data_dir, source, batch_size, num_workers, seed, limit)
        if resolution not in RESOLUTIONS:
            raise ValueError(f"resolution must be one of {list(RESOLUTIONS)}, got {resolution!r}")
        self.resolution, self.val_fraction, self.test_fraction = resolution, val_fraction, test_fraction
        self.task, self.release_dir = f"pathfinder{resolution}", f"pathfinder{resolution}"
        self.command = f"lra-pathfinder --resolution {resolution}"

    def options(self) -> Dict[str, Any]:
        return {"resolution": self.resolution}

    def splits(self, manifest: Dict[str, Any], arrays: Dict[str, np.ndarray]) -> Tuple[PixelRows, ...]:
        n = len(arrays["labels"])
        n_val, n_test = int(self.val_fraction * n), int(self.test_fraction * n)
        parts = random_split_indices(n, [n - n_val - n_test, n_val, n_test], self.seed)
        return tuple(PixelRows(arrays["pixels"], arrays["labels"], idx, 0.5, 0.5) for idx in parts)


class PathXDataModule(PathfinderDataModule):
    """Path-X: Pathfinder at 128 x 128, sequences of 16,384 pixels."""

    def __init__(self, data_dir: Optional[str] = None, source: Optional[str] = None, batch_size: int = 16,
                 resolution: int = 128, val_fraction: float = 0.1, test_fraction: float = 0.1, num_workers: int = 0,
                 seed: int = 42, limit: Optional[int] = None):
        super().__init__(data_dir, source, batch_size, resolution, val_fraction, test_fraction, num_workers, seed,
                         limit)
        self.command = "lra-pathx" if resolution == 128 else self.command
