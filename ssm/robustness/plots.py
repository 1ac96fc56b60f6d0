"""Matplotlib figures (Agg backend, written to PNG): accuracy against level, and |G(i w)| against the reference."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

Curve = Tuple[Sequence[float], Sequence[float], Optional[Sequence[float]]]  # x, y, optional error bar


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=120, bbox_inches="tight")
    _pyplot().close(fig)
    tmp.replace(path)
    return path


def plot_accuracy(panels: Dict[str, Dict[str, Curve]], path: Path, title: str = "") -> Path:
    """One panel per perturbation: accuracy (%) against level, one line (with optional std bars) per label."""
    plt = _pyplot()
    n = len(panels)
    cols = min(n, 3)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.3 * rows), squeeze=False, layout="constrained")
    for ax, (name, curves) in zip(axes.flat, panels.items()):
        for label, (x, y, err) in curves.items():
            ax.errorbar(x, 100 * np.asarray(y), yerr=None if err is None else 100 * np.asarray(err),
                        marker="o", capsize=3, label=label)
        ax.set_title(name)
        ax.set_xlabel("level")
        ax.set_ylabel("accuracy (%)")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_transfer(layers: List[dict], path: Path, title: str = "") -> Path:
    """One panel per layer: |G_h(i w)| of a few channels and the HiPPO-LegS reference on log axes; the spike
    is marked by a vertical line. Each dict: name, w, G (C, F) magnitudes, channels, ref (F,), spike."""
    plt = _pyplot()
    n = len(layers)
    cols = min(n, 2)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5.5 * cols, 3.8 * rows), squeeze=False, layout="constrained")
    for ax, d in zip(axes.flat, layers):
        for c, g in zip(d["channels"], d["G"]):
            ax.loglog(d["w"], g, lw=0.9, label=f"channel {c}")
        ax.loglog(d["w"], d["ref"], "k--", lw=1.2, label=f"HiPPO-LegS N={d['N']}")
        ax.axvline(d["spike"], color="r", ls=":", lw=1.2, label=f"spike {d['spike']:.4g}")
        ax.set_title(d["name"], fontsize=9)
        ax.set_xlabel("omega (rad / unit time)")
        ax.set_ylabel("|G(i omega)|")
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    return _save(fig, path)
