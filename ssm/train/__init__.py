"""Training: the LightningModule, optimizer parameter groups and schedules, the `ssm train` CLI."""
from .module import SequenceLightningModule
from .optim import param_groups, scheduler

__all__ = ["SequenceLightningModule", "param_groups", "scheduler"]
