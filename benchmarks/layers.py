"""Forward+backward throughput (tokens/s) and peak memory of the sequence layers, with ratios to S4D.

Each (layer, L) runs in a fresh subprocess so its peak memory is its own (CUDA: max_memory_allocated
above the allocation after building the layer and its input; CPU: peak RSS above the RSS at that
point, which includes allocator slack, so read it as approximate). Times are medians over `--repeats`
after two warm-up passes; training mode with return_state=False (what the backbone runs).

    python benchmarks/layers.py                      # H=256, N=64, B=16, L in {1024, 4096}, CPU (and CUDA if present)
    python benchmarks/layers.py --device cpu --lengths 1024 --layers s4d s4

Adding a layer is one line in ROWS: (registry name, constructor kwargs).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

ROWS = [
    ("s4d", {}),  # the baseline: ratios are to this row
    ("s4", {}),
    ("dss", {}),
    ("s4-ptd", {}),
    ("s5", {"d_state": 256, "blocks": 8}),
    ("s5-ptd", {"d_state": 256, "blocks": 8}),
]


def _rss_kb() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def measure(name: str, kwargs: dict, L: int, B: int, H: int, N: int, device: str, repeats: int) -> dict:
    """Time forward+backward of one layer in this process; -> {tokens_per_s, peak_mb, ms}."""
    import torch

    from ssm.layers import build

    torch.manual_seed(0)
    layer = build(name, d_model=H, **{"d_state": N, **kwargs}).to(device).train()  # a row may set its own d_state
    x = torch.randn(B, L, H, device=device, requires_grad=True)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

    def fwd_bwd():
        y, _ = layer(x, return_state=False)
        y.float().square().mean().backward()
        layer.zero_grad(set_to_none=True)
        x.grad = None

    base_rss = _rss_kb()  # before the first pass: the CPU peak is the process's peak RSS above this
    fwd_bwd()  # warm-up: kernel probes, compilation, caches
    fwd_bwd()
    sync()
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = base_rss
    times = []
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        fwd_bwd()
        sync()
        times.append(time.perf_counter() - t0)
    if device.startswith("cuda"):
        peak_mb = (torch.cuda.max_memory_allocated() - base) / 2**20
    else:
        peak_mb = max(0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
    t = statistics.median(times)
    return {"tokens_per_s": B * L / t, "peak_mb": peak_mb, "ms": 1e3 * t}


def run_one(name: str, kwargs: dict, L: int, args) -> dict:
    """Measure in a subprocess; -> result dict or {"error": ...}."""
    cmd = [sys.executable, __file__, "--child", json.dumps([name, kwargs, L, args.batch, args.d_model, args.d_state,
                                                             args.device, args.repeats])]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode or not lines:
        return {"error": (proc.stderr.strip().splitlines() or ["failed"])[-1][:80]}
    return json.loads(lines[-1])


def table(results: dict, rows, lengths) -> str:
    """Markdown table with ratios to the first row (S4D) at each length."""
    out = ["| layer | kwargs | L | tokens/s | x S4D | peak MB | x S4D |", "|---|---|---|---|---|---|---|"]
    for L in lengths:
        ref = results.get((rows[0][0], json.dumps(rows[0][1]), L), {})
        for name, kw in rows:
            r = results[(name, json.dumps(kw), L)]
            if "error" in r:
                out.append(f"| {name} | {kw or ''} | {L} | error: {r['error']} | | | |")
                continue
            tr = r["tokens_per_s"] / ref["tokens_per_s"] if "tokens_per_s" in ref else float("nan")
            mr = r["peak_mb"] / ref["peak_mb"] if ref.get("peak_mb") else float("nan")
            out.append(f"| {name} | {kw or ''} | {L} | {r['tokens_per_s']:,.0f} | {tr:.2f} | {r['peak_mb']:.0f} | {mr:.2f} |")
    return "\n".join(out)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lengths", type=int, nargs="+", default=[1024, 4096])
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--d_model", type=int, default=256)
    p.add_argument("--d_state", type=int, default=64)
    p.add_argument("--device", default=None, help="cpu or cuda (default: both if CUDA is available)")
    p.add_argument("--layers", nargs="+", default=None, help="registry names to keep (default: all rows)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--timeout", type=int, default=1800)
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        name, kw, L, B, H, N, device, repeats = json.loads(args.child)
        print(json.dumps(measure(name, kw, L, B, H, N, device, repeats)))
        return
    import torch

    devices = [args.device] if args.device else (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    rows = [r for r in ROWS if args.layers is None or r[0] in args.layers]
    if rows and rows[0][0] != "s4d" and any(r[0] == "s4d" for r in ROWS):
        rows = [next(r for r in ROWS if r[0] == "s4d")] + rows  # keep the S4D baseline for the ratios
    for device in devices:
        args.device = device
        name = torch.cuda.get_device_name() if device.startswith("cuda") else f"CPU ({torch.get_num_threads()} threads)"
        print(f"\n## {name}: H={args.d_model}, N={args.d_state}, B={args.batch}, fwd+bwd, median of {args.repeats}\n")
        results = {}
        for L in args.lengths:
            for row_name, kw in rows:
                results[(row_name, json.dumps(kw), L)] = run_one(row_name, kw, L, args)
                print(f"  {row_name} {kw or ''} L={L}: {results[(row_name, json.dumps(kw), L)]}", file=sys.stderr)
        print(table(results, rows, args.lengths))


if __name__ == "__main__":
    main()
