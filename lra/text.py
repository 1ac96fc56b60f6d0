"""Text: IMDB sentiment from characters, 2 classes, sequences up to 4096 steps.

Source: the `aclImdb/` layout, `{train,test}/{neg,pos}/<id>_<rating>.txt` (one review per file; 25k/25k).
Vocabulary from the training characters seen at least 15 times; the first 4095 characters, then <eos>.
As in LRA, there is no validation split: validation uses the test set unless `val_fraction` > 0.
"""
from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from .datamodule import LRADataModule, TokenRows, random_split_indices
from .release import SourceHash, cache_root, fingerprint, format_error, fresh, open_array, require, write_cache
from .tokens import CharEncoder, build_vocab, check_l_max, put, token_dtype

SPLITS = ("train", "test")
CLASSES = ("neg", "pos")
NAME = re.compile(r"^(\d+)_(\d+)\.txt$")


def review_files(root: Path, split: str) -> List[Tuple[Path, int]]:
    """(file, label) of a split, negatives then positives, each by numeric id; checks the names."""
    out = []
    for label, cls in enumerate(CLASSES):
        folder = require(root / split / cls, f"the IMDB {split}/{cls} reviews", " (the aclImdb folder)")
        files = []
        for p in folder.glob("*.txt"):
            m = NAME.match(p.name)
            if m is None:
                raise format_error(p, None, "review files are named <id>_<rating>.txt")
            files.append((int(m.group(1)), int(m.group(2)), p))
        if not files:
            raise FileNotFoundError(f"no reviews (<id>_<rating>.txt) in {folder}")
        out += [(p, label) for _, _, p in sorted(files)]
    return out


def read_review(path: Path, data: bytes) -> str:
    """A review's text; a bad byte raises an error naming the file and line."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise format_error(path, data[: e.start].count(b"\n") + 1, f"not UTF-8 text ({e.reason})") from e


def prepare_text(source: str, data_dir: Optional[str] = None, l_max: int = 4096, min_freq: int = 15) -> Path:
    """Encode aclImdb/ once into `<data_dir>/lra/text/`; reuse it when unchanged."""
    check_l_max(l_max)
    src = Path(source).expanduser()
    files = {s: review_files(src, s) for s in SPLITS}
    dest, options = cache_root(data_dir) / "text", {"l_max": l_max, "min_freq": min_freq}
    stamp = fingerprint(src, [p for s in SPLITS for p, _ in files[s]])
    if fresh(dest, options, stamp):
        return dest

    def build(tmp: Path) -> Dict[str, Any]:
        h = SourceHash(src)
        texts = {s: [read_review(p, h.read(p))[: l_max - 1] for p, _ in files[s]] for s in SPLITS}
        counts: Counter = Counter()
        for t in texts["train"]:
            counts.update(t)
        vocab = build_vocab(counts, min_freq)
        encode = CharEncoder(vocab)
        for s in SPLITS:
            tokens = open_array(tmp, f"{s}_tokens", (len(texts[s]), l_max), token_dtype(len(vocab)))
            lengths = np.array([put(tokens, i, encode(t)) for i, t in enumerate(texts[s])], dtype=np.int32)
            tokens.flush()
            np.save(tmp / f"{s}_lengths.npy", lengths)
            np.save(tmp / f"{s}_labels.npy", np.array([label for _, label in files[s]], dtype=np.uint8))
        return {"task": "text", "options": options, "fingerprint": stamp, "sha256": h.hexdigest(), "vocab": vocab,
                "vocab_size": len(vocab), "sizes": {s: len(texts[s]) for s in SPLITS}}

    write_cache(dest, build)
    return dest


class TextDataModule(LRADataModule):
    """IMDB characters as (x (B, L) ids, y (B,) in {0, 1}, lengths (B,)), L <= l_max = 4096."""

    task, release_dir, d_output = "text", "aclImdb", 2
    prepare_fn = staticmethod(prepare_text)

    def __init__(self, data_dir: Optional[str] = None, source: Optional[str] = None, batch_size: int = 16,
                 l_max: int = 4096, min_freq: int = 15, val_fraction: float = 0.0, num_workers: int = 0,
                 seed: int = 42, limit: Optional[int] = None):
        super().__init__(data_dir, source, batch_size, num_workers, seed, limit)
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
        self.l_max, self.min_freq, self.val_fraction = l_max, min_freq, val_fraction

    def options(self) -> Dict[str, Any]:
        return {"l_max": self.l_max, "min_freq": self.min_freq}

    def splits(self, manifest: Dict[str, Any], arrays: Dict[str, np.ndarray]) -> Tuple[TokenRows, ...]:
        def rows(split: str, index: np.ndarray) -> TokenRows:
            return TokenRows(arrays[f"{split}_tokens"], arrays[f"{split}_lengths"], arrays[f"{split}_labels"], index)

        n = len(arrays["train_labels"])
        test = rows("test", np.arange(len(arrays["test_labels"])))
        if self.val_fraction == 0.0:
            return rows("train", np.arange(n)), rows("test", test.index), test
        n_val = int(round(self.val_fraction * n))
        train, val = random_split_indices(n, [n - n_val, n_val], self.seed)
        return rows("train", train), rows("train", val), test
