"""`ssm train` end to end on a tiny slice: fit + test, bad configs, resume equivalence."""
import json

import pytest
import torch
from lightning.pytorch.callbacks import Callback

from ssm.train.cli import _cli, train

CKPT = json.dumps([{"class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
                    "init_args": {"save_last": True, "every_n_train_steps": 1, "save_top_k": 0,
                                  "dirpath": "${trainer.default_root_dir}/checkpoints"}}])


def tiny(root, *extra):
    return ["--trainer.default_root_dir", str(root), "--trainer.logger", "false",
            "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
            "--trainer.callbacks", CKPT, "--data.init_args.limit", "120", "--data.init_args.batch_size", "16",
            "--model.d_model", "8", "--model.n_layers", "1", "--model.layer_kwargs", '{"d_state": 4}',
            "--trainer.limit_val_batches", "1", "--trainer.limit_test_batches", "1", "--trainer.log_every_n_steps", "1",
            *extra]


def test_fast_dev_run_fits_and_tests(tmp_path):
    metrics = train(tiny(tmp_path, "--trainer.fast_dev_run", "1"))
    assert 0.0 <= metrics["test/acc"] <= 1.0 and metrics["test/loss"] > 0


@pytest.mark.parametrize("key,value,needle", [
    ("--model.layer", "s6", "model.layer"),
    ("--model.d_model", "wide", "model.d_model"),
    ("--model.norm", "group", "model.norm"),
])
def test_bad_config_fails_before_training_naming_the_key(tmp_path, key, value, needle):
    with pytest.raises(ValueError, match=needle):
        train(tiny(tmp_path, key, value))
    assert not (tmp_path / "checkpoints").exists()


class Interrupt(Callback):
    """Stands in for a kill: stop the process's fit loop hard after `at` optimizer steps."""

    def __init__(self, at):
        self.at = at

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.at:
            raise RuntimeError("simulated kill")


def _weights(path):
    return torch.load(path, map_location="cpu", weights_only=False)["state_dict"]


def test_resume_from_last_checkpoint_matches_uninterrupted_run(tmp_path):
    common = ["--trainer.max_epochs", "2", "--trainer.limit_train_batches", "5", "--trainer.precision", "64-true",
              "--trainer.deterministic", "true", "--seed_everything", "3", "--model.dropout", "0.1"]
    cli = _cli(tiny(tmp_path / "a", *common))
    cli.trainer.fit(cli.model, cli.datamodule)
    ref = _weights(tmp_path / "a" / "checkpoints" / "last.ckpt")

    cli = _cli(tiny(tmp_path / "b", *common))
    cli.trainer.callbacks.append(Interrupt(at=7))  # mid-way through the second epoch
    with pytest.raises(RuntimeError, match="simulated kill"):
        cli.trainer.fit(cli.model, cli.datamodule)
    torch.manual_seed(12345)  # a new process would start from another RNG state
    cli = _cli(tiny(tmp_path / "b", *common))
    cli.trainer.fit(cli.model, cli.datamodule, ckpt_path="last")
    assert cli.trainer.global_step == 10
    got = _weights(tmp_path / "b" / "checkpoints" / "last.ckpt")
    assert ref.keys() == got.keys()
    for k in ref:
        torch.testing.assert_close(got[k], ref[k], rtol=0, atol=0, msg=k)


def test_eval_finds_the_run_config_and_scores_a_checkpoint(tmp_path):
    from ssm.kernels import dispatch
    from ssm.train.cli import evaluate

    args = tiny(tmp_path, "--trainer.max_steps", "2")
    args[args.index("--trainer.logger") + 1] = "true"  # a logger run writes the config.yaml that eval reads
    train(args)
    dispatch.reset_cache()  # eval's first kernel call then probes under torch.inference_mode
    metrics = evaluate(["--ckpt", str(tmp_path / "checkpoints" / "last.ckpt"), "--trainer.limit_val_batches", "1",
                        "--trainer.limit_test_batches", "1", "--trainer.enable_progress_bar", "false"])
    assert {"val/acc", "test/acc"} <= metrics.keys()


def test_missing_data_fails_before_training_naming_the_setting(tmp_path):
    with pytest.raises(FileNotFoundError, match="data_dir"):
        train(tiny(tmp_path, "--data.init_args.source", "idx", "--data.init_args.data_dir", str(tmp_path / "none")))
    assert not (tmp_path / "checkpoints").exists()


def test_ema_callback_and_regression_task(tmp_path):
    import lightning as L

    from ssm.train import SequenceLightningModule

    ema = json.dumps([{"class_path": "lightning.pytorch.callbacks.EMAWeightAveraging"}])
    metrics = train(tiny(tmp_path / "ema", "--trainer.fast_dev_run", "2") + ["--trainer.callbacks", ema])
    assert "test/acc" in metrics

    x = torch.randn(32, 12, 2)
    y = x.sum(dim=(1, 2))
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8)
    module = SequenceLightningModule(d_input=2, d_output=1, task="regression", d_model=8, n_layers=1,
                                     layer_kwargs={"d_state": 4}, lr=0.01)
    trainer = L.Trainer(max_epochs=3, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False)
    before = trainer.validate(module, data, verbose=False)[0]["val/mse"]
    trainer.fit(module, data, data)
    after = trainer.validate(module, data, verbose=False)[0]["val/mse"]
    assert after < before


def test_a_run_prints_no_noise(tmp_path, capfd, caplog):
    """No LightningCLI args warning, LeafSpec deprecation, logger advertisement or FLOPs of 0 in a plain run."""
    import logging
    import warnings

    from ssm.cli import main

    caplog.set_level(logging.INFO)
    args = tiny(tmp_path, "--trainer.max_steps", "1")
    args[args.index("--trainer.enable_model_summary") + 1] = "true"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["train", *args]) == 0
    out = capfd.readouterr()
    text = "\n".join([out.out, out.err, caplog.text] + [str(w.message) for w in caught])
    for noise in ("args parameter is intended", "LeafSpec", "Tip:", "litlogger", "FLOPs"):
        assert noise not in text, noise
    assert "Params:" in text and "test accuracy:" in text  # the summary and the result are still printed
