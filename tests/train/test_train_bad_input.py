"""User errors in `ssm train` / `ssm eval` and in the Lightning module: each prints one clear line to stderr (the
setting or file, what was expected, what was received) and exits non-zero; the library raises ValueError/TypeError/
FileNotFoundError naming the same. One table row per case."""
import json
import shutil

import pytest
import torch

from ssm.cli import main
from ssm.train import SequenceLightningModule
from ssm.train.cli import load_run, load_weights
from ssm.train.module import _unpack

NO_CKPT = json.dumps([{"class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
                       "init_args": {"save_last": True, "save_top_k": 0,
                                     "dirpath": "${trainer.default_root_dir}/checkpoints"}}])


def tiny(root, *extra):
    return ["--trainer.default_root_dir", str(root), "--trainer.enable_progress_bar", "false",
            "--trainer.enable_model_summary", "false", "--trainer.callbacks", NO_CKPT,
            "--data.init_args.limit", "60", "--data.init_args.batch_size", "16", "--model.d_model", "8",
            "--model.n_layers", "1", "--model.layer_kwargs", '{"d_state": 4}', "--trainer.limit_val_batches", "1",
            "--trainer.limit_test_batches", "1", "--trainer.log_every_n_steps", "1", *extra]


def run(argv, capsys):
    """(exit code, non-empty stderr lines) of `ssm argv`."""
    try:
        rc = main(argv)
    except SystemExit as e:  # a user error must not escape as an exception or an argparse exit
        rc = f"SystemExit({e.code})"
    err = capsys.readouterr().err
    return rc, [line for line in err.splitlines() if line.strip()]


def assert_one_clear_line(rc, lines, needles):
    assert rc == 2, (rc, lines)
    text = "\n".join(lines)
    assert "Traceback" not in text and "usage:" not in text, text
    last = lines[-1]
    assert last.startswith("ssm "), text
    missing = [n for n in needles if n not in last]
    assert not missing, f"{last!r} lacks {missing}"


def write(path, text):
    path.write_text(text)
    return str(path)


# (id, extra args given a tmp dir, substrings of the error line); all fail before anything is built
PARSE_TIME = [
    ("empty config", lambda d: ["--config", write(d / "empty.yaml", "")], ["empty.yaml", "empty", "mapping"]),
    ("config is a list", lambda d: ["--config", write(d / "list.yaml", "- 1\n")], ["list.yaml", "mapping", "list"]),
    ("config bad YAML", lambda d: ["--config", write(d / "bad.yaml", "model: {d_model: 8\n")],
     ["bad.yaml", "YAML"]),
    ("config missing", lambda d: ["--config", str(d / "none.yaml")], ["none.yaml", "does not exist"]),
    ("config unknown key", lambda d: ["--config", write(d / "k.yaml", "modle:\n  d_model: 8\n")], ["modle"]),
    ("d_model not int", lambda d: ["--model.d_model", "wide"], ["model.d_model", "int", "wide"]),
    ("unknown layer", lambda d: ["--model.layer", "s6"], ["model.layer", "s6", "s4d"]),
    ("unknown model key", lambda d: ["--model.d_modle", "8"], ["d_modle"]),
    ("layer_kwargs typo", lambda d: ["--model.layer_kwargs", '{"d_stat": 4}'],
     ["model.layer_kwargs", "d_stat", "s4d", "d_state"]),
    ("layer_kwargs typo in file", lambda d: ["--config", write(d / "t.yaml", "model:\n  layer: s5\n  layer_kwargs:\n"
                                                                          "    blokcs: 2\n")],
     ["model.layer_kwargs", "blokcs", "s5", "blocks"]),
    ("layer_kwargs wrong type", lambda d: ["--model.layer_kwargs", '{"d_state": "big"}'],
     ["model.layer_kwargs.d_state", "int", "big"]),
    ("layer_kwargs float for int", lambda d: ["--model.layer_kwargs", '{"d_state": 4.5}'],
     ["model.layer_kwargs.d_state", "int", "4.5"]),
    ("layer_kwargs not a mapping", lambda d: ["--model.layer_kwargs", "[1, 2]"], ["model.layer_kwargs", "dict"]),
    ("layer_kwargs has d_model", lambda d: ["--model.layer_kwargs", '{"d_model": 4}'],
     ["model.layer_kwargs", "d_model"]),
    ("batch_size not int", lambda d: ["--data.init_args.batch_size", "x"], ["batch_size", "int", "x"]),
    ("max_epochs not int", lambda d: ["--trainer.max_epochs", "x"], ["trainer.max_epochs", "int", "x"]),
    ("data class unknown", lambda d: ["--data", "ssm.data.Nope"], ["data", "ssm.data.Nope"]),
    ("batch_size 0", lambda d: ["--data.init_args.batch_size", "0"], ["batch_size", "0"]),
    ("limit 0", lambda d: ["--data.init_args.limit", "0"], ["limit", "0"]),
    ("val_fraction 1", lambda d: ["--data.init_args.val_fraction", "1.0"], ["val_fraction", "1.0"]),
    ("n_layers -1", lambda d: ["--model.n_layers", "-1"], ["n_layers", "-1"]),
]


