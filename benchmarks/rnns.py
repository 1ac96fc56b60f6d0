"""RNN benchmarks: speed of the low-rank GRU/LSTM against torch.nn.GRU/LSTM, and a CfC robustness proxy.

    python benchmarks/rnns.py speed  [--hidden 128 --batch 32 --length 256 --threads 1]
    python benchmarks/rnns.py robust [--seeds 5 --epochs 15 --threads 1]

`speed` prints median CPU milliseconds (process time: other jobs on a shared machine do not count) per forward
(inference, no autograd) and per forward+backward, and the ratio to torch's fused nn.GRU/nn.LSTM of the same hidden
size (and to ncps.torch.CfC, if installed) measured in the same run. `robust` trains a dense CfC and a
low-rank sparse CfC (same units and backbone) on an irregularly sampled oscillator-classification task and reports
test accuracy on clean inputs, under additive Gaussian noise, and under time warps of the sampling grid (the models
get the true elapsed times as `timespans`): an open-loop proxy for the closed-loop robustness claim of Tumma et al.
"""
from __future__ import annotations

import argparse
import math
import statistics
import time
from typing import Callable, Dict, List, Tuple

import torch
from torch import nn

from ssm.layers.cfc import CfC
from ssm.layers.passthrough import LowRankGRU, LowRankLSTM


# ----------------------------------------------------------------------------------------------- speed
def _median_ms(fn: Callable[[], None], repeats: int) -> float:
    """Median process CPU time of fn() in ms: robust to other jobs on a shared machine (use with --threads 1)."""
    fn()
    fn()  # warm-up (TorchScript compiles and profiles on the first calls)
    times = []
    for _ in range(repeats):
        t = time.process_time()
        fn()
        times.append(time.process_time() - t)
    return 1e3 * statistics.median(times)


def _time_layer(run: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, repeats: int) -> Tuple[float, float]:
    """(inference ms, forward+backward ms) of run(x)."""
    with torch.no_grad():
        inf = _median_ms(lambda: run(x), repeats)
    xg = x.clone().requires_grad_()
    train = _median_ms(lambda: run(xg).sum().backward(), repeats)
    return inf, train


def speed(args: argparse.Namespace) -> None:
    torch.manual_seed(0)
    n, d = args.hidden, args.rank
    x = torch.randn(args.batch, args.length, n)
    print(f"## speed: B={args.batch} L={args.length} hidden={n} rank={d} threads={torch.get_num_threads()} "
          f"(median process CPU time of {args.repeats}, ms)\n")
    print("| cell | layer | params | inference ms | x torch | fwd+bwd ms | x torch |")
    print("|---|---|---|---|---|---|---|")
    for name, ours, ref in (("GRU", LowRankGRU, nn.GRU), ("LSTM", LowRankLSTM, nn.LSTM)):
        torch_layer = ref(n, n, batch_first=True)
        base = _time_layer(lambda x: torch_layer(x)[0], x, args.repeats)
        rows = [("torch.nn." + name, sum(p.numel() for p in torch_layer.parameters()), base)]
        for form, kw in (("full", {}), ("lowrank", {"rank": d}), ("lowrank tied", {"rank": d, "tie_right": True}),
                         ("lowrank_diag", {"rank": d})):
            layer = ours(n, parametrization=form.split()[0], **kw)
            rows.append((f"{ours.__name__} {form}", sum(p.numel() for p in layer.parameters()),
                         _time_layer(lambda x: layer(x, return_state=False)[0], x, args.repeats)))
        for label, params, (inf, train) in rows:
            print(f"| {name} | {label} | {params} | {inf:.1f} | {inf / base[0]:.2f} | {train:.1f} | "
                  f"{train / base[1]:.2f} |")
    _speed_cfc(x, args.repeats)
    print()


def _speed_cfc(x: torch.Tensor, repeats: int) -> None:
    """Rows for our CfC against ncps.torch.CfC (same units, backbone 128), when ncps is installed."""
    try:
        from ncps.torch import CfC as NcpsCfC
    except ImportError:
        return
    n = x.shape[-1]
    theirs, ours = NcpsCfC(n, n), CfC(n)
    base = _time_layer(lambda x: theirs(x)[0], x, repeats)
    for label, layer, run in (("ncps.torch.CfC", theirs, lambda x: theirs(x)[0]),
                              ("ssm CfC", ours, lambda x: ours(x, return_state=False)[0])):
        inf, train = base if layer is theirs else _time_layer(run, x, repeats)
        print(f"| CfC | {label} | {sum(p.numel() for p in layer.parameters())} | {inf:.1f} | {inf / base[0]:.2f} | "
              f"{train:.1f} | {train / base[1]:.2f} |")


