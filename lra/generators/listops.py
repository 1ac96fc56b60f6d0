"""ListOps generator: random expression trees in the release's TSV format.

A node at depth d < max_depth is a digit with probability p_leaf, else an operator (MIN, MAX, MED = floor of
the median, SM = sum mod 10) with 2..max_args arguments drawn the same way; nodes at max_depth are digits.
Trees are kept when min_tokens < tokens < max_tokens (tokens: operators, digits and `]`), deduplicated over
all splits, and printed left-nested: `[MAX 2 9 ]` is written `( ( ( [MAX 2 ) 9 ) ] )`.

Determinism: examples come in chunks of CHUNK kept trees, chunk c drawn from its own generator seeded by
(seed, c); the chunks are concatenated in order whatever the number of worker processes.
"""
from __future__ import annotations

import os
import random
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple, Union

from . import process_pool

OPERATORS = ("[MIN", "[MAX", "[MED", "[SM")
END = "]"
CHUNK = 100
Tree = Union[int, Tuple[str, list]]


@dataclass(frozen=True)
class ListOpsSpec:
    """The grammar's parameters (the release's values as defaults)."""

    max_depth: int = 10
    max_args: int = 10
    p_leaf: float = 0.75
    min_tokens: int = 500
    max_tokens: int = 2000


class _TooLong(Exception):
    pass


def draw_tree(rng: random.Random, spec: ListOpsSpec, depth: int = 1, count: Optional[List[int]] = None) -> Tree:
    """A random tree; raises _TooLong as soon as it reaches max_tokens (such trees are rejected anyway)."""
    count = [0] if count is None else count
    if depth >= spec.max_depth or rng.random() < spec.p_leaf:
        count[0] += 1
        if count[0] >= spec.max_tokens:
            raise _TooLong
        return rng.randrange(10)
    count[0] += 2  # the operator and its `]`
    op = OPERATORS[rng.randrange(4)]
    return op, [draw_tree(rng, spec, depth + 1, count) for _ in range(rng.randint(2, spec.max_args))]


def evaluate(t: Tree) -> int:
    """The value 0-9 of a tree."""
    if isinstance(t, int):
        return t
    op, args = t
    vals = sorted(evaluate(a) for a in args)
    if op == "[MIN":
        return vals[0]
    if op == "[MAX":
        return vals[-1]
    if op == "[SM":
        return sum(vals) % 10
    return int(statistics.median(vals))  # [MED: non-negative, so int() is the floor


def n_tokens(t: Tree) -> int:
    """Tokens of a tree once brackets are dropped."""
    return 1 if isinstance(t, int) else 2 + sum(n_tokens(a) for a in t[1])


def to_text(t: Tree) -> str:
    """The release's left-nested printing."""
    parts: List[str] = []
    _emit(t, parts)
    return " ".join(parts)


def _emit(t: Tree, parts: List[str]) -> None:
    if isinstance(t, int):
        parts.append(str(t))
        return
    op, args = t
    parts.extend(["("] * (len(args) + 1))
    parts.append(op)
    for a in args:
        _emit(a, parts)
        parts.append(")")
    parts.extend([END, ")"])


def chunk(args: Tuple[int, int, ListOpsSpec]) -> List[Tuple[str, int]]:
    """Chunk `c` of the stream for `seed`: CHUNK (text, value) pairs of trees within the length bounds."""
    seed, c, spec = args
    rng = random.Random(f"lra-listops/{seed}/{c}")
    out: List[Tuple[str, int]] = []
    while len(out) < CHUNK:
        count = [0]
        try:
            t = draw_tree(rng, spec, 1, count)
        except _TooLong:
            continue
        if spec.min_tokens < count[0] < spec.max_tokens:
            out.append((to_text(t), evaluate(t)))
    return out


def stream(seed: int, spec: ListOpsSpec, workers: int, total: int) -> Iterator[Tuple[str, int]]:
    """`total` distinct examples in chunk order (identical for any number of workers)."""
    seen: set = set()
    pool = process_pool(workers) if workers > 1 else None
    c = 0
    try:
        while len(seen) < total:  # rounds of at most 2 chunks per worker, no more than still needed
            n = min(2 * workers, -(-(total - len(seen)) // CHUNK))
            jobs = [(seed, k, spec) for k in range(c, c + n)]
            c += n
            for part in (pool.imap(chunk, jobs) if pool else map(chunk, jobs)):
                for text, value in part:
                    if text not in seen and len(seen) < total:
                        seen.add(text)
                        yield text, value
    finally:
        if pool:
            pool.terminate()


def generate(out: str, n_train: int, n_val: int, n_test: int, seed: int = 0, workers: Optional[int] = None,
             spec: ListOpsSpec = ListOpsSpec()) -> Dict[str, Path]:
    """Write out/basic_{train,val,test}.tsv (header `Source<TAB>Target`); returns the paths."""
    for name, n in (("train", n_train), ("val", n_val), ("test", n_test)):
        if not isinstance(n, int) or n < 0:
            raise ValueError(f"{name} must be a non-negative int, got {n!r}")
    workers = workers or min(os.cpu_count() or 1, 8)
    dest = Path(out).expanduser()
    dest.mkdir(parents=True, exist_ok=True)
    sizes = {"train": n_train, "val": n_val, "test": n_test}
    rows = stream(seed, spec, workers, n_train + n_val + n_test)
    tmp: Dict[str, Path] = {}
    try:
        for split, n in sizes.items():
            tmp[split] = dest / f".basic_{split}.tsv.tmp-{os.getpid()}"
            with open(tmp[split], "w", encoding="utf-8", newline="\n") as f:
                f.write("Source\tTarget\n")
                for _, (text, value) in zip(range(n), rows):
                    f.write(f"{text}\t{value}\n")
        rows.close()
        paths = {s: dest / f"basic_{s}.tsv" for s in sizes}
        for s in sizes:
            os.replace(tmp[s], paths[s])
        return paths
    finally:
        for p in tmp.values():
            if p.exists():
                p.unlink()
