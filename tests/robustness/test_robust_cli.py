"""`ssm robust` and `ssm robust transfer` end to end on tiny checkpoints trained here (an SSM and an RNN),
and bad arguments rejected in one line before any work."""
import csv
import json

import pytest

from ssm.cli import main
from ssm.robustness import cli as robust_cli
from ssm.train.cli import train

CKPT = json.dumps([{"class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
                    "init_args": {"save_last": True, "save_top_k": 0,
                                  "dirpath": "${trainer.default_root_dir}/checkpoints"}}])
ALL = "fourier,fourier-layer,gaussian,shift,warp,fgsm,pgd,pgd-l2"


def _train(root, layer, layer_kwargs):
    train(["--trainer.default_root_dir", str(root), "--trainer.enable_progress_bar", "false",
           "--trainer.enable_model_summary", "false", "--trainer.callbacks", CKPT, "--trainer.max_steps", "2",
           "--trainer.limit_val_batches", "1", "--trainer.limit_test_batches", "1", "--trainer.log_every_n_steps", "1",
           "--data.init_args.limit", "48", "--data.init_args.batch_size", "8", "--model.d_model", "4",
           "--model.n_layers", "1", "--model.layer", layer, "--model.layer_kwargs", json.dumps(layer_kwargs)])
    return root / "checkpoints" / "last.ckpt"


@pytest.fixture(scope="module")
def ssm_ckpt(tmp_path_factory):
    return _train(tmp_path_factory.mktemp("s4d"), "s4d", {"d_state": 8})


@pytest.fixture(scope="module")
def rnn_ckpt(tmp_path_factory):
    return _train(tmp_path_factory.mktemp("gru"), "lowrank-gru", {"parametrization": "lowrank", "rank": 2})


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_robust_on_an_ssm_checkpoint_writes_table_csv_and_plot(ssm_ckpt, tmp_path, capsys):
    out = tmp_path / "out"
    # a small level: first-order attacks must raise the loss there (at large levels a 2-step attack on a barely
    # trained model may land anywhere)
    rc = main(["robust", "--ckpt", str(ssm_ckpt), "--perturb", ALL, "--levels", "0,0.05", "--limit", "10",
               "--pgd-steps", "2", "--no-progress", "--out", str(out)])
    text = capsys.readouterr().out
    assert rc == 0
    assert "fourier-layer: frequency" in text and "(spike, legs)" in text
    rows = _rows(out / "robustness.csv")
    assert {r["perturbation"] for r in rows} == {"clean"} | set(ALL.split(","))
    assert all(int(r["n"]) == 10 for r in rows)
    clean = float(rows[0]["accuracy"])
    assert all(float(r["accuracy"]) == clean for r in rows if float(r["level"]) == 0)  # level 0 is the clean model
    loss = {(r["perturbation"], float(r["level"])): float(r["loss"]) for r in rows}
    assert loss[("pgd", 0.05)] > loss[("clean", 0.0)] and loss[("fgsm", 0.05)] > loss[("clean", 0.0)]
    assert (out / "robustness.png").stat().st_size > 1000
    assert "perturbation" in text and "pgd-l2" in text  # the printed table


def test_robust_transfer_plots_each_ssm_layer(ssm_ckpt, tmp_path, capsys):
    rc = main(["robust", "transfer", "--ckpt", str(ssm_ckpt), "--out", str(tmp_path), "--points", "300"])
    assert rc == 0
    rows = _rows(tmp_path / "transfer.csv")
    assert {r["layer"] for r in rows} == {"model.blocks.0.layer (S4D)"} and len(rows) == 4 * 300
    assert all(float(r["abs_G_legs"]) > 0 for r in rows)
    assert (tmp_path / "transfer.png").stat().st_size > 1000
    assert "N=8" in capsys.readouterr().out


def test_robust_on_an_rnn_needs_an_explicit_frequency(rnn_ckpt, tmp_path, capsys):
    rc = main(["robust", "--ckpt", str(rnn_ckpt), "--perturb", "fourier-layer,gaussian", "--levels", "0,0.1",
               "--limit", "8", "--no-progress", "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "LowRankGRU" in err and "--frequency" in err and len(err.splitlines()) == 1
    rc = main(["robust", "--ckpt", str(rnn_ckpt), "--perturb", "fourier,fourier-layer,pgd", "--levels", "0,0.1",
               "--frequency", "0.5", "--limit", "8", "--pgd-steps", "1", "--no-progress", "--out", str(tmp_path)])
    assert rc == 0
    rows = _rows(tmp_path / "robustness.csv")
    assert {float(r["frequency"]) for r in rows if r["perturbation"].startswith("fourier")} == {0.5}
    assert main(["robust", "transfer", "--ckpt", str(rnn_ckpt), "--out", str(tmp_path)]) == 2
    assert "no transfer function" in capsys.readouterr().err


@pytest.mark.parametrize("args,needle", [
    (["--perturb", "fourier,blur"], "unknown perturbation 'blur'"),
    (["--levels", "0,-0.1"], "--levels entry must be a finite number >= 0"),
    (["--levels", "0,abc"], "--levels must be comma-separated numbers"),
    (["--levels", "0,nan"], "--levels entry must be a finite number >= 0"),
    (["--perturb", "shift", "--levels", "0,2"], "must be <= 1.0"),
    (["--limit", "0"], "--limit"),
    (["--frequency", "-3"], "--frequency"),
    (["--bogus", "1"], "unrecognized argument '--bogus'"),
])
def test_bad_arguments_fail_in_one_line_before_any_work(args, needle, ssm_ckpt, capsys, monkeypatch):
    monkeypatch.setattr(robust_cli, "_load", lambda *a: pytest.fail("loaded the run despite a bad argument"))
    assert main(["robust", "--ckpt", str(ssm_ckpt), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1 and err.startswith("ssm robust: error:")


def test_missing_checkpoint_fails_in_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(robust_cli, "_load", lambda *a: pytest.fail("loaded a run that does not exist"))
    assert main(["robust", "--ckpt", str(tmp_path / "nope.ckpt")]) == 2
    assert main(["robust", "transfer", "--ckpt", str(tmp_path / "nope.ckpt")]) == 2
    assert main(["robust"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and "nope.ckpt does not exist" in err[0] and "--ckpt" in err[2]
