"""Shared data utilities: data directory, atomic writes, verified loading, splits."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Dict, Optional, Tuple

import torch


def data_dir(path: Optional[str] = None) -> Path:
    """The data directory: `path`, else $SSM_DATA, else ~/.cache/ssm."""
    return Path(path or os.environ.get("SSM_DATA") or Path.home() / ".cache" / "ssm").expanduser()


def atomic_save(obj: object, path: Path) -> None:
    """torch.save to `path` through a temporary file and a rename, so no half-written file is ever left."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load_verified(path: Path, expected: Dict[str, Tuple[int, ...]], how_to_fix: str) -> Dict[str, torch.Tensor]:
    """Load a cached tensor dict and check each key's leading shape; raise FileNotFoundError/ValueError with a fix."""
    if not path.exists():
        raise FileNotFoundError(f"expected prepared data at {path}; {how_to_fix}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is corrupt
        raise ValueError(f"prepared data at {path} is unreadable ({e}); delete it and {how_to_fix}") from e
    for key, shape in expected.items():
        got = tuple(obj[key].shape) if key in obj else None
        if got is None or got[: len(shape)] != tuple(shape):
            raise ValueError(f"prepared data at {path}: {key} must have shape {shape}, got {got}; "
                             f"delete it and {how_to_fix}")
    return obj


def split_indices(n: int, fraction: float, seed: int = 42) -> Tuple[torch.Tensor, torch.Tensor]:
    """Random split of range(n) into (1 - fraction, fraction) parts with a fixed seed."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"fraction must be in [0, 1), got {fraction}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    k = int(round(n * fraction))
    return perm[k:].sort().values, perm[:k].sort().values


def stratified_split(labels: torch.Tensor, n_test: int, seed: int = 0) -> Tuple[torch.Tensor, torch.Tensor]:
    """Split indices into (train, test) with `n_test` test items spread evenly over the classes."""
    g = torch.Generator().manual_seed(seed)
    classes = labels.unique()
    per_class = n_test // len(classes)
    train, test = [], []
    for c in classes:
        idx = (labels == c).nonzero().flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        test.append(idx[:per_class])
        train.append(idx[per_class:])
    return torch.cat(train).sort().values, torch.cat(test).sort().values


def stratified_subset(labels: torch.Tensor, n: int, seed: int = 0) -> torch.Tensor:
    """Sorted indices of `n` items with the classes as balanced as the data allows (classes take turns, each in
    a seeded random order); all indices if n >= len(labels)."""
    if n >= len(labels):
        return torch.arange(len(labels))
    g = torch.Generator().manual_seed(seed)
    rank = torch.empty(len(labels))
    for c in labels.unique():
        idx = (labels == c).nonzero().flatten()
        rank[idx[torch.randperm(len(idx), generator=g)]] = torch.arange(len(idx), dtype=rank.dtype)
    order = torch.argsort(rank + torch.rand(len(labels), generator=g))  # rank k of every class before rank k + 1
    return order[:n].sort().values


def bit_reversal_permutation(n: int, size: Optional[int] = None) -> torch.Tensor:
    """Bit reversal over the next power of two >= n, keeping the indices < n (the pMNIST permutation)."""
    size = size or 1 << (n - 1).bit_length()
    bits = size.bit_length() - 1
    rev = torch.tensor([int(format(i, f"0{bits}b")[::-1], 2) for i in range(size)])
    return rev[rev < n]


class EpochSampler(torch.utils.data.Sampler):
    """Shuffles with seed + epoch (Lightning calls `set_epoch`), shards over distributed ranks, can start mid-way."""

    def __init__(self, n: int, shuffle: bool = True, seed: int = 0):
        self.n, self.shuffle, self.seed, self.epoch, self.start = n, shuffle, seed, 0, 0

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self.epoch, self.start = epoch, 0

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(self.n, generator=g) if self.shuffle else torch.arange(self.n)
        rank, world = _rank_world()
        if world > 1:  # every rank gets len(self) items, wrapping around like DistributedSampler
            order = order.repeat(world)[: len(self) * world][rank::world]
        start, self.start = self.start, 0
        return iter(order[start:].tolist())

    def __len__(self) -> int:
        return -(-self.n // _rank_world()[1])


def _rank_world() -> Tuple[int, int]:
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class ResumableLoader(torch.utils.data.DataLoader):
    """A DataLoader whose position inside an epoch is saved in checkpoints (Lightning's state_dict protocol).

    It shards itself over distributed ranks, so the trainer runs with `use_distributed_sampler=False`.
    """

    def __init__(self, dataset, batch_size: int, shuffle: bool = True, seed: int = 0, **kwargs):
        # own generator: creating an iterator draws a worker base seed, which must not advance the global RNG
        super().__init__(dataset, batch_size=batch_size, sampler=EpochSampler(len(dataset), shuffle, seed),
                         generator=torch.Generator().manual_seed(seed), **kwargs)
        self._yielded = 0

    def __iter__(self):
        self._yielded = self.sampler.start // self.batch_size
        for batch in super().__iter__():
            self._yielded += 1
            yield batch

    def state_dict(self) -> Dict[str, int]:
        # batches handed out so far in this epoch (Lightning writes checkpoints after the batch's step; the resume
        # test in tests/train/test_cli.py guards this against changes in Lightning's prefetching)
        return {"epoch": self.sampler.epoch, "batches": self._yielded}

    def load_state_dict(self, state: Dict[str, int]) -> None:
        self.sampler.epoch, self.sampler.start = int(state["epoch"]), int(state["batches"]) * self.batch_size
