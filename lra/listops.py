"""ListOps: nested MIN/MAX/MED/SM expressions over digits, 10 classes (the value), sequences up to 2048 tokens.

Release files: `listops-1000/basic_{train,val,test}.tsv`, a header `Source<TAB>Target`, then one expression
and its value 0-9 per line. Tokens: the expression with `(` and `)` removed, split on whitespace.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy as np

from .datamodule import LRADataModule, TokenRows
from .release import (SourceHash, cache_root, fingerprint, format_error, fresh, open_array, read_lines, require,
                      write_cache)
from .tokens import WordEncoder, build_vocab, check_l_max, put, token_dtype

SPLITS = ("train", "val", "test")
HEADER = ("Source", "Target")
OPERATORS = ("[MIN", "[MAX", "[MED", "[SM")
DIGITS = tuple("0123456789")
SYMBOLS = frozenset(OPERATORS + ("]",) + DIGITS)


def tokenize(source: str) -> List[str]:
    """An expression -> its tokens (brackets `(`, `)` dropped)."""
    return source.replace("(", " ").replace(")", " ").split()


def parse_tsv(path: Path, lines: Iterator[Tuple[int, str]]) -> Iterator[Tuple[List[str], int]]:
    """(tokens, label) per example of a release TSV; a malformed line raises an error naming file and line."""
    n = 0
    for n, line in lines:
        fields = line.split("\t")
        if n == 1:
            if tuple(fields) != HEADER:
                raise format_error(path, 1, f"expected the header 'Source<TAB>Target', got {line[:40]!r}")
            continue
        if len(fields) != 2:
            raise format_error(path, n, f"expected 2 tab-separated fields (Source, Target), got {len(fields)}")
        tokens = tokenize(fields[0])
        if not tokens or not set(tokens) <= SYMBOLS:
            bad = sorted(set(tokens) - SYMBOLS)[:3] if tokens else "nothing"
            raise format_error(path, n, f"the expression holds {bad}, expected only {sorted(SYMBOLS)}")
        if fields[1].strip() not in DIGITS:
            raise format_error(path, n, f"the target must be a digit 0-9, got {fields[1]!r}")
        yield tokens, int(fields[1])
    if n < 2:
        raise format_error(path, max(n, 1), "no examples (expected the header 'Source<TAB>Target', then one per line)")


def prepare_listops(source: str, data_dir: Optional[str] = None, l_max: int = 2048) -> Path:
    """Tokenise `source`/basic_{train,val,test}.tsv once into `<data_dir>/lra/listops/`; reuse it when unchanged."""
    check_l_max(l_max)
    src = Path(source).expanduser()
    files = [require(src / f"basic_{s}.tsv", f"the ListOps {s} split",
                     " (the listops-1000 folder of the release)") for s in SPLITS]
    dest, options = cache_root(data_dir) / "listops", {"l_max": l_max}
    stamp = fingerprint(src, files)
    if fresh(dest, options, stamp):
        return dest

    def build(tmp: Path) -> Dict[str, Any]:
        h, counts, sizes = SourceHash(src), Counter(), {}
        for s, f in zip(SPLITS, files):  # pass 1: check every line, count, checksum
            sizes[s] = 0
            for tokens, _ in parse_tsv(f, h.lines(f)):
                sizes[s] += 1
                if s == "train":
                    counts.update(tokens[: l_max - 1])
        vocab = build_vocab(counts)
        encode = WordEncoder(vocab)
        for s, f in zip(SPLITS, files):  # pass 2: encode
            tokens = open_array(tmp, f"{s}_tokens", (sizes[s], l_max), token_dtype(len(vocab)))
            lengths, labels = np.zeros(sizes[s], np.int32), np.zeros(sizes[s], np.uint8)
            for i, (seq, label) in enumerate(parse_tsv(f, read_lines(f))):
                lengths[i], labels[i] = put(tokens, i, encode(seq)), label
            tokens.flush()
            np.save(tmp / f"{s}_lengths.npy", lengths)
            np.save(tmp / f"{s}_labels.npy", labels)
        return {"task": "listops", "options": options, "fingerprint": stamp, "sha256": h.hexdigest(),
                "vocab": vocab, "vocab_size": len(vocab), "sizes": sizes}

    write_cache(dest, build)
    return dest


class ListOpsDataModule(LRADataModule):
    """ListOps as (x (B, L) token ids, y (B,) in 0..9, lengths (B,)), L <= l_max = 2048 (<eos> included)."""

    task, release_dir, d_output = "listops", "listops-1000", 10
    prepare_fn = staticmethod(prepare_listops)

    def __init__(self, data_dir: Optional[str] = None, source: Optional[str] = None, batch_size: int = 32,
                 l_max: int = 2048, num_workers: int = 0, seed: int = 42, limit: Optional[int] = None):
        super().__init__(data_dir, source, batch_size, num_workers, seed, limit)
        self.l_max = l_max

    def options(self) -> Dict[str, Any]:
        return {"l_max": self.l_max}

    def splits(self, manifest: Dict[str, Any], arrays: Dict[str, np.ndarray]) -> Tuple[TokenRows, ...]:
        return tuple(TokenRows(arrays[f"{s}_tokens"], arrays[f"{s}_lengths"], arrays[f"{s}_labels"],
                               np.arange(len(arrays[f"{s}_labels"]))) for s in SPLITS)
