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


def _grid(n: int, max_cols: int, width: float, height: float):
    """A figure of n panels in rows of at most max_cols, each width x height inches -> (fig, axes (rows, cols))."""
    cols = min(n, max_cols)
    rows = (n + cols - 1) // cols
    return _pyplot().subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False,
                              layout="constrained")


def _finish(fig, axes, n: int, title: str, path: Path) -> Path:
    """Blank the unused panels after the first n, set the title, write the PNG."""
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_accuracy(panels: Dict[str, Dict[str, Curve]], path: Path, title: str = "") -> Path:
    """One panel per perturbation: accuracy (%) against level, one line (with optional std bars) per label."""
    fig, axes = _grid(len(panels), 3, 4.2, 3.3)
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
    return _finish(fig, axes, len(panels), title, path)


def plot_transfer(layers: List[dict], path: Path, title: str = "") -> Path:
    """One panel per layer: |G_h(i w)| of a few channels and the HiPPO-LegS reference on log axes; the spike
    is marked by a vertical line. Each dict: name, w, G (C, F) magnitudes, channels, ref (F,), spike."""
    fig, axes = _grid(len(layers), 2, 5.5, 3.8)
    for ax, d in zip(axes.flat, layers):
        for c, g in zip(d["channels"], d["G"]):
            ax.loglog(d["w"], g, lw=0.9, label=f"channel {c}")
        ax.loglog(d["w"], d["ref"], "k--", lw=1.2, label=f"HiPPO-LegS N={d['N']}")
        ax.axvline(d["spike"], color="r", ls=":", lw=1.2, label=f"spike {d['spike']:.4g}")
        ax.set_title(d["name"], fontsize=9)
        ax.set_xlabel("omega (rad / unit time)")
        ax.set_ylabel("|G(i omega)|")
        ax.legend(fontsize=7)
    return _finish(fig, axes, len(layers), title, path)
