"""Test helper loaded by the DDP test's subprocesses: each rank writes its final weights and what data it saw."""
import os

import torch
from lightning.pytorch.callbacks import Callback


class DumpWeights(Callback):
    def __init__(self, out_dir: str):
        self.out_dir = out_dir
        self.seen = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.seen.append(batch[0].sum().item())

    def on_train_end(self, trainer, pl_module):
        state = {k: v.detach().cpu() for k, v in pl_module.state_dict().items()}
        torch.save({"state": state, "seen": self.seen}, os.path.join(self.out_dir, f"rank{trainer.global_rank}.pt"))
