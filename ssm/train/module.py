"""SequenceLightningModule: a registry-layer SequenceModel trained for classification or regression."""
from __future__ import annotations

from typing import Any, Dict, Literal, Optional, Tuple

import lightning as L
import torch
import torchmetrics
from torch import nn

from ..layers import REGISTRY
from ..models import SequenceModel
from ..models.checks import check_rate
from ..models.retrieval import RetrievalModel
from .checkpoint import check_fits
from .optim import param_groups, scheduler

LayerName = Literal[tuple(REGISTRY)]  # type: ignore[valid-type]


class SequenceLightningModule(L.LightningModule):
    """Trains `SequenceModel` (or `RetrievalModel`) with AdamW, `_optim` parameter groups and a per-step schedule."""

    def __init__(
        self,
        d_input: int = 1,
        d_output: int = 10,
        vocab_size: Optional[int] = None,
        architecture: Literal["sequence", "retrieval"] = "sequence",
        layer: LayerName = "s4d",
        layer_kwargs: Optional[Dict[str, Any]] = None,
        d_model: int = 128,
        n_layers: int = 4,
        prenorm: bool = True,
        norm: Literal["layer", "batch", "none"] = "layer",
        norm_momentum: float = 0.1,
        dropout: float = 0.0,
        tie_dropout: bool = True,
        residual: bool = True,
        encoder: Literal["linear", "embedding", "none", "auto"] = "auto",
        padding_idx: Optional[int] = 0,
        pool: Literal["mean", "last"] = "mean",
        task: Literal["classification", "regression"] = "classification",
        optimizer: Literal["adamw", "adam", "rmsprop", "sgd"] = "adamw",
        lr: float = 1e-3,
        weight_decay: float = 0.01,
        betas: Tuple[float, float] = (0.9, 0.999),
        rmsprop_alpha: float = 0.99,
        scheduler: Literal["cosine", "constant", "linear", "plateau"] = "cosine",
        warmup_steps: int = 0,
        min_lr_ratio: float = 0.0,
        plateau_factor: float = 0.2,
        plateau_patience: int = 10,
        rate: float = 1.0,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.rate = check_rate(rate)  # factor on every step size dt (from the data module: 2.0 = half the sample rate)
        if encoder == "auto":
            encoder = "embedding" if vocab_size else "linear"
        kwargs = dict(d_input=d_input, d_output=d_output, d_model=d_model, n_layers=n_layers, layer=layer,
                      layer_kwargs=layer_kwargs or {}, prenorm=prenorm, norm=norm, norm_momentum=norm_momentum,
                      dropout=dropout,
                      tie_dropout=tie_dropout, residual=residual, encoder=encoder, vocab_size=vocab_size,
                      padding_idx=padding_idx if encoder == "embedding" else None, pool=pool)
        self.model = RetrievalModel(**kwargs) if architecture == "retrieval" else SequenceModel(**kwargs)
        self.loss_fn = nn.CrossEntropyLoss() if task == "classification" else nn.MSELoss()
        for split in ("train", "val", "test"):
            setattr(self, f"{split}_metric", _metric(task, d_output))

    def forward(self, x: Any, lengths: Any = None) -> torch.Tensor:
        """Logits (B, d_output) (or predictions for regression) at the module's `rate`."""
        return self.model(x, lengths, rate=self.rate)

    def _shared_step(self, batch: Any, split: str) -> torch.Tensor:
        x, y, lengths = _unpack(batch)
        out = self(x, lengths)
        if self.hparams.task == "regression":
            out = out.reshape(y.shape).to(y.dtype) if out.numel() == y.numel() else out
        loss = self.loss_fn(out, y)
        metric = getattr(self, f"{split}_metric")
        metric(out.detach(), y)
        bs = y.shape[0]
        name = "acc" if self.hparams.task == "classification" else "mse"
        self.log(f"{split}/loss", loss, prog_bar=split != "train", batch_size=bs, sync_dist=split != "train")
        self.log(f"{split}/{name}", metric, prog_bar=True, batch_size=bs, on_step=False, on_epoch=True)
        return loss

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        loss = self._shared_step(batch, "train")
        self.log("train/loss_step", loss, prog_bar=True, batch_size=1, logger=False)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._shared_step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._shared_step(batch, "test")

    def configure_optimizers(self) -> Any:
        hp = self.hparams
        groups = param_groups(self.model, hp.lr, hp.weight_decay)
        opt = make_optimizer(hp.optimizer, groups, lr=hp.lr, betas=tuple(hp.betas), alpha=hp.rmsprop_alpha)
        if hp.scheduler == "plateau":
            sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=hp.plateau_factor,
                                                               patience=hp.plateau_patience)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": "val/loss", "interval": "epoch"}}
        # total steps read lazily: asking Lightning here would set the data up before a checkpoint's loader state loads
        sched = scheduler(opt, hp.scheduler, warmup_steps=hp.warmup_steps, min_ratio=hp.min_lr_ratio,
                          total_steps=lambda: self.trainer.estimated_stepping_batches)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: Dict[str, Any]) -> None:
        """Keep the RNG states so a resumed run draws the same dropout masks as an uninterrupted one."""
        checkpoint["rng_states"] = {"torch": torch.get_rng_state()}

    def on_load_checkpoint(self, checkpoint: Dict[str, Any]) -> None:
        """Restore RNG states; take the checkpoint's float64 weights as they are (Lightning loads them before it
        converts the module for "64-true" precision, which would round them through float32). A checkpoint of a
        model of another size fails here with the settings that differ, before Lightning loads the weights."""
        trainer = self._trainer
        check_fits(self, checkpoint, getattr(trainer, "ckpt_path", None) if trainer is not None else None,
                   hparams=self.hparams)
        if {v.dtype for v in checkpoint["state_dict"].values() if v.is_floating_point()} == {torch.float64}:
            self.double()
        if "rng_states" in checkpoint:
            torch.set_rng_state(checkpoint["rng_states"]["torch"])


def make_optimizer(name: str, groups: list, *, lr: float, betas: Tuple[float, float],
                   alpha: float = 0.99) -> torch.optim.Optimizer:
    """AdamW (default), Adam (L2 weight decay), RMSprop with smoothing `alpha` (Barone's low-rank RNNs) or SGD
    with momentum 0.9."""
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=betas)
    if name == "adam":
        return torch.optim.Adam(groups, lr=lr, betas=betas)
    if name == "rmsprop":
        return torch.optim.RMSprop(groups, lr=lr, alpha=alpha)
    return torch.optim.SGD(groups, lr=lr, momentum=0.9)


def _metric(task: str, n_classes: int) -> torchmetrics.Metric:
    if task == "classification":
        return torchmetrics.classification.MulticlassAccuracy(num_classes=n_classes, average="micro")
    return torchmetrics.MeanSquaredError()


def _unpack(batch: Any) -> Tuple[Any, torch.Tensor, Any]:
    """(x, y) or (x, y, lengths) -> (x, y, lengths or None)."""
    if isinstance(batch, dict):
        return batch["x"], batch["y"], batch.get("lengths")
    if len(batch) == 2:
        return batch[0], batch[1], None
    if len(batch) == 3:
        return batch
    raise ValueError(f"batch must be (x, y) or (x, y, lengths) or a dict with x, y[, lengths], got {len(batch)} items")
