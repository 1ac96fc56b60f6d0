"""Vocabularies and padded token arrays for the token tasks (ListOps, Text, Retrieval).

As published: the vocabulary is `<pad> <unk> <eos>` followed by the training split's tokens with at least
`min_freq` occurrences, most frequent first (ties by symbol); a sequence keeps its first `l_max - 1` tokens,
then `<eos>`; it is padded on the right with `<pad>` = 0, and its length (including `<eos>`) is kept.
"""
from __future__ import annotations

from collections import Counter
from typing import Dict, Iterable, List, Sequence

import numpy as np

SPECIALS = ("<pad>", "<unk>", "<eos>")
PAD, UNK, EOS = 0, 1, 2


def build_vocab(counts: Counter, min_freq: int = 1) -> List[str]:
    """Specials, then the tokens counted at least `min_freq` times, by decreasing count then symbol."""
    kept = sorted((t for t, c in counts.items() if c >= min_freq and t not in SPECIALS), key=lambda t: (-counts[t], t))
    return list(SPECIALS) + kept


def check_l_max(l_max: int) -> int:
    """`l_max` if it is an int >= 2 (room for one token and <eos>), else ValueError."""
    if not isinstance(l_max, int) or isinstance(l_max, bool) or l_max < 2:
        raise ValueError(f"l_max must be an int >= 2, got {l_max!r}")
    return l_max


def token_dtype(vocab_size: int) -> np.dtype:
    """The smallest unsigned dtype that holds every id."""
    return np.dtype(np.uint8 if vocab_size <= 256 else np.uint16 if vocab_size <= 65536 else np.uint32)


class CharEncoder:
    """Characters -> ids through a lookup table over code points (unknown characters -> <unk>)."""

    def __init__(self, vocab: Sequence[str]):
        chars = {t: i for i, t in enumerate(vocab) if t not in SPECIALS}
        if any(len(t) != 1 for t in chars):
            raise ValueError(f"a character vocabulary must hold single characters, got {sorted(chars)[:5]}...")
        top = max((ord(c) for c in chars), default=0)
        self.lut = np.full(top + 2, UNK, dtype=np.int64)  # last slot: every code point above `top`
        for c, i in chars.items():
            self.lut[ord(c)] = i

    def __call__(self, text: str) -> np.ndarray:
        """text -> ids (len(text),)."""
        cps = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        return self.lut[np.minimum(cps, len(self.lut) - 1)]


class WordEncoder:
    """Whitespace tokens -> ids (unknown tokens -> <unk>)."""

    def __init__(self, vocab: Sequence[str]):
        self.index: Dict[str, int] = {t: i for i, t in enumerate(vocab)}

    def __call__(self, tokens: Sequence[str]) -> np.ndarray:
        return np.fromiter((self.index.get(t, UNK) for t in tokens), dtype=np.int64, count=len(tokens))


def put(out: np.ndarray, row: int, ids: np.ndarray) -> int:
    """Write the first `l_max - 1` ids and <eos> into `out[row]` (zero = <pad> elsewhere); returns the length."""
    n = min(len(ids), out.shape[1] - 1)
    out[row, :n] = ids[:n]
    out[row, n] = EOS
    return n + 1


def char_counts(texts: Iterable[str], l_max: int) -> Counter:
    """Character counts over the part of each text that is kept (its first l_max - 1 characters)."""
    counts: Counter = Counter()
    for t in texts:
        counts.update(t[: l_max - 1])
    return counts
