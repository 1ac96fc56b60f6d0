"""What the default call costs: forward+backward of `y, _ = layer(x)` (the final state computed and dropped) against
`layer(x, return_state=False)`, and the cost of per-example masking (`lengths`), for the SSM layers.

    python benchmarks/layers.py --device cpu             # B=16, H=256, N=64, L in {1024, 4096, 16384}
    python benchmarks/layers.py --device cpu --batch 2 --d_model 64 --lengths 1024 4096 --threads 1
    python benchmarks/layers.py --device cuda --layers s4 s4d

Each (layer, L) runs in a fresh subprocess (its peak memory is its own). On the CPU the clock is the process's CPU
time (other jobs on a shared machine do not count; use --threads 1 for that), on CUDA wall time with
synchronisation. Times are medians over `--repeats` (the three variants take turns) after one warm-up pass each,
training mode, loss = mean(y^2); the
state is not in the loss, so its cost is its forward cost. `state GFLOP` is the model count of real
floating-point operations of the final state alone (see `state_gflop`); `mask` draws lengths in [L/2, L].
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import time

ROWS = [  # (registry name, constructor kwargs); N = --d_state unless a row sets d_state
    ("s4", {}),
    ("s4d", {}),
    ("dss", {}),
    ("s4-ptd", {}),
    ("s5", {"d_state": 256, "blocks": 8}),
]


def state_gflop(name: str, B: int, H: int, N: int, L: int) -> float:
    """Model count of the final state's real flops (GFLOP).

    Diagonal layers (N' stored states: N/2, or N for S4-PTD): sum_l u_l exp(l log Abar) is B H N' L complex x real
    products (4 flops) plus H N' L complex exponentials (8 flops each in this count).
    S4 (N real state coordinates, chunk T = 2N, Q chunks) as `functional.dense_final_state` runs it: squarings of
    the (H, N, N) matrix (2 H N^3 each) up to Abar^T and for each tree level, the Krylov matrix (2 H N^2 T), the
    contraction (2 B H N L), the tree levels and the Horner steps (2 B H N^2 per vector).
    S5: a gather of the scan's states (0 flops)."""
    if name in ("s4d", "dss", "s4-ptd"):
        n = N if name == "s4-ptd" else N // 2
        return (4 * B * H * n * L + 8 * H * n * L) / 1e9
    if name != "s4":
        return 0.0
    T = min(1 << max(L - 1, 1).bit_length(), 1 << max(2 * N - 1, 1).bit_length())
    Q = 1 << max(math.ceil(L / T) - 1, 0).bit_length()
    squarings = T.bit_length() - 2
    flops = 2 * H * N * N * T + 2 * B * H * N * L
    while Q > 1 and B * Q >= 2 * N:
        squarings, flops, Q = squarings + 1, flops + 2 * B * H * N * N * Q // 2, Q // 2
    if Q > 1:
        squarings, flops = squarings + 1, flops + 2 * B * H * N * N * (Q - 1)
    return (flops + 2 * H * N ** 3 * squarings) / 1e9


def measure(name: str, kwargs: dict, L: int, B: int, H: int, N: int, device: str, repeats: int) -> dict:
    """ms of forward+backward without the state, with it, and with lengths; peak memory of each (MB)."""
    import torch

    from ssm.layers import build

    torch.manual_seed(0)
    layer = build(name, d_model=H, **{"d_state": N, **kwargs}).to(device).train()
    x = torch.randn(B, L, H, device=device, requires_grad=True)
    lengths = torch.randint(L // 2, L + 1, (B,), device=device)
    cuda = device.startswith("cuda")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    clock = time.perf_counter if cuda else time.process_time

    def run(**kw):
        y, _ = layer(x, **kw)
        y.float().square().mean().backward()
        layer.zero_grad(set_to_none=True)
        x.grad = None

    variants = {"no_state": {"return_state": False}, "state": {},
                "mask": {"return_state": False, "lengths": lengths}}
    for kw in variants.values():
        run(**kw)  # warm-up: kernel probes, caches
    times = {key: [] for key in variants}
    for _ in range(repeats):  # the variants take turns, so a slow spell of a shared machine hits all of them
        for key, kw in variants.items():
            sync()
            t0 = clock()
            run(**kw)
            sync()
            times[key].append(clock() - t0)
    out = {key: 1e3 * statistics.median(ts) for key, ts in times.items()}
    if cuda:
        for key, kw in variants.items():
            torch.cuda.reset_peak_memory_stats()
            run(**kw)
            out[key + "_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def run_one(name: str, kwargs: dict, L: int, args) -> dict:
    """Measure in a subprocess; -> result dict or {"error": ...}."""
    cmd = [sys.executable, __file__] + (["--threads", str(args.threads)] if args.threads else []) + ["--child",
           json.dumps([name, kwargs, L, args.batch, args.d_model, args.d_state, args.device, args.repeats])]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timeout after {args.timeout} s"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode or not lines:
        return {"error": (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1][:90]}
    return json.loads(lines[-1])


def row(name: str, kw: dict, L: int, r: dict, args) -> str:
    label = name + (f" (P={kw['d_state']}, J={kw['blocks']})" if "blocks" in kw else "")
    if "error" in r:
        return f"| {label} | {L} | error: {r['error']} | | | | | |"
    N = kw.get("d_state", args.d_state)
    gf = state_gflop(name, args.batch, args.d_model, N, L)
    mem = f" {r['no_state_mb']:.0f} / {r['state_mb']:.0f} |" if "state_mb" in r else ""
    return (f"| {label} | {L} | {r['no_state']:.1f} | {r['state']:.1f} | {r['state'] / r['no_state']:.2f} | "
            f"{gf:.2f} | {r['mask']:.1f} | {r['mask'] / r['no_state']:.2f} |" + mem)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--lengths", type=int, nargs="+", default=[1024, 4096, 16384])
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--d_model", type=int, default=256)
    p.add_argument("--d_state", type=int, default=64)
    p.add_argument("--layers", nargs="+", default=None, help="registry names to keep (default: all rows)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--timeout", type=int, default=3600)
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.child:
        name, kw, L, B, H, N, device, repeats = json.loads(args.child)
        print(json.dumps(measure(name, kw, L, B, H, N, device, repeats)))
        return
    rows = [r for r in ROWS if args.layers is None or r[0] in args.layers]
    where = torch.cuda.get_device_name() if args.device.startswith("cuda") else \
        f"CPU, {torch.get_num_threads()} threads, process time"
    print(f"\n## {where}: B={args.batch}, H={args.d_model}, N={args.d_state}, fwd+bwd ms, median of {args.repeats}\n")
    head = "| layer | L | no state | state | state / no state | state GFLOP | mask | mask / no state |"
    print(head + (" peak MB (no state / state) |" if args.device.startswith("cuda") else ""))
    print("|---" * (head.count("|") - 1 + args.device.startswith("cuda")) + "|")
    for L in args.lengths:
        for name, kw in rows:
            r = run_one(name, kw, L, args)
            print(row(name, kw, L, r, args), flush=True)


if __name__ == "__main__":
    main()
