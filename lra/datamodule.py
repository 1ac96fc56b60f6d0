"""The LightningDataModule shared by the six tasks, and datasets that fetch whole batches from memory maps."""
from __future__ import annotations

import abc
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import lightning as L
import numpy as np
import torch

from ssm.data.utils import ResumableLoader, data_dir

from .release import RELEASE, cache_root, fresh, load_arrays, read_manifest


def _as_is(batch: Any) -> Any:
    """collate_fn for datasets whose `__getitems__` already returns a collated batch."""
    return batch


def random_split_indices(n: int, sizes: Sequence[int], seed: int) -> List[np.ndarray]:
    """torch.utils.data.random_split's index sets for range(n) with a seeded generator (the published splits)."""
    parts = torch.utils.data.random_split(range(n), list(sizes), generator=torch.Generator().manual_seed(seed))
    return [np.asarray(p.indices, dtype=np.int64) for p in parts]


class RowDataset(torch.utils.data.Dataset, abc.ABC):
    """Rows `index` of memory-mapped arrays; the DataLoader fetches a batch at a time through `__getitems__`."""

    def __init__(self, index: np.ndarray):
        self.index = np.asarray(index, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> Any:
        return self.__getitems__([i])

    def __getitems__(self, ids: Sequence[int]) -> Any:
        return self.fetch(np.sort(self.index[np.asarray(ids, dtype=np.int64)]))

    @abc.abstractmethod
    def fetch(self, rows: np.ndarray) -> Any:
        """The collated batch of the given (sorted) rows."""


class TokenRows(RowDataset):
    """(x (B, L) int64 ids, y (B,), lengths (B,)) with L the longest sequence of the batch (right padding)."""

    def __init__(self, tokens: np.ndarray, lengths: np.ndarray, labels: np.ndarray, index: np.ndarray):
        super().__init__(index)
        self.tokens, self.lengths, self.labels = tokens, lengths, labels

    def fetch(self, rows: np.ndarray) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        lengths = torch.from_numpy(self.lengths[rows].astype(np.int64))
        x = torch.from_numpy(self.tokens[rows, : int(lengths.max())].astype(np.int64))
        return x, torch.from_numpy(self.labels[rows].astype(np.int64)), lengths


class PairRows(RowDataset):
    """((x1, x2), y, (len1, len2)): two documents padded to the same length, for `RetrievalModel`."""

    def __init__(self, tokens1: np.ndarray, tokens2: np.ndarray, lengths1: np.ndarray, lengths2: np.ndarray,
                 labels: np.ndarray, index: np.ndarray):
        super().__init__(index)
        self.tokens, self.lengths, self.labels = (tokens1, tokens2), (lengths1, lengths2), labels

    def fetch(self, rows: np.ndarray) -> Tuple[Tuple[torch.Tensor, ...], torch.Tensor, Tuple[torch.Tensor, ...]]:
        lengths = tuple(torch.from_numpy(n[rows].astype(np.int64)) for n in self.lengths)
        L = int(max(n.max() for n in lengths))
        xs = tuple(torch.from_numpy(t[rows, :L].astype(np.int64)) for t in self.tokens)
        return xs, torch.from_numpy(self.labels[rows].astype(np.int64)), lengths


class PixelRows(RowDataset):
    """(x (B, L, 1) float32 = (pixel / 255 - mean) / std, y (B,)) from uint8 pixels (N, L)."""

    def __init__(self, pixels: np.ndarray, labels: np.ndarray, index: np.ndarray, mean: float, std: float):
        super().__init__(index)
        self.pixels, self.labels, self.mean, self.std = pixels, labels, mean, std

    def fetch(self, rows: np.ndarray) -> Tuple[torch.Tensor, torch.Tensor]:
        x = torch.from_numpy(self.pixels[rows]).float().div_(255.0).sub_(self.mean).div_(self.std)
        return x.unsqueeze(-1), torch.from_numpy(self.labels[rows].astype(np.int64))


class LRADataModule(L.LightningDataModule, abc.ABC):
    """Shared plumbing: find or build the prepared cache, make the three splits, serve resumable loaders.

    Subclasses set `task` (cache name), `release_dir` (the folder of the official release it reads),
    `prepare_fn(source, data_dir, **options)`, `options()` and `splits(manifest, arrays)`.
    """

    task: str = ""
    release_dir: str = ""
    command: str = ""  # the `ssm data prepare` subcommand (default lra-<task>)
    d_input: int = 1
    d_output: int = 2
    rate: float = 1.0
    prepare_fn: Callable[..., Path]

    def __init__(self, data_dir: Optional[str] = None, source: Optional[str] = None, batch_size: int = 32,
                 num_workers: int = 0, seed: int = 42, limit: Optional[int] = None):
        super().__init__()
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        self.root, self.source, self.batch_size = data_dir, source, batch_size
        self.num_workers, self.seed, self.limit = num_workers, seed, limit
        self._manifest: Optional[Dict[str, Any]] = None
        self._ready: Optional[Path] = None

    def options(self) -> Dict[str, Any]:
        """The preparation options that the cache must have been built with."""
        return {}

    @property
    def cache_dir(self) -> Path:
        return cache_root(self.root) / self.task

    def prepare(self) -> Path:
        """The cache directory, built from `source` (or `<data_dir>/lra_release/<release_dir>`) if needed."""
        if self._ready is None:
            self._ready = self._prepare()
        return self._ready

    def _prepare(self) -> Path:
        if self.source is not None:
            return type(self).prepare_fn(self.source, self.root, **self.options())
        if fresh(self.cache_dir, self.options(), None):
            return self.cache_dir
        default = data_dir(self.root) / "lra_release" / self.release_dir
        if default.exists():
            return type(self).prepare_fn(str(default), self.root, **self.options())
        raise FileNotFoundError(
            f"no prepared {self.task} data at {self.cache_dir} and no release files at {default}; run "
            f"`ssm data prepare {self.command or 'lra-' + self.task} --source DIR` with DIR the {self.release_dir} folder of {RELEASE} "
            f"(or the output of `ssm data generate`), or pass source=DIR")

    @property
    def manifest(self) -> Dict[str, Any]:
        if self._manifest is None:
            self._manifest = read_manifest(self.prepare())
        return self._manifest  # type: ignore[return-value]

    @property
    def vocab_size(self) -> Optional[int]:
        """Number of token ids (read from the prepared cache), or None for pixel tasks."""
        return self.manifest.get("vocab_size")

    def prepare_data(self) -> None:
        self.prepare()

    def setup(self, stage: Optional[str] = None) -> None:
        how = f"run `ssm data prepare {self.command or 'lra-' + self.task} --source DIR`"
        manifest, arrays = load_arrays(self.prepare(), how)
        self._manifest = manifest
        sets = self.splits(manifest, arrays)
        if self.limit:
            for ds in sets:
                ds.index = ds.index[: self.limit]
        self.train_set, self.val_set, self.test_set = sets

    @abc.abstractmethod
    def splits(self, manifest: Dict[str, Any], arrays: Dict[str, np.ndarray]) -> Tuple[RowDataset, ...]:
        """(train, val, test) datasets over the prepared arrays."""

    def _loader(self, ds: RowDataset, shuffle: bool) -> ResumableLoader:
        return ResumableLoader(ds, self.batch_size, shuffle=shuffle, seed=self.seed, num_workers=self.num_workers,
                               persistent_workers=self.num_workers > 0, collate_fn=_as_is)

    def train_dataloader(self) -> ResumableLoader:
        return self._loader(self.train_set, True)

    def val_dataloader(self) -> ResumableLoader:
        return self._loader(self.val_set, False)

    def test_dataloader(self) -> ResumableLoader:
        return self._loader(self.test_set, False)
