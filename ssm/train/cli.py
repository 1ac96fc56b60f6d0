"""`ssm train` / `ssm eval`: LightningCLI over SequenceLightningModule and the data modules."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import lightning as L
import torch
from lightning.pytorch.cli import LightningCLI

from .module import SequenceLightningModule

ROOT = "${trainer.default_root_dir}"  # placeholder in logger/checkpoint paths, replaced by the run directory

# The embedded default job: S4D on sequential MNIST (real images; the offline 5k subset unless idx files exist).
DEFAULTS: Dict[str, Any] = {
    "seed_everything": 1,
    "data": {"class_path": "ssm.data.MNISTDataModule", "init_args": {"batch_size": 50}},
    "model.layer": "s4d",
    "model.layer_kwargs": {"d_state": 64, "lr": 1e-3},
    "model.d_model": 64,
    "model.n_layers": 4,
    "model.lr": 0.01,
    "model.weight_decay": 0.01,
    "model.warmup_steps": 50,
    "trainer.max_epochs": 6,
    "trainer.use_distributed_sampler": False,  # the data modules' loaders shard themselves (and resume mid-epoch)
    "trainer.default_root_dir": "runs/smnist-s4d",
    "trainer.logger": [
        {"class_path": "lightning.pytorch.loggers.CSVLogger", "init_args": {"save_dir": ROOT, "name": "csv"}},
        {"class_path": "lightning.pytorch.loggers.TensorBoardLogger", "init_args": {"save_dir": ROOT, "name": "tensorboard"}},
    ],
    "trainer.callbacks": [
        {"class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
         "init_args": {"dirpath": ROOT + "/checkpoints", "monitor": "val/acc", "mode": "max", "save_last": True,
                       "filename": "best-{epoch}"}},
        {"class_path": "lightning.pytorch.callbacks.LearningRateMonitor", "init_args": {"logging_interval": "step"}},
        {"class_path": "lightning.pytorch.callbacks.RichProgressBar"},
    ],
}


class SSMCLI(LightningCLI):
    """LightningCLI with the data module's sizes linked into the model and a `--ckpt_path` to resume from."""

    def add_arguments_to_parser(self, parser: Any) -> None:
        parser.add_argument("--ckpt_path", type=Optional[str], default=None,
                            help='checkpoint to resume fitting from ("last" = the run\'s last.ckpt)')
        for key in ("d_input", "d_output", "vocab_size"):
            parser.link_arguments(f"data.{key}", f"model.{key}", apply_on="instantiate")
        parser.set_defaults(DEFAULTS)

    def before_instantiate_classes(self) -> None:
        """Put loggers and checkpoints under the run directory (so `--ckpt_path last` finds the last run's file);
        drop the default progress bar when `--trainer.enable_progress_bar false`."""
        config = self.config.get(self.subcommand) if self.subcommand else self.config
        if config.trainer.get("enable_progress_bar") is False and isinstance(config.trainer.get("callbacks"), list):
            config.trainer.callbacks = [c for c in config.trainer.callbacks
                                        if "ProgressBar" not in str(getattr(c, "class_path", ""))]
        root = str(config.trainer.default_root_dir or ".")
        for key in ("logger", "callbacks"):
            items = config.trainer.get(key)
            for item in items if isinstance(items, list) else []:
                args = getattr(item, "init_args", None)
                for field in ("save_dir", "dirpath"):
                    value = args.get(field) if args is not None else None
                    if isinstance(value, str) and value.startswith(ROOT):
                        args[field] = root + value[len(ROOT):]


def _cli(args: Optional[List[str]]) -> SSMCLI:
    return SSMCLI(SequenceLightningModule, L.LightningDataModule, subclass_mode_data=True, run=False, args=args,
                  save_config_kwargs={"overwrite": True}, parser_kwargs={"prog": "ssm train"})


def train(args: Optional[List[str]] = None) -> Dict[str, float]:
    """Fit, then test the best checkpoint (or the final weights without a checkpoint callback); returns test metrics."""
    cli = _cli(args)
    trainer, model, data = cli.trainer, cli.model, cli.datamodule
    trainer.fit(model, data, ckpt_path=cli.config.get("ckpt_path"))
    if trainer.interrupted:
        return {}
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    results = trainer.test(model, data, ckpt_path=best or None, verbose=trainer.is_global_zero)
    metrics = {k: float(v) for k, v in (results[0] if results else {}).items()}
    if trainer.is_global_zero and "test/acc" in metrics:
        print(f"test accuracy: {100 * metrics['test/acc']:.2f}%" + (f" (checkpoint {os.path.basename(best)})" if best else ""))
    return metrics


def run_config(ckpt: Path) -> Optional[Path]:
    """The newest config.yaml LightningCLI saved in the run that wrote `ckpt` (<root>/checkpoints/x.ckpt)."""
    for parent in list(ckpt.resolve().parents)[:3]:
        found = sorted(parent.glob("config.yaml")) + sorted(parent.glob("*/version_*/config.yaml"),
                                                               key=lambda p: p.stat().st_mtime)
        if found:
            return found[-1]
    return None


def load_run(ckpt: Union[str, Path], args: Sequence[str] = ()) -> Tuple[SSMCLI, str]:
    """The CLI (model, data module, trainer) of the run that wrote checkpoint `ckpt`, built from that run's
    config.yaml (or `--config` in `args`) with `args` as overrides; returns (cli, checkpoint path).
    The weights are not loaded: pass the path to trainer.validate/test, or load it with `load_weights`."""
    args = list(args)
    ckpt = Path(ckpt)
    if not ckpt.exists():
        raise SystemExit(f"--ckpt {ckpt} does not exist")
    if "--config" not in args:
        cfg = run_config(ckpt)
        if cfg is None:
            raise SystemExit(f"no config.yaml found beside {ckpt}; pass --config FILE")
        args = ["--config", str(cfg)] + args
    return _cli(args + ["--trainer.logger", "false"]), str(ckpt)


def load_weights(module: L.LightningModule, ckpt: Union[str, Path]) -> L.LightningModule:
    """Load the state dict of checkpoint `ckpt` into `module` (the run's own architecture) and return it."""
    state = torch.load(str(ckpt), map_location="cpu", weights_only=False)
    module.load_state_dict(state["state_dict"])
    return module


def evaluate(args: Optional[List[str]] = None) -> Dict[str, float]:
    """Validate and test the checkpoint given by `--ckpt FILE` with its run's config (or `--config`)."""
    args = list(args or [])
    if "--ckpt" not in args or args.index("--ckpt") + 1 >= len(args):
        raise SystemExit("ssm eval: --ckpt FILE is required")
    i = args.index("--ckpt")
    ckpt = args[i + 1]
    del args[i: i + 2]
    cli, ckpt = load_run(ckpt, args)
    val = cli.trainer.validate(cli.model, cli.datamodule, ckpt_path=ckpt)
    test = cli.trainer.test(cli.model, cli.datamodule, ckpt_path=ckpt)
    return {k: float(v) for r in (val + test) for k, v in r.items()}
