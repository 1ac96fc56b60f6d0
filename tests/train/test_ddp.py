"""Lightning's DDP on 2 CPU processes (gloo): both ranks finish with identical weights."""
import json
import os
import subprocess
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent


def test_two_process_ddp_ranks_agree(tmp_path):
    callbacks = json.dumps([{"class_path": "ddp_dump.DumpWeights", "init_args": {"out_dir": str(tmp_path)}}])
    cmd = [sys.executable, "-m", "ssm.cli", "train", "--trainer.accelerator", "cpu", "--trainer.devices", "2",
           "--trainer.strategy", "ddp", "--trainer.max_steps", "3", "--trainer.limit_val_batches", "0",
           "--trainer.logger", "false", "--trainer.enable_progress_bar", "false", "--trainer.callbacks", callbacks,
           "--trainer.enable_checkpointing", "false", "--trainer.default_root_dir", str(tmp_path),
           "--data.init_args.limit", "64", "--data.init_args.batch_size", "8", "--model.d_model", "8",
           "--model.n_layers", "1", "--model.layer_kwargs", '{"d_state": 4}', "--model.dropout", "0.1",
           "--trainer.limit_test_batches", "1"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    d0, d1 = (torch.load(tmp_path / f"rank{i}.pt") for i in (0, 1))
    assert len(d0["seen"]) == len(d1["seen"]) == 3
    assert d0["seen"] != d1["seen"]  # each rank trained on its own shard: equal weights then prove the all-reduce
    r0, r1 = d0["state"], d1["state"]
    assert r0.keys() == r1.keys()
    for k in r0:
        torch.testing.assert_close(r0[k], r1[k], rtol=0, atol=0, msg=k)
