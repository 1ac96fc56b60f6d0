"""Retrieval: do two ACL Anthology papers cite each other? Two documents of up to 4000 characters each.

Release files: `tsv_data/new_aan_pairs.{train,eval,test}.tsv`, no header, one pair per line:
`label<TAB>id1<TAB>id2<TAB>text1<TAB>text2` (label 0/1, possibly written 0.0/1.0). Vocabulary from every
training character (both documents); each document keeps its first 3999 characters, then <eos>.
Batches are ((x1, x2), y, (len1, len2)) for `ssm.models.RetrievalModel` (`model.architecture: retrieval`).
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Tuple

import numpy as np

from .datamodule import LRADataModule, PairRows
from .release import (SourceHash, cache_root, fingerprint, format_error, fresh, open_array, read_lines, require,
                      write_cache)
from .tokens import CharEncoder, build_vocab, check_l_max, put, token_dtype

SPLITS = ("train", "eval", "test")


def parse_tsv(path: Path, lines: Iterator[Tuple[int, str]]) -> Iterator[Tuple[int, str, str]]:
    """(label, text1, text2) per line; a malformed line raises an error naming the file and line."""
    n = 0
    for n, line in lines:
        fields = line.split("\t")
        if len(fields) != 5:
            raise format_error(path, n, f"expected 5 tab-separated fields (label, id1, id2, text1, text2), "
                               f"got {len(fields)}")
        try:
            label = float(fields[0])
        except ValueError:
            label = -1.0
        if label not in (0.0, 1.0):
            raise format_error(path, n, f"the label must be 0 or 1, got {fields[0][:20]!r}")
        yield int(label), fields[3], fields[4]
    if n == 0:
        raise format_error(path, 1, "empty file, expected one pair per line")


def prepare_retrieval(source: str, data_dir: Optional[str] = None, l_max: int = 4000) -> Path:
    """Encode new_aan_pairs.{train,eval,test}.tsv once into `<data_dir>/lra/retrieval/` (memory-mapped)."""
    check_l_max(l_max)
    src = Path(source).expanduser()
    files = [require(src / f"new_aan_pairs.{s}.tsv", f"the AAN {s} split", " (the tsv_data folder of the release)")
             for s in SPLITS]
    dest, options = cache_root(data_dir) / "retrieval", {"l_max": l_max}
    stamp = fingerprint(src, files)
    if fresh(dest, options, stamp):
        return dest

    def build(tmp: Path) -> Dict[str, Any]:
        h, counts, sizes = SourceHash(src), Counter(), {}
        for s, f in zip(SPLITS, files):  # pass 1: check every line, count characters, checksum
            sizes[s] = 0
            for _, t1, t2 in parse_tsv(f, h.lines(f)):
                sizes[s] += 1
                if s == "train":
                    counts.update(t1[: l_max - 1])
                    counts.update(t2[: l_max - 1])
        vocab = build_vocab(counts)
        encode, dtype = CharEncoder(vocab), token_dtype(len(vocab))
        for s, f in zip(SPLITS, files):  # pass 2: encode into memory maps
            docs = [open_array(tmp, f"{s}_tokens{k}", (sizes[s], l_max), dtype) for k in (1, 2)]
            lengths = np.zeros((2, sizes[s]), np.int32)
            labels = np.zeros(sizes[s], np.uint8)
            for i, (label, t1, t2) in enumerate(parse_tsv(f, read_lines(f))):
                labels[i] = label
                for k, t in enumerate((t1, t2)):
                    lengths[k, i] = put(docs[k], i, encode(t[: l_max - 1]))
            for k in range(2):
                docs[k].flush()
                np.save(tmp / f"{s}_lengths{k + 1}.npy", lengths[k])
            np.save(tmp / f"{s}_labels.npy", labels)
        return {"task": "retrieval", "options": options, "fingerprint": stamp, "sha256": h.hexdigest(),
                "vocab": vocab, "vocab_size": len(vocab), "sizes": sizes}

    write_cache(dest, build)
    return dest


class RetrievalDataModule(LRADataModule):
    """AAN pairs as ((x1, x2) (B, L) ids, y (B,) in {0, 1}, (len1, len2)), both documents padded to one L."""

    task, release_dir, d_output = "retrieval", "tsv_data", 2
    prepare_fn = staticmethod(prepare_retrieval)

    def __init__(self, data_dir: Optional[str] = None, source: Optional[str] = None, batch_size: int = 64,
                 l_max: int = 4000, num_workers: int = 0, seed: int = 42, limit: Optional[int] = None):
        super().__init__(data_dir, source, batch_size, num_workers, seed, limit)
        self.l_max = l_max

    def options(self) -> Dict[str, Any]:
        return {"l_max": self.l_max}

    def splits(self, manifest: Dict[str, Any], arrays: Dict[str, np.ndarray]) -> Tuple[PairRows, ...]:
        return tuple(PairRows(arrays[f"{s}_tokens1"], arrays[f"{s}_tokens2"], arrays[f"{s}_lengths1"],
                              arrays[f"{s}_lengths2"], arrays[f"{s}_labels"], np.arange(len(arrays[f"{s}_labels"])))
                     for s in SPLITS)
