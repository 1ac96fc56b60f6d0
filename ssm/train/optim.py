"""Optimizer parameter groups (honouring `param._optim`) and per-step learning-rate schedules."""
from __future__ import annotations

import math
from typing import Any, Callable, Dict, List, Union

import torch
from torch import nn

NO_DECAY_MODULES = (nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._NormBase, nn.Embedding)


def param_groups(model: nn.Module, lr: float, weight_decay: float) -> List[Dict[str, Any]]:
    """Groups for torch.optim: default (lr, wd), no weight decay for norms/biases/embeddings, one per `_optim` setting."""
    no_decay = set()
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if isinstance(module, NO_DECAY_MODULES) or name == "bias":
                no_decay.add(id(p))
    groups: Dict[tuple, Dict[str, Any]] = {}
    for p in model.parameters():
        if not p.requires_grad:
            continue
        special = getattr(p, "_optim", None)
        if special is not None:
            hp = {"lr": lr, "weight_decay": weight_decay, **special}
        else:
            hp = {"lr": lr, "weight_decay": 0.0 if id(p) in no_decay else weight_decay}
        key = tuple(sorted(hp.items()))
        groups.setdefault(key, {"params": [], **hp})["params"].append(p)
    return list(groups.values())


def lr_lambda(kind: str, warmup_steps: int, total_steps: Union[int, Callable[[], int]], *, min_ratio: float = 0.0):
    """Multiplier of the base lr at step t: linear warmup, then "cosine"/"linear" decay to `min_ratio`, or "constant".

    `total_steps` may be a callable, evaluated once on the first step after warmup (so that Lightning's
    `estimated_stepping_batches` is read after a checkpoint has been restored, not before).
    """
    if kind not in ("cosine", "constant", "linear"):
        raise ValueError(f"scheduler must be one of ['cosine', 'constant', 'linear', 'plateau'], got {kind!r}")

    total: List[int] = [] if callable(total_steps) else [int(total_steps)]

    def f(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / max(1, warmup_steps)
        if kind == "constant" or step == warmup_steps:
            return 1.0
        if not total:
            total.append(int(total_steps()))  # type: ignore[operator]
        progress = min(1.0, (step - warmup_steps) / max(1, total[0] - warmup_steps))
        decay = 0.5 * (1.0 + math.cos(math.pi * progress)) if kind == "cosine" else 1.0 - progress
        return min_ratio + (1.0 - min_ratio) * decay

    return f


def scheduler(optimizer: torch.optim.Optimizer, kind: str, *, warmup_steps: int,
              total_steps: Union[int, Callable[[], int]], min_ratio: float = 0.0) -> torch.optim.lr_scheduler.LambdaLR:
    """A per-step LambdaLR for `kind` (see `lr_lambda`)."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(kind, warmup_steps, total_steps, min_ratio=min_ratio))
