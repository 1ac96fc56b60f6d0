"""`ssm train` / `ssm eval`: LightningCLI over SequenceLightningModule and the data modules."""
from __future__ import annotations

import logging
import os
import re
import warnings
from argparse import ArgumentError
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import lightning as L
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.plugins.io import TorchCheckpointIO

from .checkpoint import CheckedCheckpointIO, check_fits, read_checkpoint
from .config import (check_config_file, check_layer_config, config_files, flat_keys, innermost, one_line,
                     setting_prefix)
from .module import SequenceLightningModule
from .summary import replace_default_summary

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
    """LightningCLI with the data module's sizes and rate linked into the model, `--ckpt_path` to resume from,
    `model.layer_kwargs` checked against the layer before anything is built, and checkpoint errors naming the file."""

    def add_arguments_to_parser(self, parser: Any) -> None:
        parser.add_argument("--ckpt_path", type=Optional[str], default=None,
                            help='checkpoint to resume fitting from ("last" = the run\'s last.ckpt)')
        for key in ("d_input", "d_output", "vocab_size", "rate"):
            parser.link_arguments(f"data.{key}", f"model.{key}", apply_on="instantiate")
        parser.set_defaults(DEFAULTS)

    def parse_arguments(self, parser: Any, args: Any) -> None:
        """Parse, then check model.layer_kwargs against the layer's constructor (before the seed or any object)."""
        super().parse_arguments(parser, args)
        sub = self.config.get("subcommand")
        config = self.config[sub] if sub else self.config
        config.model.layer_kwargs = check_layer_config(config.model.layer, config.model.layer_kwargs)

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

    def instantiate_trainer(self, **kwargs: Any) -> L.Trainer:
        """Lightning's trainer, with checkpoint loading that names the file and a summary without unmeasured FLOPs."""
        trainer = super().instantiate_trainer(**kwargs)
        if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:
            trainer.strategy.checkpoint_io = CheckedCheckpointIO()
        replace_default_summary(trainer.callbacks)
        return trainer


class _NoTips(logging.Filter):
    """Drops Lightning's advertisements ("💡 Tip: ... try installing litlogger") from its info log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("\N{ELECTRIC LIGHT BULB} Tip")


def quiet_lightning() -> None:
    """Silence the messages Lightning prints on every run that say nothing about this run."""
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated",
                            category=FutureWarning, module=r"lightning\.")
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        log = logging.getLogger(name)
        if not any(isinstance(f, _NoTips) for f in log.filters):
            log.addFilter(_NoTips())


def _cli(args: Optional[List[str]]) -> SSMCLI:
    """The CLI with model, data module and trainer built from `args`; ValueError/FileNotFoundError with one line
    naming the setting or file for a bad config (before anything is built)."""
    quiet_lightning()
    for path in config_files(args or []):
        check_config_file(path)
    with warnings.catch_warnings():  # `ssm train ARGS` passes its own argv on purpose
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended", category=UserWarning)
        try:
            return SSMCLI(SequenceLightningModule, L.LightningDataModule, subclass_mode_data=True, run=False,
                          args=args, save_config_kwargs={"overwrite": True},
                          parser_kwargs={"prog": "ssm train", "exit_on_error": False})
        except ArgumentError as e:
            raise ValueError(one_line(e) + _where(e, config_files(args or []))) from None
        except (ValueError, TypeError) as e:  # a constructor's check: name the setting it is about
            cause = innermost(e)
            raise (TypeError if isinstance(cause, TypeError) else ValueError)(setting_prefix(cause) + str(cause)) from e


def _where(error: ArgumentError, files: List[str]) -> str:
    """" (in FILE)" for an unknown key that comes from one of the config `files`."""
    m = re.search(r"Option '([\w.]+)' is not accepted", str(error))
    hits = [f for f in files if m and m.group(1) in flat_keys(f)]
    return f" (in {', '.join(hits)}; `ssm train --help` lists the settings)" if hits else ""


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
    The weights are not loaded: pass the path to trainer.validate/test, or load it with `load_weights`.
    FileNotFoundError/ValueError name the checkpoint, the config or the setting that is wrong."""
    args = list(args)
    ckpt = Path(ckpt)
    if not ckpt.is_file():
        raise FileNotFoundError(f"checkpoint {ckpt} does not exist")
    if "--config" not in args and not any(a.startswith("--config=") for a in args):
        cfg = run_config(ckpt)
        if cfg is None:
            raise FileNotFoundError(f"no config.yaml of the run that wrote {ckpt} (looked in the 3 directories above "
                                    "it); pass --config FILE")
        args = ["--config", str(cfg)] + args
    return _cli(args + ["--trainer.logger", "false"]), str(ckpt)


def load_weights(module: L.LightningModule, ckpt: Union[str, Path]) -> L.LightningModule:
    """Load the weights of checkpoint `ckpt` into `module` (the run's own architecture) and return it;
    ValueError naming the file if it is unreadable or was written by a model of another size."""
    if not isinstance(module, L.LightningModule):
        raise TypeError(f"module must be a LightningModule (e.g. load_run(ckpt)[0].model), got {type(module).__name__}")
    state = read_checkpoint(ckpt)
    check_fits(module, state, ckpt, hparams=getattr(module, "hparams", None))
    module.load_state_dict(state["state_dict"])
    return module


def evaluate(args: Optional[List[str]] = None) -> Dict[str, float]:
    """Validate and test the checkpoint given by `--ckpt FILE` with its run's config (or `--config`)."""
    args = list(args or [])
    if "--ckpt" not in args or args.index("--ckpt") + 1 >= len(args):
        raise ValueError("--ckpt FILE is required (ssm eval --ckpt FILE [--config FILE] [--key value ...])")
    i = args.index("--ckpt")
    ckpt = args[i + 1]
    del args[i: i + 2]
    cli, ckpt = load_run(ckpt, args)
    val = cli.trainer.validate(cli.model, cli.datamodule, ckpt_path=ckpt)
    test = cli.trainer.test(cli.model, cli.datamodule, ckpt_path=ckpt)
    return {k: float(v) for r in (val + test) for k, v in r.items()}
