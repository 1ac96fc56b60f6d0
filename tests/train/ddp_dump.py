"""Test helper loaded by the DDP test's subprocesses: each rank writes its final weights."""
import os

import torch
from lightning.pytorch.callbacks import Callback


class DumpWeights(Callback):
    def __init__(self, out_dir: str):
        self.out_dir = out_dir

    def on_train_end(self, trainer, pl_module):
        state = {k: v.detach().cpu() for k, v in pl_module.state_dict().items()}
        torch.save(state, os.path.join(self.out_dir, f"rank{trainer.global_rank}.pt"))