@pytest.mark.parametrize("extra,needles", [c[1:] for c in PARSE_TIME], ids=[c[0] for c in PARSE_TIME])
def test_train_config_errors(tmp_path, capsys, extra, needles):
    root = tmp_path / "run"
    rc, lines = run(["train", *tiny(root, "--trainer.max_steps", "1"), *extra(tmp_path)], capsys)
    assert_one_clear_line(rc, lines, needles)
    assert not root.exists()  # nothing was written: the error came before training


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """A tiny run (d_model 8) with its config.yaml; returns its last.ckpt."""
    root = tmp_path_factory.mktemp("run")
    assert main(["train", *tiny(root, "--trainer.max_steps", "1")]) == 0
    return root / "checkpoints" / "last.ckpt"


def broken(ckpt, tmp, kind):
    """A copy of `ckpt` beside it (so the run's config is found): truncated, garbage, or missing."""
    path = ckpt.parent / f"{kind}.ckpt"
    if kind == "truncated":
        path.write_bytes(ckpt.read_bytes()[:3000])
    elif kind == "garbage":
        path.write_bytes(b"not a checkpoint\n" * 10)
    elif kind == "empty":
        path.write_bytes(b"")
    return path


CKPT_CASES = [("missing", ["missing.ckpt", "does not exist"]), ("truncated", ["truncated.ckpt", "not a readable"]),
              ("garbage", ["garbage.ckpt", "not a readable"]), ("empty", ["empty.ckpt", "not a readable"])]


@pytest.mark.parametrize("kind,needles", CKPT_CASES, ids=[c[0] for c in CKPT_CASES])
def test_train_resume_from_a_bad_checkpoint(ckpt, tmp_path, capsys, kind, needles):
    path = broken(ckpt, tmp_path, kind)
    rc, lines = run(["train", *tiny(tmp_path / "run", "--trainer.max_steps", "2", "--ckpt_path", str(path))], capsys)
    assert_one_clear_line(rc, lines, needles)


@pytest.mark.parametrize("kind,needles", CKPT_CASES, ids=[c[0] for c in CKPT_CASES])
def test_eval_a_bad_checkpoint(ckpt, tmp_path, capsys, kind, needles):
    path = broken(ckpt, tmp_path, kind)
    rc, lines = run(["eval", "--ckpt", str(path), "--trainer.enable_progress_bar", "false"], capsys)
    assert_one_clear_line(rc, lines, needles)


