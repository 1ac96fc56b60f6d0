import math

import torch

from ssm.train import param_groups
from ssm.train.optim import lr_lambda
from ssm.models import SequenceModel


def test_param_groups_honour_optim_and_skip_decay_for_norms_biases_embeddings():
    m = SequenceModel(d_input=1, d_output=2, d_model=8, n_layers=1, layer="s4d", layer_kwargs={"d_state": 4, "lr": 1e-3},
                      encoder="embedding", vocab_size=5)
    groups = param_groups(m, lr=0.01, weight_decay=0.05)
    by_id = {id(p): g for g in groups for p in g["params"]}
    assert sum(len(g["params"]) for g in groups) == len(list(m.parameters()))
    layer = m.blocks[0].layer
    for name, p in layer.named_parameters():
        g = by_id[id(p)]
        if hasattr(p, "_optim"):
            assert (g["lr"], g["weight_decay"]) == (1e-3, 0.0), name
    assert by_id[id(m.encoder.weight)]["weight_decay"] == 0.0
    assert by_id[id(m.decoder.bias)]["weight_decay"] == 0.0
    assert by_id[id(m.blocks[0].norm.norm.weight)]["weight_decay"] == 0.0
    assert by_id[id(m.decoder.weight)] == {**by_id[id(m.decoder.weight)], "lr": 0.01, "weight_decay": 0.05}
    assert any(hasattr(p, "_optim") for p in layer.parameters())


def test_cosine_with_warmup():
    f = lr_lambda("cosine", warmup_steps=10, total_steps=110, min_ratio=0.0)
    assert math.isclose(f(0), 0.1) and math.isclose(f(9), 1.0)
    assert math.isclose(f(10), 1.0) and math.isclose(f(60), 0.5) and math.isclose(f(110), 0.0, abs_tol=1e-12)
    assert lr_lambda("constant", 0, 10)(5) == 1.0
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=2.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, f)
    assert math.isclose(opt.param_groups[0]["lr"], 0.2)
    del sched


def test_rmsprop_takes_its_smoothing_constant_from_the_module():
    import yaml
    from pathlib import Path

    from ssm.train import SequenceLightningModule

    m = SequenceLightningModule(d_model=8, n_layers=1, layer="lowrank-gru", optimizer="rmsprop", rmsprop_alpha=0.9,
                                scheduler="constant")
    opt = m.configure_optimizers()
    opt = opt["optimizer"] if isinstance(opt, dict) else opt[0][0] if isinstance(opt, tuple) else opt
    assert isinstance(opt, torch.optim.RMSprop) and {g["alpha"] for g in opt.param_groups} == {0.9}
    cfg = yaml.safe_load((Path(__file__).resolve().parents[2] / "configs/pmnist/lowrank-gru.yaml").read_text())
    assert cfg["model"]["optimizer"] == "rmsprop" and cfg["model"]["rmsprop_alpha"] == 0.9  # Barone's setting
