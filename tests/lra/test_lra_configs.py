"""Every LRA config: published settings in place, and `ssm train --config ... --trainer.fast_dev_run true` runs on
tiny data in the release formats with reduced model sizes."""
from pathlib import Path

import pytest
import yaml

from ssm.train.cli import train

ROOT = Path(__file__).resolve().parents[2] / "configs" / "lra"
TASKS = ("listops", "text", "retrieval", "image", "pathfinder", "pathx")
MODELS = ("s4", "s4d", "dss", "s4-ptd", "s5", "s5-ptd")
CONFIGS = [ROOT / t / f"{m}.yaml" for t in TASKS for m in MODELS]
PUBLISHED = {  # test accuracy (%) each config names as its target
    "s4": (59.60, 86.82, 90.90, 88.65, 94.20, 96.35), "s4d": (60.47, 86.18, 89.46, 88.19, 93.06, 91.95),
    "dss": (60.60, 84.80, 87.80, 85.70, 84.60, 87.80), "s5": (62.15, 89.31, 91.40, 88.00, 95.33, 98.58),
    "s4-ptd": (60.65, 88.32, 91.07, 88.27, 94.79, 96.39), "s5-ptd": (62.75, 89.41, 91.43, 87.92, 95.54, 98.52),
}


def marks(path: Path) -> list:
    """Path-X configs are slow (16384 steps per example)."""
    return [pytest.mark.slow] if path.parent.name == "pathx" else []


def test_all_36_configs_exist_and_name_their_published_accuracy():
    assert sorted(ROOT.glob("*/*.yaml")) == sorted(CONFIGS)
    for path in CONFIGS:
        text = " ".join(line[2:] for line in path.read_text().splitlines() if line.startswith("# "))
        acc = PUBLISHED[path.stem][TASKS.index(path.parent.name)]
        assert f"published {acc:.2f}% test accuracy" in text, path
        assert "REFERENCE" not in path.read_text() and "shared" not in path.read_text()


def test_published_hyperparameters():
    def cfg(task, model):
        return yaml.safe_load((ROOT / task / f"{model}.yaml").read_text())

    c = cfg("listops", "s4")
    assert (c["model"]["n_layers"], c["model"]["d_model"], c["model"]["layer_kwargs"]["d_state"]) == (6, 256, 4)
    assert (c["model"]["lr"], c["model"]["weight_decay"], c["model"]["warmup_steps"]) == (0.01, 0.05, 12000)
    assert (c["model"]["prenorm"], c["model"]["norm"], c["data"]["init_args"]["batch_size"]) == (False, "batch", 32)
    assert c["trainer"]["max_epochs"] == 40 and c["model"]["layer_kwargs"]["bidirectional"] is True
    c = cfg("pathx", "s4")
    assert c["model"]["layer_kwargs"]["dt_min"] == 0.0001 and c["model"]["lr"] == 0.001
    assert c["model"]["layer_kwargs"]["l_max"] == 16384
    c = cfg("listops", "s5")
    lk = c["model"]["layer_kwargs"]
    assert (lk["d_state"], lk["blocks"], lk["output"], lk["C_init"], lk["lr"]) == (16, 8, "half_glu2", "lecun_normal", 0.001)
    assert (c["model"]["n_layers"], c["model"]["d_model"], c["model"]["lr"], c["model"]["norm_momentum"]) == (8, 128, 0.003, 0.05)
    assert cfg("image", "dss")["model"]["layer_kwargs"]["variant"] == "softmax"
    assert cfg("image", "s4d")["model"]["dropout"] == 0.1 and cfg("image", "s4d")["model"]["layer_kwargs"]["init"] == "legs"
    assert cfg("retrieval", "s5-ptd")["model"]["architecture"] == "retrieval"
    assert cfg("listops", "s4-ptd")["model"]["layer_kwargs"]["dt_max"] == 1.0
    assert all(cfg(t, "s4")["model"]["layer_kwargs"]["convention"] == "official" for t in TASKS)  # the official init


def shrink(path: Path, tmp: Path) -> Path:
    """The config with reduced sizes (width 8, one layer, few states), everything else as shipped."""
    cfg = yaml.safe_load(path.read_text())
    m = cfg["model"]
    m.update(d_model=8, n_layers=1, warmup_steps=1)
    lk = m["layer_kwargs"]
    if m["layer"] in ("s5", "s5-ptd"):
        lk.update(d_state=8, blocks=2)
    else:
        lk["d_state"] = 8 if m["layer"] == "s4-ptd" else 4
    out = tmp / path.name
    out.write_text(yaml.safe_dump(cfg))
    return out


@pytest.mark.parametrize("path", [pytest.param(p, marks=marks(p), id=f"{p.parent.name}/{p.stem}") for p in CONFIGS])
def test_fast_dev_run(path, tmp_path, release, data_dir):
    metrics = train(["--config", str(shrink(path, tmp_path)), "--trainer.fast_dev_run", "true",
                     "--trainer.default_root_dir", str(tmp_path), "--trainer.enable_progress_bar", "false",
                     "--trainer.enable_model_summary", "false", "--data.init_args.source", release[path.parent.name],
                     "--data.init_args.data_dir", data_dir, "--data.init_args.batch_size", "2"])
    assert 0.0 <= metrics["test/acc"] <= 1.0 and metrics["test/loss"] > 0
