"""Every shipped config parses, builds its model, and runs a forward/backward pass of the right shape."""
from pathlib import Path

import pytest
import torch

from ssm.train.cli import _cli

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*/*.yaml"))


def test_configs_exist_for_the_mnist_tasks():
    names = {f"{p.parent.name}/{p.stem}" for p in CONFIGS}
    assert {"smnist/s4d", "smnist/s4", "pmnist/s4d", "pmnist/lowrank-gru"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_config_builds_and_runs(path, tmp_path):
    cli = _cli(["--config", str(path), "--trainer.default_root_dir", str(tmp_path), "--trainer.logger", "false"])
    assert cli.model.hparams.layer == path.stem
    assert cli.datamodule.hparams.permuted == (path.parent.name == "pmnist")
    x = torch.rand(2, 32, 1)  # short: the shape path is what is checked here
    out = cli.model(x)
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    out.sum().backward()


def test_s5_configs_use_flax_batchnorm_momentum(tmp_path):
    cli = _cli(["--config", str(CONFIGS[0].parents[1] / "smnist" / "s5.yaml"), "--trainer.logger", "false",
                "--trainer.default_root_dir", str(tmp_path)])
    norms = [b.norm.norm for b in cli.model.model.blocks]
    assert all(isinstance(n, torch.nn.BatchNorm1d) and n.momentum == 0.05 for n in norms)
