"""Time the scan backends (forward, forward+backward) on S5-shaped problems; ratios to `ref` (fwd), `torch` (fwd+bwd).

    python benchmarks/scan.py                           # CPU (and CUDA if present), B x L x P' in a few shapes
    python benchmarks/scan.py --threads 1 --shapes 16x1024x128 8x4096x64

a is time-invariant (P',) complex, b (B, L, P') complex64, as in the S5 layer. Median over --repeats
after one warm-up; each backend in this process, one after another.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from ssm.kernels import dispatch, scan


def timed(fn, repeats: int, sync) -> float:
    fn()
    sync()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        ts.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(ts)


def bench(shape, device: str, backends, repeats: int, slow_ref: bool = False):
    """-> {backend: (fwd ms, fwd+bwd ms) or reason}."""
    B, L, N = shape
    g = torch.Generator().manual_seed(0)
    b = torch.randn(B, L, N, dtype=torch.complex64, generator=g).to(device)
    a = (0.999 * torch.exp(1j * torch.rand(N, generator=g))).to(torch.complex64).to(device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    out = {}
    for name in backends:
        reason = dispatch.status("scan", name, torch.device(device))
        if reason is not None:
            out[name] = reason
            continue
        ar, br = a.clone().requires_grad_(), b.clone().requires_grad_()
        fwd = timed(lambda: scan(a, b, backend=name), repeats, sync)
        if name == "ref" and B * L * N > 2**19 and not slow_ref:  # autograd through the loop takes minutes
            both = float("nan")
        else:
            both = timed(lambda: scan(ar, br, backend=name).real.sum().backward(), repeats, sync)
        out[name] = (fwd, both)
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shapes", nargs="+", default=["16x1024x128", "8x4096x64", "4x16384x32"])
    p.add_argument("--backends", nargs="+", default=["ref", "torch", "ext", "triton"])
    p.add_argument("--device", default=None)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--slow-ref", action="store_true", help="also time autograd through the sequential loop at large sizes")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = [args.device] if args.device else (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    for device in devices:
        name = torch.cuda.get_device_name() if device.startswith("cuda") else f"CPU ({torch.get_num_threads()} threads)"
        print(f"\n## scan on {name}, complex64, median of {args.repeats} (ms; speed-up = baseline ms / backend ms)\n")
        print("| B x L x P' | backend | fwd ms | x ref | fwd+bwd ms | x torch |\n|---|---|---|---|---|---|")
        for s in args.shapes:
            shape = tuple(int(v) for v in s.split("x"))
            res = bench(shape, device, args.backends, args.repeats, args.slow_ref)
            ref, base = res.get("ref"), res.get("torch")
            for bk, r in res.items():
                if isinstance(r, str):
                    print(f"| {s} | {bk} | n/a: {r[:60]} | | | |")
                    continue
                rf = f"{ref[0] / r[0]:.1f}" if isinstance(ref, tuple) else ""
                rb = f"{base[1] / r[1]:.1f}" if isinstance(base, tuple) and r[1] == r[1] else ""
                both = f"{r[1]:.1f}" if r[1] == r[1] else "skipped (--slow-ref)"
                print(f"| {s} | {bk} | {r[0]:.1f} | {rf} | {both} | {rb} |", flush=True)


if __name__ == "__main__":
    main()