# ----------------------------------------------------------------------------------------------- robustness
def oscillators(n: int, length: int, gen: torch.Generator, warp: float = 1.0, noise: float = 0.0,
                jitter: bool = True) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """n sequences (x (n, L, 2), timespans (n, L), label (n,)) of 4 classes of damped 2-D oscillators.

    Class k has frequency 1 + 0.6 k and damping 0.1 + 0.05 (k % 2) over duration T = 10; samples at times
    T (u ** warp) for sorted u (jittered uniform grid in training); the models get the elapsed times.
    """
    label = torch.randint(4, (n,), generator=gen)
    freq, damp = 1.0 + 0.6 * label, 0.1 + 0.05 * (label % 2)
    u = (torch.arange(length) + 0.5) / length
    if jitter:
        u = (u + (torch.rand(n, length, generator=gen) - 0.5) / length).sort(1).values
    else:
        u = u.expand(n, length)
    t = 10.0 * u.clamp(min=1e-4) ** warp
    phase, amp = 2 * math.pi * torch.rand(n, 1, generator=gen), 0.5 + torch.rand(n, 1, generator=gen)
    decay = amp * torch.exp(-damp.unsqueeze(1) * t)
    arg = freq.unsqueeze(1) * t + phase
    x = torch.stack([decay * torch.cos(arg), decay * torch.sin(arg)], -1)
    x = x + noise * torch.randn(x.shape, generator=gen)
    ts = torch.diff(t, dim=1, prepend=torch.zeros(n, 1))
    return x, ts, label


MODELS: Dict[str, dict] = {
    "full": {},
    "lowrank_sparse": {"wiring": {"name": "lowrank_sparse", "rank": 4, "sparsity": 0.5}},
    "lowrank": {"wiring": {"name": "lowrank_sparse", "rank": 4, "sparsity": 0.0}},  # ablations: each half alone
    "sparse": {"wiring": {"name": "lowrank_sparse", "rank": 32, "sparsity": 0.5}},
}


def make_cfc(kind: str, units: int) -> CfC:
    """A CfC on 2-D inputs with 4 class scores; "sparse" uses full rank (= units)."""
    kw = MODELS[kind]
    if kind == "sparse":
        kw = {"wiring": {**kw["wiring"], "rank": units}}
    return CfC(2, units=units, proj_size=4, backbone_units=units, **kw)


def logits(model: CfC, x: torch.Tensor, ts: torch.Tensor) -> torch.Tensor:
    """Class scores: the CfC's outputs averaged over time, (B, 4)."""
    return model(x, timespans=ts, return_state=False)[0].mean(1)


def accuracy(model: CfC, x: torch.Tensor, ts: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((logits(model, x, ts).argmax(-1) == y).float().mean())


def train(model: CfC, data, epochs: int, batch: int, lr: float, gen: torch.Generator) -> None:
    x, ts, y = data
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=epochs * math.ceil(len(y) / batch))
    for _ in range(epochs):
        for idx in torch.randperm(len(y), generator=gen).split(batch):
            loss = nn.functional.cross_entropy(logits(model, x[idx], ts[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()


SHIFTS = [("clean", {}), ("noise 0.2", {"noise": 0.2}), ("noise 0.5", {"noise": 0.5}),
          ("warp 0.6", {"warp": 0.6}), ("warp 1.6", {"warp": 1.6}),
          ("warp 1.6 + noise 0.2", {"warp": 1.6, "noise": 0.2})]


def robust(args: argparse.Namespace) -> None:
    results: Dict[str, Dict[str, List[float]]] = {k: {s: [] for s, _ in SHIFTS} for k in MODELS}
    params = {}
    for seed in range(args.seeds):
        gen = torch.Generator().manual_seed(1000 + seed)
        train_data = oscillators(args.train, args.length, gen)
        tests = {name: oscillators(args.test, args.length, torch.Generator().manual_seed(7 + seed), jitter=False, **kw)
                 for name, kw in SHIFTS}
        for kind in MODELS:
            torch.manual_seed(seed)
            model = make_cfc(kind, args.units)
            params[kind] = sum(p.numel() for p in model.parameters())
            start = time.perf_counter()
            train(model, train_data, args.epochs, args.batch, args.lr, gen)
            for name, data in tests.items():
                results[kind][name].append(accuracy(model.eval(), *data))
            print(f"seed {seed} {kind}: trained in {time.perf_counter() - start:.0f} s, "
                  f"clean acc {results[kind]['clean'][-1]:.3f}", flush=True)
    print(f"\n## CfC robustness proxy: units={args.units}, L={args.length}, {args.train} train / {args.test} test "
          f"per shift, {args.epochs} epochs, {args.seeds} seeds (test accuracy, mean ± std)\n")
    print("| shift | " + " | ".join(f"{k} ({params[k]} params)" for k in MODELS) + " |")
    print("|---|" + "---|" * len(MODELS))
    for name, _ in SHIFTS:
        cells = []
        for k in MODELS:
            v = torch.tensor(results[k][name])
            cells.append(f"{v.mean():.3f} ± {v.std() if len(v) > 1 else 0.0:.3f}")
        print(f"| {name} | " + " | ".join(cells) + " |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("speed")
    s.add_argument("--hidden", type=int, default=128)
    s.add_argument("--rank", type=int, default=16)
    s.add_argument("--batch", type=int, default=32)
    s.add_argument("--length", type=int, default=256)
    s.add_argument("--repeats", type=int, default=5)
    s.add_argument("--threads", type=int, default=1)
    r = sub.add_parser("robust")
    r.add_argument("--seeds", type=int, default=5)
    r.add_argument("--epochs", type=int, default=15)
    r.add_argument("--units", type=int, default=32)
    r.add_argument("--length", type=int, default=48)
    r.add_argument("--train", type=int, default=2000)
    r.add_argument("--test", type=int, default=1000)
    r.add_argument("--batch", type=int, default=64)
    r.add_argument("--lr", type=float, default=0.01)
    r.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    speed(args) if args.cmd == "speed" else robust(args)


if __name__ == "__main__":
    main()
