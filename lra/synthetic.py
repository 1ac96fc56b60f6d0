"""Random stand-ins in the exact release formats of Text, Retrieval and Image (no generator models these tasks).

They carry no signal; they exist to exercise the loaders and to time them at the release's sizes
(`python -m lra.bench`). ListOps and Pathfinder have real generators in `lra.generators`.
"""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Tuple

import numpy as np

ALPHABET = np.array(list("abcdefghijklmnopqrstuvwxyz  ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,;:!?'\"()-<>/"))


def _text(rng: np.random.Generator, mean_len: int) -> str:
    n = max(1, int(rng.exponential(mean_len)))
    return "".join(ALPHABET[rng.integers(len(ALPHABET), size=n)])


def write_imdb(root: Path, n_per_class: Tuple[int, int] = (8, 8), mean_len: int = 1300, seed: int = 0) -> Path:
    """root/aclImdb/{train,test}/{neg,pos}/<id>_<rating>.txt with random text; returns the aclImdb folder."""
    rng = np.random.default_rng(seed)
    base = Path(root) / "aclImdb"
    for split, n in zip(("train", "test"), n_per_class):
        for label, cls in enumerate(("neg", "pos")):
            folder = base / split / cls
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                rating = int(rng.integers(7, 11) if label else rng.integers(1, 5))
                (folder / f"{i}_{rating}.txt").write_text(_text(rng, mean_len), encoding="utf-8")
    return base


def write_aan(root: Path, sizes: Tuple[int, int, int] = (16, 4, 4), mean_len: int = 4000, seed: int = 0) -> Path:
    """root/tsv_data/new_aan_pairs.{train,eval,test}.tsv with random pairs; returns the tsv_data folder."""
    rng = np.random.default_rng(seed)
    base = Path(root) / "tsv_data"
    base.mkdir(parents=True, exist_ok=True)
    for split, n in zip(("train", "eval", "test"), sizes):
        with open(base / f"new_aan_pairs.{split}.tsv", "w", encoding="utf-8") as f:
            for i in range(n):
                t1, t2 = _text(rng, mean_len).replace("\t", " "), _text(rng, mean_len).replace("\t", " ")
                f.write(f"{float(i % 2)}\t{split}-{i}a\t{split}-{i}b\t{t1}\t{t2}\n")
    return base


def write_cifar(root: Path, per_batch: int = 10, seed: int = 0) -> Path:
    """root/cifar-10-batches-py/{data_batch_1..5,test_batch} with random pixels; returns that folder."""
    rng = np.random.default_rng(seed)
    base = Path(root) / "cifar-10-batches-py"
    base.mkdir(parents=True, exist_ok=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"batch_label": name.encode(), b"labels": [int(v) for v in rng.integers(10, size=per_batch)],
                 b"data": rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8),
                 b"filenames": [f"{name}_{i}.png".encode() for i in range(per_batch)]}
        with open(base / name, "wb") as f:
            pickle.dump(batch, f, protocol=2)
    return base