def test_train_resume_from_a_checkpoint_of_another_model_size(ckpt, tmp_path, capsys):
    args = tiny(tmp_path / "run", "--trainer.max_steps", "2", "--ckpt_path", str(ckpt))
    args[args.index("--model.d_model") + 1] = "16"
    rc, lines = run(["train", *args], capsys)
    assert_one_clear_line(rc, lines, ["last.ckpt", "model.d_model", "8", "16"])


def test_eval_with_an_override_that_changes_the_model_size(ckpt, capsys):
    rc, lines = run(["eval", "--ckpt", str(ckpt), "--model.n_layers", "2"], capsys)
    assert_one_clear_line(rc, lines, ["last.ckpt", "model.n_layers", "1", "2"])


def test_eval_without_ckpt_or_config(ckpt, tmp_path, capsys):
    assert_one_clear_line(*run(["eval"], capsys), ["--ckpt"])
    alone = tmp_path / "alone.ckpt"
    shutil.copy(ckpt, alone)
    assert_one_clear_line(*run(["eval", "--ckpt", str(alone)], capsys), ["alone.ckpt", "config.yaml", "--config"])


LIBRARY = [
    ("load_run missing", lambda c, d: load_run(d / "none.ckpt"), FileNotFoundError, ["none.ckpt", "does not exist"]),
    ("load_run no config", lambda c, d: load_run(shutil.copy(c, d / "a.ckpt")), FileNotFoundError,
     ["a.ckpt", "config.yaml", "--config"]),
    ("load_weights truncated", lambda c, d: load_weights(load_run(c)[0].model, broken(c, d, "truncated")),
     ValueError, ["truncated.ckpt", "not a readable"]),
    ("load_weights garbage", lambda c, d: load_weights(load_run(c)[0].model, broken(c, d, "garbage")),
     ValueError, ["garbage.ckpt", "not a readable"]),
    ("load_weights other size", lambda c, d: load_weights(load_run(c, ["--model.d_model", "16"])[0].model, c),
     ValueError, ["last.ckpt", "model.d_model", "8", "16"]),
    ("load_weights not a module", lambda c, d: load_weights(None, c), TypeError, ["module", "NoneType"]),
]


@pytest.mark.parametrize("call,exc,needles", [c[1:] for c in LIBRARY], ids=[c[0] for c in LIBRARY])
def test_library(ckpt, tmp_path, call, exc, needles):
    with pytest.raises(exc) as info:
        call(ckpt, tmp_path)
    missing = [n for n in needles if n not in str(info.value)]
    assert not missing, f"{info.value} lacks {missing}"


MODULE = [
    ("rate 0", lambda: SequenceLightningModule(rate=0.0, d_model=8, n_layers=1), ValueError, ["rate", "0.0"]),
    ("rate inf", lambda: SequenceLightningModule(rate=float("inf"), d_model=8, n_layers=1), ValueError, ["rate"]),
    ("d_output 0", lambda: SequenceLightningModule(d_output=0, d_model=8, n_layers=1), ValueError, ["d_output"]),
    ("batch of 4", lambda: _unpack((1, 2, 3, 4)), ValueError, ["batch", "4"]),
    ("regression width", lambda: SequenceLightningModule(task="regression", d_output=0), ValueError, ["d_output"]),
]


@pytest.mark.parametrize("call,exc,needles", [c[1:] for c in MODULE], ids=[c[0] for c in MODULE])
def test_module(call, exc, needles):
    with pytest.raises(exc) as info:
        call()
    missing = [n for n in needles if n not in str(info.value)]
    assert not missing, f"{info.value} lacks {missing}"


def test_rate_reaches_the_model():
    m = SequenceLightningModule(d_model=8, n_layers=1, layer_kwargs={"d_state": 4}, rate=2.0).eval()
    x = torch.rand(2, 10, 1)
    ref = m.model(x, rate=2.0)
    torch.testing.assert_close(m(x), ref)
    assert not torch.allclose(m.model(x), ref)  # rate changes the step size, so the output
