"""Learning curves from runs' CSV logs: `python -m lra.plot RUN_DIR[=label[=baseline]] ... --out curves.png`.

One column per run: training loss (mean over windows of logged steps) and validation accuracy against the
optimizer step, with the majority-class accuracy as a dashed line when a baseline (a fraction) is given.
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path
from typing import Dict, List, Optional, Tuple


def read_metrics(run: Path) -> Dict[str, List[Tuple[int, float]]]:
    """{metric: [(step, value)]} from the newest csv/version_*/metrics.csv under `run`."""
    files = sorted(Path(run).glob("csv/version_*/metrics.csv"), key=lambda p: p.stat().st_mtime)
    if not files:
        raise FileNotFoundError(f"no csv/version_*/metrics.csv under {run}")
    out: Dict[str, List[Tuple[int, float]]] = {}
    with open(files[-1]) as f:
        for row in csv.DictReader(f):
            for key, value in row.items():
                if value and key not in ("step", "epoch"):
                    out.setdefault(key, []).append((int(row["step"]), float(value)))
    return out


def smooth(points: List[Tuple[int, float]], window: int) -> Tuple[List[int], List[float]]:
    """Means over consecutive windows of `window` points."""
    chunks = [points[i: i + window] for i in range(0, len(points), window)]
    return [c[-1][0] for c in chunks], [sum(v for _, v in c) / len(c) for c in chunks]


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lra.plot", description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", help="RUN_DIR[=label[=majority-class accuracy]]")
    p.add_argument("--out", required=True)
    p.add_argument("--window", type=int, default=5, help="logged points per training-loss mean")
    ns = p.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(ns.runs), figsize=(4.2 * len(ns.runs), 5.2), squeeze=False, dpi=80)
    for col, spec in enumerate(ns.runs):
        run, label, base = (spec.split("=") + [None, None])[:3]
        m = read_metrics(Path(run))
        x, y = smooth(m.get("train/loss", []), ns.window)
        axes[0, col].plot(x, y)
        axes[0, col].set(title=label or Path(run).name, ylabel="training loss")
        steps, acc = zip(*m["val/acc"]) if "val/acc" in m else ((), ())
        axes[1, col].plot(steps, [100 * a for a in acc], marker="o", label="validation")
        if "test/acc" in m:
            axes[1, col].scatter([steps[-1] if steps else 0], [100 * m["test/acc"][-1][1]], color="C3", label="test")
        if base:
            axes[1, col].axhline(100 * float(base), ls="--", color="gray", label="majority class")
        axes[1, col].set(xlabel="optimizer step", ylabel="accuracy (%)")
        axes[1, col].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(ns.out)
    print(f"wrote {ns.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
