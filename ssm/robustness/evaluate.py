"""Accuracy of a classifier on a test loader, clean and under perturbations at a list of levels; table, CSV, plot."""
from __future__ import annotations

import csv
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Subset

from .perturb import Perturbation

CLEAN = "clean"


@dataclass
class Row:
    """One cell of the result: accuracy and mean loss of `perturbation` at `level` over n examples."""

    perturbation: str
    level: float
    accuracy: float
    loss: float
    n: int
    frequency: Optional[float] = None


def _unpack(batch: Any) -> Tuple[Any, torch.Tensor, Any]:
    if isinstance(batch, dict):
        return batch["x"], batch["y"], batch.get("lengths")
    if isinstance(batch, (list, tuple)) and len(batch) in (2, 3):
        return batch[0], batch[1], (batch[2] if len(batch) == 3 else None)
    raise ValueError(f"batch must be (x, y), (x, y, lengths) or a dict with x, y[, lengths], got {type(batch).__name__}")


def _to(x: Any, device: torch.device) -> Any:
    if isinstance(x, (tuple, list)):
        return type(x)(_to(t, device) for t in x)
    return x.to(device) if isinstance(x, torch.Tensor) else x


def _progress(enabled: bool):
    """A rich progress bar over test examples (a no-op when disabled)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = [TextColumn("robustness"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
    return Progress(*columns, disable=not enabled, transient=False)


def subset_loader(loader: DataLoader, limit: Optional[int], seed: int = 0) -> DataLoader:
    """The loader restricted to `limit` examples drawn at random (seeded) from its dataset, in dataset order
    (test sets are often sorted by class, so the first N would not do); the loader itself when limit is None."""
    n = len(loader.dataset)
    if limit is None or limit >= n:
        return loader
    idx = torch.randperm(n, generator=torch.Generator().manual_seed(seed))[:limit].sort().values
    return DataLoader(Subset(loader.dataset, idx.tolist()), batch_size=loader.batch_size, shuffle=False,
                      collate_fn=loader.collate_fn, num_workers=loader.num_workers)


def evaluate(model: nn.Module, loader: Iterable, perturbations: Sequence[Perturbation], levels: Sequence[float],
             device: Any = "cpu", seed: int = 0, progress: bool = True) -> List[Row]:
    """Accuracy clean and for every (perturbation, level > 0); level 0 is the clean model by definition.

    `model(x, lengths)` returns logits; it is put in eval mode on `device`. Random draws come from one
    generator seeded by `seed`, so a run is reproducible."""
    device = torch.device(device)
    model = model.eval().to(device)
    gen = torch.Generator(device=device).manual_seed(seed)
    stats: Dict[Tuple[str, float], List[float]] = {}
    bar = _progress(progress)
    with bar:
        task = bar.add_task("eval", total=len(getattr(loader, "dataset", [])) or None)
        for batch in loader:
            x, y, lengths = _unpack(batch)
            x, y, lengths = _to(x, device), y.to(device), _to(lengths, device)
            with torch.no_grad():
                _update(stats, (CLEAN, 0.0), model(x, lengths), y)
            for p in perturbations:
                for level in levels:
                    if level == 0:
                        continue
                    with torch.set_grad_enabled(p.needs_grad):
                        out = p.logits(model, x, y, lengths, level, gen)
                    _update(stats, (p.name, level), out.detach(), y)
            bar.update(task, advance=len(y))
    return _rows(stats, perturbations, levels)


def _update(stats: Dict, key: Tuple[str, float], logits: torch.Tensor, y: torch.Tensor) -> None:
    s = stats.setdefault(key, [0.0, 0.0, 0])
    s[0] += float((logits.argmax(-1) == y).sum())
    s[1] += float(F.cross_entropy(logits.float(), y, reduction="sum"))
    s[2] += len(y)


def _rows(stats: Dict, perturbations: Sequence[Perturbation], levels: Sequence[float]) -> List[Row]:
    def row(name: str, level: float, key: Tuple[str, float], freq: Optional[float]) -> Row:
        c, l, n = stats[key]
        return Row(name, level, c / max(n, 1), l / max(n, 1), int(n), freq)

    rows = [row(CLEAN, 0.0, (CLEAN, 0.0), None)]
    for p in perturbations:
        rows += [row(p.name, lv, (p.name, lv) if lv else (CLEAN, 0.0), p.omega) for lv in levels]
    return rows


def format_table(rows: Sequence[Row]) -> str:
    """Accuracy (%) per perturbation (rows) and level (columns), clean first."""
    levels = sorted({r.level for r in rows if r.perturbation != CLEAN})
    clean = next(r for r in rows if r.perturbation == CLEAN)
    head = ["perturbation", "frequency"] + [f"{lv:g}" for lv in levels]
    lines = [head, [CLEAN, "", *[f"{100 * clean.accuracy:.2f}" for _ in levels]]]
    for name in dict.fromkeys(r.perturbation for r in rows if r.perturbation != CLEAN):
        mine = {r.level: r for r in rows if r.perturbation == name}
        freq = next(iter(mine.values())).frequency
        lines.append([name, "" if freq is None else f"{freq:.4g}"] +
                     [f"{100 * mine[lv].accuracy:.2f}" if lv in mine else "" for lv in levels])
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(head))]
    out = ["  ".join(str(c).rjust(w) if i > 1 else str(c).ljust(w) for i, (c, w) in enumerate(zip(line, widths)))
           for line in lines]
    return "\n".join([out[0], "-" * len(out[0])] + out[1:])


def write_csv(rows: Sequence[Row], path: Path) -> Path:
    """One line per Row (perturbation, level, accuracy, loss, n, frequency), written atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(Row.__dataclass_fields__))
        w.writeheader()
        for r in rows:
            w.writerow(asdict(r))
    tmp.replace(path)
    return path


def read_csv(path: Path) -> List[Row]:
    """Rows written by `write_csv`."""
    with open(path, newline="") as f:
        return [Row(r["perturbation"], float(r["level"]), float(r["accuracy"]), float(r["loss"]), int(r["n"]),
                    float(r["frequency"]) if r["frequency"] else None) for r in csv.DictReader(f)]
