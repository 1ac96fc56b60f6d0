"""`ssm robust transfer`: |G_h(i w)| of each SSM layer against the HiPPO-LegS reference, as CSV, PNG and text."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import List, Tuple

import torch
from torch import nn

from .layers import layer_kind, state_size
from .plots import plot_transfer
from .transfer import diagonal_spike, find_spike, frequency_grid, layer_response, legs_reference, ssm_layers


def layer_spectra(model: nn.Module, channels: int = 4, points: int = 2000, criterion: str = "legs") -> List[dict]:
    """Per SSM layer: name, kind, N, w (F,), channels, G (C, F) = |G_h(i w)|, ref (F,) = |G_H(i w)|, spike."""
    layers = ssm_layers(model)
    spike = find_spike(model, criterion, "continuous", points)
    w = frequency_grid(max(state_size(l) for _, l in layers), points)
    out = []
    for name, layer in layers:
        G = layer_response(layer, w).abs()
        pick = torch.linspace(0, G.shape[0] - 1, min(channels, G.shape[0])).round().long().unique()
        N = state_size(layer)
        out.append({"name": f"{name} ({layer_kind(layer)})", "kind": layer_kind(layer), "N": N, "w": w.numpy(),
                    "channels": pick.tolist(), "G": G[pick].numpy(), "ref": legs_reference(N, w).abs().numpy(),
                    "spike": spike.per_layer[name]})
    return out


def transfer_report(model: nn.Module, out: Path, channels: int = 4, points: int = 2000,
                    criterion: str = "legs") -> Tuple[List[str], Path, Path]:
    """Write transfer.csv (layer, channel, omega, |G|, |G_ref|) and transfer.png; return (text lines, paths)."""
    spectra = layer_spectra(model, channels, points, criterion)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "transfer.csv"
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["layer", "channel", "omega", "abs_G", "abs_G_legs"])
        for d in spectra:
            for c, g in zip(d["channels"], d["G"]):
                w.writerows([d["name"], c, f"{om:.8g}", f"{x:.8g}", f"{r:.8g}"] for om, x, r in zip(d["w"], g, d["ref"]))
    tmp.replace(path)
    png = plot_transfer(spectra, out / "transfer.png", f"|G(i omega)| against HiPPO-LegS (spike: {criterion})")
    lines = [f"{'layer':40s} {'N':>4s} {'spike omega':>12s}"]
    lines += [f"{d['name']:40s} {d['N']:4d} {d['spike']:12.5g}" for d in spectra]
    for N in sorted({d["N"] for d in spectra}):
        om, height = diagonal_spike(N)
        lines.append(f"reference: the diagonal restriction of HiPPO-LegS (N={N}) departs most at omega = {om:.5g} "
                     f"(|G_diag - G_H| = {height:.3f})")
    return lines, path, png
