"""The PTD robustness experiment: evaluate trained runs (several models x seeds) clean and under per-layer
Fourier-mode noise at the diagonal init's spike, and aggregate mean +- std over seeds (CSV, Markdown, PNG).

    python -m ssm.robustness.experiment --runs RUNS --models s4d,s4-ptd --seeds 1,2,3 --out DIR

expects RUNS/<model>-seed<seed>/checkpoints/last.ckpt, as written by
`ssm train --config configs/robustness/<model>.yaml --seed_everything <seed> --trainer.default_root_dir RUNS/<model>-seed<seed>`.
"""
from __future__ import annotations

import argparse
import csv
import statistics
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from .cli import load_checkpoint
from .evaluate import CLEAN, Row, evaluate, read_csv, subset_loader, write_csv
from .layers import state_size
from .perturb import LayerFourier, make, parse_levels
from .plots import plot_accuracy
from .transfer import diagonal_spike, find_spike, ssm_layers


def evaluate_run(ckpt: Path, levels: Sequence[float], control: float, limit: Optional[int], seed: int,
                 progress: bool) -> tuple:
    """(rows, notes) for one checkpoint: clean, per-layer noise at the diagonal spike and at `control`, Gaussian."""
    module, data = load_checkpoint(ckpt)
    N = max(state_size(l) for _, l in ssm_layers(module))
    spike, height = diagonal_spike(N)
    learned = find_spike(module, "legs")
    perts = [LayerFourier(spike, "fourier-layer@spike"), LayerFourier(control, "fourier-layer@control"), make("gaussian")]
    data.setup("test")
    rows = evaluate(module, subset_loader(data.test_dataloader(), limit, seed), perts, levels, "cpu", seed, progress)
    notes = {"N": N, "diagonal_spike": spike, "diagonal_height": height, "model_spike": learned.omega}
    return rows, notes


def aggregate(results: Dict[str, List[List[Row]]]) -> List[dict]:
    """Mean and std over seeds of the accuracy per (model, perturbation, level)."""
    out = []
    for model, runs in results.items():
        keys = dict.fromkeys((r.perturbation, r.level) for r in runs[0])
        for key in keys:
            accs = [next(r.accuracy for r in rows if (r.perturbation, r.level) == key) for rows in runs]
            out.append({"model": model, "perturbation": key[0], "level": key[1], "mean": statistics.mean(accs),
                        "std": statistics.stdev(accs) if len(accs) > 1 else 0.0, "seeds": len(accs),
                        "per_seed": accs})
    return out


def markdown(agg: List[dict]) -> str:
    """A Markdown table: one line per (model, perturbation), one column per level, mean +- std in %."""
    levels = sorted({a["level"] for a in agg if a["perturbation"] != CLEAN})
    lines = ["| model | perturbation | " + " | ".join(f"{lv:g}" for lv in levels) + " |",
             "|---|---|" + "---|" * len(levels)]
    for model in dict.fromkeys(a["model"] for a in agg):
        for pert in dict.fromkeys(a["perturbation"] for a in agg if a["model"] == model and a["perturbation"] != CLEAN):
            cells = {a["level"]: a for a in agg if a["model"] == model and a["perturbation"] == pert}
            lines.append(f"| {model} | {pert} | " + " | ".join(
                f"{100 * cells[lv]['mean']:.1f} ± {100 * cells[lv]['std']:.1f}" for lv in levels) + " |")
    return "\n".join(lines)


def per_seed_markdown(results: Dict[str, List[List[Row]]], seeds: Dict[str, List[str]], perturbation: str) -> str:
    """A Markdown table: one line per (model, seed), the accuracy (%) of `perturbation` at every level."""
    levels = sorted({r.level for rows in next(iter(results.values())) for r in rows if r.perturbation == perturbation})
    lines = ["| model | seed | " + " | ".join(f"{lv:g}" for lv in levels) + " |", "|---|---|" + "---|" * len(levels)]
    for model, runs in results.items():
        for seed, rows in zip(seeds[model], runs):
            acc = {r.level: r.accuracy for r in rows if r.perturbation == perturbation}
            lines.append(f"| {model} | {seed} | " + " | ".join(f"{100 * acc[lv]:.1f}" for lv in levels) + " |")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ssm.robustness.experiment", description=__doc__.splitlines()[0])
    p.add_argument("--runs", required=True)
    p.add_argument("--models", default="s4d,s4-ptd")
    p.add_argument("--seeds", default="1,2,3")
    p.add_argument("--model-seeds", action="append", default=[], metavar="MODEL=S1,S2",
                   help="other seeds for one model (repeatable), e.g. s4-ptd=2,3,4")
    p.add_argument("--levels", default="0,0.05,0.1,0.2,0.4")
    p.add_argument("--control", type=float, default=10.0, help="a frequency away from the spike (rad / unit time)")
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--reuse", action="store_true", help="read per-run CSVs already in --out instead of evaluating")
    ns = p.parse_args(argv)
    levels = parse_levels(ns.levels)
    out = Path(ns.out)
    results: Dict[str, List[List[Row]]] = {}
    seeds = {model: ns.seeds.split(",") for model in ns.models.split(",")}
    seeds.update({m: v.split(",") for m, v in (item.split("=", 1) for item in ns.model_seeds)})
    for model in ns.models.split(","):
        for s in seeds[model]:
            csv_path = out / f"{model}-seed{s}.csv"
            if not (ns.reuse and csv_path.exists()):
                rows, notes = evaluate_run(Path(ns.runs) / f"{model}-seed{s}" / "checkpoints" / "last.ckpt", levels,
                                           ns.control, ns.limit, ns.seed, not ns.no_progress)
                write_csv(rows, csv_path)
                print(f"{model} seed {s}: clean {100 * rows[0].accuracy:.2f}%; N = {notes['N']}, diagonal spike "
                      f"omega = {notes['diagonal_spike']:.2f} (|G_diag - G_H| = {notes['diagonal_height']:.3f}); "
                      f"the trained layers' own spike (legs criterion): {notes['model_spike']:.2f}", flush=True)
            results.setdefault(model, []).append(read_csv(csv_path))
    agg = aggregate(results)
    spike = next(r.perturbation for r in next(iter(results.values()))[0] if r.perturbation.endswith("@spike"))
    table = markdown(agg) + f"\n\nPer seed, {spike}:\n\n" + per_seed_markdown(results, seeds, spike)
    print(table)
    (out / "summary.md").write_text(table + "\n")
    with open(out / "summary.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(agg[0]))
        w.writeheader()
        w.writerows({**a, "per_seed": " ".join(f"{v:.4f}" for v in a["per_seed"])} for a in agg)
    panels: Dict[str, dict] = {}
    for a in agg:
        if a["perturbation"] == CLEAN:
            continue
        x, y, e = panels.setdefault(a["perturbation"], {}).setdefault(a["model"], ([], [], []))
        x.append(a["level"]), y.append(a["mean"]), e.append(a["std"])
    title = "mean ± std over seeds " + "; ".join(f"{m} {','.join(v)}" for m, v in seeds.items())
    plot_accuracy(panels, out / "summary.png", title)
    print(f"wrote {out / 'summary.md'}, {out / 'summary.csv'} and {out / 'summary.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
