"""Image: CIFAR-10 in grayscale, read as a sequence of 1024 pixels, 10 classes.

Source: the `cifar-10-batches-py/` folder (pickled dicts `data_batch_1..5`, `test_batch`, each holding
`data` (10000, 3072) uint8 in R, G, B planes and `labels`). Gray levels as PIL's "L" conversion (ITU-R 601-2:
(19595 R + 38470 G + 7471 B + 2^15) >> 16); inputs normalised as published, (pixel / 255 - 122.6/255) /
(61.0/255); validation is 10% of the training images (torch random_split, seed 42).
"""
from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import numpy as np

from .datamodule import LRADataModule, PixelRows, random_split_indices
from .release import SourceHash, cache_root, fingerprint, format_error, fresh, require, write_cache

TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST = ("test_batch",)
MEAN, STD = 122.6 / 255.0, 61.0 / 255.0


class _Unpickler(pickle.Unpickler):
    """Loads the CIFAR batches' dicts, lists and numpy arrays, and refuses any other object."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def read_batch(path: Path, data: bytes) -> Tuple[np.ndarray, np.ndarray]:
    """(images (n, 3072) uint8, labels (n,)) of one python-pickle batch, checked."""
    try:
        d = _Unpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as e:  # noqa: BLE001 - any unreadable pickle is a malformed file
        raise format_error(path, None, f"not a CIFAR-10 python batch ({e})") from e
    if not isinstance(d, dict) or b"data" not in d or b"labels" not in d:
        raise format_error(path, None, "expected a dict with b'data' and b'labels'")
    x, y = np.asarray(d[b"data"]), np.asarray(d[b"labels"])
    if x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != 3072 or y.shape != (x.shape[0],):
        raise format_error(path, None, f"data must be (n, 3072) uint8 and labels (n,), got {x.shape} {x.dtype}, {y.shape}")
    if y.size and (y.min() < 0 or y.max() > 9):
        raise format_error(path, None, f"labels must be 0-9, got {y.min()}..{y.max()}")
    return x, y.astype(np.uint8)


def grayscale(rgb: np.ndarray) -> np.ndarray:
    """(n, 3072) R, G, B planes -> (n, 1024) uint8 luma, exactly as PIL's convert("L")."""
    r, g, b = (rgb[:, i * 1024: (i + 1) * 1024].astype(np.uint32) for i in range(3))
    return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).astype(np.uint8)


def prepare_image(source: str, data_dir: Optional[str] = None) -> Path:
    """Convert cifar-10-batches-py/ once into `<data_dir>/lra/image/`; reuse it when unchanged."""
    src = Path(source).expanduser()
    files = {n: require(src / n, f"the CIFAR-10 batch {n}", " (the cifar-10-batches-py folder)") for n in TRAIN + TEST}
    dest, options = cache_root(data_dir) / "image", {}
    stamp = fingerprint(src, list(files.values()))
    if fresh(dest, options, stamp):
        return dest

    def build(tmp: Path) -> Dict[str, Any]:
        h = SourceHash(src)
        batches = {n: read_batch(p, h.read(p)) for n, p in files.items()}
        for split, names in (("train", TRAIN), ("test", TEST)):
            np.save(tmp / f"{split}_pixels.npy", grayscale(np.concatenate([batches[n][0] for n in names])))
            np.save(tmp / f"{split}_labels.npy", np.concatenate([batches[n][1] for n in names]))
        return {"task": "image", "options": options, "fingerprint": stamp, "sha256": h.hexdigest()}

    write_cache(dest, build)
    return dest


class ImageDataModule(LRADataModule):
    """Grayscale CIFAR-10 as (x (B, 1024, 1) normalised, y (B,) in 0..9)."""

    task, release_dir, d_input, d_output = "image", "cifar-10-batches-py", 1, 10
    prepare_fn = staticmethod(prepare_image)

    def __init__(self, data_dir: Optional[str] = None, source: Optional[str] = None, batch_size: int = 50,
                 val_fraction: float = 0.1, num_workers: int = 0, seed: int = 42, limit: Optional[int] = None):
        super().__init__(data_dir, source, batch_size, num_workers, seed, limit)
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
        self.val_fraction = val_fraction

    def splits(self, manifest: Dict[str, Any], arrays: Dict[str, np.ndarray]) -> Tuple[PixelRows, ...]:
        n = len(arrays["train_labels"])
        n_train = int(n * (1.0 - self.val_fraction))
        train, val = random_split_indices(n, [n_train, n - n_train], self.seed)
        test = np.arange(len(arrays["test_labels"]))
        return (PixelRows(arrays["train_pixels"], arrays["train_labels"], train, MEAN, STD),
                PixelRows(arrays["train_pixels"], arrays["train_labels"], val, MEAN, STD),
                PixelRows(arrays["test_pixels"], arrays["test_labels"], test, MEAN, STD))
