"""`ssm robust`: accuracy of a trained run under perturbations, and `ssm robust transfer`: its layers' spectra."""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import torch

from .perturb import PERTURBATIONS, make, needs_spectrum, parse_levels, parse_names
from .transfer import CRITERIA

OVERRIDE_PREFIXES = ("--data.", "--trainer.", "--model.")


class UsageError(ValueError):
    """A bad command-line argument: reported in one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one clear line instead of usage + message
        raise UsageError(message)


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return v


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not v > 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got {text!r}")
    return v


def robust_parser() -> argparse.ArgumentParser:
    """The `ssm robust` parser (overrides of the run's config, --data.* --trainer.* --model.*, pass through)."""
    p = _Parser(prog="ssm robust", description="accuracy of a trained run under input and layer perturbations "
                "(`ssm robust transfer --ckpt FILE` plots its layers' transfer functions)",
                epilog="perturbations: " + "; ".join(f"{k}: {v}" for k, v in PERTURBATIONS.items()))
    p.add_argument("--ckpt", required=True, help="checkpoint of a run (RUN/checkpoints/last.ckpt); its config rebuilds "
                   "the model and the data")
    p.add_argument("--perturb", default="fourier,gaussian", help=f"comma-separated, from: {', '.join(PERTURBATIONS)}")
    p.add_argument("--levels", default="0,0.05,0.1,0.2", help="comma-separated levels >= 0 (0 = clean)")
    p.add_argument("--out", default=None, help="output directory (default RUN/robustness)")
    p.add_argument("--limit", type=_positive_int, default=None, help="evaluate N test examples drawn at random (with --seed)")
    p.add_argument("--frequency", type=_positive_float, default=None,
                   help="Fourier-mode frequency: radians per input step for `fourier`, radians per unit of the layers' "
                   "time (times dt_h) for `fourier-layer`; default: the spike of the model's SSM layers")
    p.add_argument("--spike", choices=CRITERIA, default="legs", help="how the spike is found: legs = largest departure "
                   "from the HiPPO-LegS reference, peak = highest resonance of |G|")
    p.add_argument("--pgd-steps", type=_positive_int, default=10, help="PGD iterations (default 10)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random draws (noise amplitudes, PGD start)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def transfer_parser() -> argparse.ArgumentParser:
    """The `ssm robust transfer` parser."""
    p = _Parser(prog="ssm robust transfer", description="plot |G(i w)| of every SSM layer of a run against the "
                "HiPPO-LegS reference and mark the spikes (PNG + CSV)")
    p.add_argument("--ckpt", required=True)
    p.add_argument("--out", default=None, help="output directory (default RUN/robustness)")
    p.add_argument("--channels", type=_positive_int, default=4, help="channels plotted per layer (default 4)")
    p.add_argument("--points", type=_positive_int, default=2000, help="frequencies on the log grid (default 2000)")
    p.add_argument("--spike", choices=CRITERIA, default="legs")
    return p


def _split_overrides(rest: Sequence[str]) -> List[str]:
    """Keep `--data.x v`, `--trainer.x v`, `--model.x v` for the run's config; anything else is an error."""
    out, i = [], 0
    while i < len(rest):
        arg = rest[i]
        if not arg.startswith(OVERRIDE_PREFIXES):
            raise UsageError(f"unrecognized argument {arg!r}")
        if "=" in arg:
            out.append(arg)
            i += 1
        elif i + 1 < len(rest):
            out += [arg, rest[i + 1]]
            i += 2
        else:
            raise UsageError(f"argument {arg} expects a value")
    return out


def _check_ckpt(path: str) -> Path:
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"--ckpt {path} does not exist (expected a checkpoint file such as RUN/checkpoints/last.ckpt)")
    return p


def load_checkpoint(ckpt: Path, overrides: Sequence[str] = ()):
    """(LightningModule with the checkpoint's weights, data module) rebuilt from the run's saved config."""
    from ..train.cli import load_run, load_weights

    with warnings.catch_warnings():  # LightningCLI warns when given args while sys.argv holds `ssm robust ...`
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
        cli, path = load_run(ckpt, overrides)
    return load_weights(cli.model, path), cli.datamodule


_load = load_checkpoint  # the name main() calls (tests replace it to prove bad arguments load nothing)


def _out_dir(out: Optional[str], ckpt: Path) -> Path:
    return Path(out) if out else ckpt.resolve().parent.parent / "robustness"


def _fail(prog: str, message: str) -> int:
    print(f"{prog}: error: {message}", file=sys.stderr)
    return 2


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of `ssm robust [transfer] ...`; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "transfer":
        return transfer_main(argv[1:])
    try:
        ns, rest = robust_parser().parse_known_args(argv)
        names = parse_names(ns.perturb)
        levels = parse_levels(ns.levels, names)
        overrides = _split_overrides(rest)
        ckpt = _check_ckpt(ns.ckpt)
    except ValueError as e:
        return _fail("ssm robust", str(e))
    module, data = _load(ckpt, overrides)
    if getattr(module.hparams, "task", "classification") != "classification":
        return _fail("ssm robust", "ssm robust reports accuracy: it needs a classification run, got task "
                     f"{module.hparams.task!r}")
    try:
        perts = [make(n, module, ns.frequency, ns.spike, ns.pgd_steps) for n in names]
    except ValueError as e:  # no transfer function (RNNs, CfC), or one the layer cannot give
        culprit = next((n for n in names if needs_spectrum(n, ns.frequency)), names[0])
        return _fail("ssm robust", f"perturbation {culprit!r}: {e}")
    for p in perts:
        if p.omega is not None:
            unit = "rad/step" if p.name == "fourier" else "rad/unit time"
            print(f"{p.name}: frequency {p.omega:.6g} {unit}" + ("" if ns.frequency else f" (spike, {ns.spike})"))
    data.setup("test")
    from .evaluate import evaluate, format_table, subset_loader

    loader = subset_loader(data.test_dataloader(), ns.limit, ns.seed)
    rows = evaluate(module, loader, perts, levels, ns.device, ns.seed, not ns.no_progress)
    print(format_table(rows))
    csv_path, png = _write(rows, _out_dir(ns.out, ckpt), ckpt)
    print(f"wrote {csv_path} and {png}")
    return 0


def _write(rows, out: Path, ckpt: Path) -> Tuple[Path, Path]:
    from .evaluate import CLEAN, write_csv
    from .plots import plot_accuracy

    panels = {}
    for name in dict.fromkeys(r.perturbation for r in rows if r.perturbation != CLEAN):
        mine = sorted((r for r in rows if r.perturbation == name), key=lambda r: r.level)
        panels[name] = {"accuracy": ([r.level for r in mine], [r.accuracy for r in mine], None)}
    return write_csv(rows, out / "robustness.csv"), plot_accuracy(panels, out / "robustness.png", str(ckpt))


def transfer_main(argv: Sequence[str]) -> int:
    """`ssm robust transfer --ckpt FILE [--out DIR]`: PNG + CSV of every SSM layer's |G(i w)|, spikes printed."""
    try:
        ns, rest = transfer_parser().parse_known_args(list(argv))
        overrides = _split_overrides(rest)
        ckpt = _check_ckpt(ns.ckpt)
    except ValueError as e:
        return _fail("ssm robust transfer", str(e))
    module, _ = _load(ckpt, overrides)
    from .spectra import transfer_report

    try:
        lines, csv_path, png = transfer_report(module, _out_dir(ns.out, ckpt), ns.channels, ns.points, ns.spike)
    except ValueError as e:
        return _fail("ssm robust transfer", str(e))
    print("\n".join(lines))
    print(f"wrote {csv_path} and {png}")
    return 0
