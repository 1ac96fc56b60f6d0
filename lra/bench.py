"""Loader throughput against model consumption: `python -m lra.bench --work DIR [--batches N]`.

For each task it times the training loader alone (batches/s, in the main process as with num_workers=0)
and a small S4D (2 layers, H = 64, N = 64) forward + backward on the same batches, at the published batch
sizes. Sources: generated ListOps / Pathfinder / Path-X (`--listops`, `--pathfinder`, `--pathx`, else small
ones generated into DIR) and random stand-ins in the release formats for Text, Retrieval and Image.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import torch

TASKS = ("listops", "text", "retrieval", "image", "pathfinder", "pathx")
BATCH = {"listops": 32, "text": 16, "retrieval": 64, "image": 50, "pathfinder": 64, "pathx": 16}


def sources(work: Path, given: Dict[str, Optional[str]]) -> Dict[str, str]:
    """Source folder per task, writing what is missing into `work`."""
    from . import synthetic
    from .generators import listops, pathfinder

    out: Dict[str, str] = {}
    out["listops"] = given.get("listops") or str(work / "listops-1000")
    if not (Path(out["listops"]) / "basic_test.tsv").exists():
        listops.generate(out["listops"], 400, 50, 50, seed=0)
    for task, size, n in (("pathfinder", 32, 2000), ("pathx", 128, 300)):
        out[task] = given.get(task) or str(work / f"pathfinder{size}")
        if not (Path(out[task]) / pathfinder.LEVEL).exists():
            pathfinder.generate(out[task], size, n, seed=0)
    out["text"] = str(work / "aclImdb")
    if not Path(out["text"]).exists():
        synthetic.write_imdb(work, (500, 100))
    out["retrieval"] = str(work / "tsv_data")
    if not Path(out["retrieval"]).exists():
        synthetic.write_aan(work, (1000, 100, 100))
    out["image"] = str(work / "cifar-10-batches-py")
    if not Path(out["image"]).exists():
        synthetic.write_cifar(work, 1000)
    return out


def data_module(task: str, source: str, data_dir: str):
    import lra

    cls = {"listops": lra.ListOpsDataModule, "text": lra.TextDataModule, "retrieval": lra.RetrievalDataModule,
           "image": lra.ImageDataModule, "pathfinder": lra.PathfinderDataModule, "pathx": lra.PathXDataModule}[task]
    dm = cls(data_dir=data_dir, source=source, batch_size=BATCH[task])
    dm.setup("fit")
    return dm


def batches(dm, n: int) -> Iterator:
    """n training batches, cycling over the loader."""
    k = 0
    while True:
        for b in dm.train_dataloader():
            yield b
            k += 1
            if k == n:
                return


def rate(n: int, seconds: float) -> float:
    return n / max(seconds, 1e-9)


def measure(task: str, dm, n_loader: int, n: int) -> Tuple[float, float, int]:
    """(loader batches/s over n_loader batches, model batches/s over n batches, mean sequence length)."""
    from ssm.train.module import SequenceLightningModule, _unpack

    list(batches(dm, 1))  # open the memory maps
    start = time.perf_counter()
    got = list(batches(dm, n_loader))
    loader = rate(n_loader, time.perf_counter() - start)
    got = got[:n]
    model = SequenceLightningModule(d_input=dm.d_input, d_output=dm.d_output, vocab_size=dm.vocab_size,
                                    architecture="retrieval" if task == "retrieval" else "sequence", layer="s4d",
                                    layer_kwargs={"d_state": 64, "bidirectional": True}, d_model=64, n_layers=2,
                                    norm="batch")
    lengths: List[int] = []
    start = time.perf_counter()
    for batch in got:
        x, y, _ = _unpack(batch)
        lengths.append((x[0] if isinstance(x, tuple) else x).shape[1])
        loss = torch.nn.functional.cross_entropy(model(x, _unpack(batch)[2]), y)
        loss.backward()
    return loader, rate(n, time.perf_counter() - start), int(sum(lengths) / len(lengths))


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m lra.bench", description=__doc__.splitlines()[0])
    p.add_argument("--work", required=True, help="folder for generated sources and the prepared caches")
    p.add_argument("--batches", type=int, default=5, help="batches through the model")
    p.add_argument("--loader_batches", type=int, default=50, help="batches through the loader alone")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--tasks", default=",".join(TASKS))
    for t in ("listops", "pathfinder", "pathx"):
        p.add_argument(f"--{t}", default=None, help=f"source folder of {t} (default: generate a small one)")
    ns = p.parse_args(argv)
    torch.set_num_threads(ns.threads)
    work = Path(ns.work).expanduser()
    srcs = sources(work, {t: getattr(ns, t) for t in ("listops", "pathfinder", "pathx")})
    print(f"| task | batch | mean L | loader batches/s | S4D fwd+bwd batches/s | loader / model |")
    print("|---|---|---|---|---|---|")
    for task in ns.tasks.split(","):
        dm = data_module(task, srcs[task], str(work / "cache"))
        loader, model, L = measure(task, dm, ns.loader_batches, ns.batches)
        print(f"| {task} | {BATCH[task]} | {L} | {loader:.1f} | {model:.2f} | {loader / model:.0f}x |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
