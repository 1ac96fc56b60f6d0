"""Kernel benchmark: forward, backward and forward+backward medians per op, size and backend, with ratios between
the backends measured in the same run, and peak memory.

`ssm bench kernels [--device cpu|cuda] [--ops cauchy,vandermonde,...] [--sizes 256x32x4096,...] [--backends ...]`
(or `python benchmarks/kernels.py ...`). A size HxNxL is H rows of N terms and L positions (the Cauchy contour, the
Vandermonde length); log_vandermonde_transpose reduces u (B, H, L) with B = --batch. Prints markdown tables."""
from __future__ import annotations

import argparse
import contextlib
import gc
import math
import os
import statistics
import tempfile
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch

OPS = ("cauchy", "vandermonde", "log_vandermonde", "log_vandermonde_transpose")
BACKENDS = ("torch", "ext", "keops", "triton")
# The sizes of the GPU targets (H x N x L), and smaller ones that finish on a laptop CPU.
SIZES = {"cuda": ("256x32x4096", "256x64x4096", "1024x32x16384", "256x64x16384"),
         "cpu": ("64x32x1024", "256x32x4096", "64x64x16384")}
# fwd+bwd ms of the official state-spaces/s4 CUDA extension (cauchy_mult / vand_log_mult), complex64, one H200,
# measured before this rewrite (it is not a dependency, so it is not rerun here); the GPU target is 1.5x faster.
S4_REFERENCE_MS = {("cauchy", "256x32x4096"): 0.242, ("cauchy", "256x64x4096"): 0.408,
                   ("cauchy", "1024x32x16384"): 2.47, ("vandermonde", "256x32x4096"): 0.355,
                   ("vandermonde", "256x64x16384"): 0.676, ("vandermonde", "1024x32x16384"): 1.38}


def inputs(op: str, H: int, N: int, L: int, batch: int, device: torch.device, dtype: torch.dtype
           ) -> Tuple[Callable, tuple]:
    """S4/S4D-like leaf tensors (requiring grad) and a function of them and a backend name."""
    import ssm.kernels as K

    gen = torch.Generator().manual_seed(0)
    real = torch.float64 if dtype == torch.complex128 else torch.float32
    v = torch.complex(torch.randn(H, N, generator=gen, dtype=real), torch.randn(H, N, generator=gen, dtype=real))
    dt = torch.exp(torch.rand(H, 1, generator=gen, dtype=torch.float64) * (math.log(0.1) - math.log(1e-3))
                   + math.log(1e-3))
    A = torch.complex(-0.5 * torch.ones(H, N, dtype=torch.float64), math.pi * torch.arange(N, dtype=torch.float64))
    log_x = (dt * A).to(dtype)
    leaf = lambda *ts: tuple(t.to(device).requires_grad_() for t in ts)  # noqa: E731
    if op == "cauchy":
        w = torch.complex(-0.5 * torch.ones(H, N, dtype=real), math.pi * torch.arange(N, dtype=real).expand(H, N))
        omega = torch.exp(-2j * math.pi * torch.arange(L, dtype=torch.float64) / L)
        z = (2 * (1 - omega) / (1 + omega + 1e-3)).to(dtype).to(device)
        return (lambda v, w, backend: K.cauchy(v, z, w, conj=True, backend=backend)), leaf(v, w)
    if op == "vandermonde":
        return (lambda v, x, backend: K.vandermonde(v, x, L, backend=backend)), leaf(v, torch.exp(log_x))
    if op == "log_vandermonde":
        return (lambda v, lx, backend: K.log_vandermonde(v, lx, L, backend=backend)), leaf(v, log_x)
    u = torch.randn(batch, H, L, generator=gen, dtype=real)
    return (lambda u, lx, backend: K.log_vandermonde_transpose(u, lx, backend=backend)), leaf(u, log_x)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median(fn: Callable, device: torch.device, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure(fn: Callable, leaves: tuple, backend: str, device: torch.device, repeats: int) -> Dict[str, float]:
    """Median seconds of forward, backward (of a kept graph) and forward + backward, after one warm-up."""
    out = fn(*leaves, backend=backend)
    g = torch.ones_like(out)
    torch.autograd.grad(out, leaves, g)  # warm-up (compiles, allocator)
    fwd = _median(lambda: fn(*leaves, backend=backend), device, repeats)
    out = fn(*leaves, backend=backend)
    bwd = _median(lambda: torch.autograd.grad(out, leaves, g, retain_graph=True), device, repeats)
    both = _median(lambda: torch.autograd.grad(fn(*leaves, backend=backend), leaves, g), device, repeats)
    return {"fwd": fwd, "bwd": bwd, "both": both}


@contextlib.contextmanager
def _quiet_fds():
    """Silence what C++ code prints on fds 1 and 2 (the CPU profiler's USDT / gpuGetDeviceCount lines)."""
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile() as sink:
        try:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            yield
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def peak_bytes(fn: Callable, leaves: tuple, backend: str, device: torch.device) -> int:
    """Peak bytes allocated through torch during one forward + backward (CUDA: allocator stats; CPU: profiler)."""
    gc.collect()

    def step():
        out = fn(*leaves, backend=backend)
        torch.autograd.grad(out, leaves, torch.ones_like(out))

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        step()
        return torch.cuda.max_memory_allocated(device) - base
    from torch.profiler import ProfilerActivity, profile

    with _quiet_fds(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events() if e.name() == "[memory]")
    cur = peak = 0
    for _, n in events:
        cur += n
        peak = max(peak, cur)
    return peak


def run(ops: Sequence[str], sizes: Sequence[str], backends: Sequence[str], device: torch.device, dtype: torch.dtype,
        repeats: int, batch: int, max_gb: float, max_seconds: float, log: Callable = print) -> List[Dict]:
    """Measure every (op, size, backend); rows with times (s) and peak (bytes), or a note why not."""
    from . import dispatch

    rows, too_slow = [], {}
    for op in ops:
        for size in sizes:
            H, N, L = (int(s) for s in size.split("x"))
            work = H * N * L * (batch if op == "log_vandermonde_transpose" else 1)  # terms summed
            for b in [b for b in backends if b in dispatch.backends(op)]:
                row = dict(op=op, size=size, backend=b, note="")
                kind, _ = dispatch.state(op, b, device)
                if kind != dispatch.OK:
                    row["note"] = kind
                elif b == "torch" and 4 * 16 * H * N * L > max_gb * 2**30:  # a few (H, N, L) complex128 tensors
                    row["note"] = f"skipped: needs > {max_gb:g} GB"
                elif work > too_slow.get((op, b), work):
                    row["note"] = f"skipped: > {max_seconds:g} s at a smaller size"
                else:
                    fn, leaves = inputs(op, H, N, L, batch, device, dtype)
                    row.update(measure(fn, leaves, b, device, repeats))
                    row["peak"] = peak_bytes(fn, leaves, b, device)
                    if row["both"] > max_seconds:
                        too_slow[(op, b)] = work
                rows.append(row)
                log(_line(row))
    return rows


def _line(r: Dict) -> str:
    if "both" not in r:
        return f"# {r['op']} {r['size']} {r['backend']}: {r['note']}"
    return (f"# {r['op']} {r['size']} {r['backend']}: fwd {r['fwd'] * 1e3:.3f} ms, bwd {r['bwd'] * 1e3:.3f} ms, "
            f"fwd+bwd {r['both'] * 1e3:.3f} ms, peak {r['peak'] / 2**20:.1f} MiB")


def table(rows: List[Dict], op: str, device: torch.device) -> str:
    """Markdown table of one op: medians, bwd/fwd, fwd+bwd speed-up over torch and the best, peak memory."""
    ref_col = device.type == "cuda" and any((op, r["size"]) in S4_REFERENCE_MS for r in rows)
    head = ["size HxNxL", "backend", "fwd ms", "bwd ms", "fwd+bwd ms", "bwd/fwd", "x torch", "x best", "peak MiB"]
    head += ["x s4 ext (H200)"] if ref_col else []
    out = [f"### {op}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in (r for r in rows if r["op"] == op):
        same = [q for q in rows if q["op"] == op and q["size"] == r["size"] and "both" in q]
        if "both" not in r:
            out.append(f"| {r['size']} | {r['backend']} | {r['note']} |" + " |" * (len(head) - 3))
            continue
        torch_row = next((q for q in same if q["backend"] == "torch"), None)
        best = min(q["both"] for q in same)
        cells = [r["size"], r["backend"], f"{r['fwd'] * 1e3:.3f}", f"{r['bwd'] * 1e3:.3f}", f"{r['both'] * 1e3:.3f}",
                 f"{r['bwd'] / r['fwd']:.2f}", f"{torch_row['both'] / r['both']:.2f}" if torch_row else "-",
                 f"{best / r['both']:.2f}", f"{r['peak'] / 2**20:.1f}"]
        if ref_col:
            ref = S4_REFERENCE_MS.get((op, r["size"]))
            cells.append(f"{ref / (r['both'] * 1e3):.2f}" if ref else "-")
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def _names(kind: str, valid: Sequence[str]) -> Callable[[str], List[str]]:
    def parse(text: str) -> List[str]:
        items = [s.strip() for s in text.split(",") if s.strip()]
        bad = [s for s in items if s not in valid]
        if bad or not items:
            raise argparse.ArgumentTypeError(f"unknown {kind} {bad or text!r}; choose from {', '.join(valid)}")
        return items
    return parse


def _sizes(text: str) -> List[str]:
    items = [s.strip() for s in text.split(",") if s.strip()]
    for s in items:
        parts = s.split("x")
        if len(parts) != 3 or not all(p.isdigit() and int(p) > 0 for p in parts):
            raise argparse.ArgumentTypeError(f"size {s!r} must be HxNxL with positive integers, e.g. 256x32x4096")
    return items


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Parse arguments, run, print the tables; returns an exit status."""
    p = argparse.ArgumentParser(prog="ssm bench kernels", description=__doc__.splitlines()[0])
    p.add_argument("--ops", type=_names("op", OPS), default=list(OPS))
    p.add_argument("--sizes", type=_sizes, default=None, help="comma list of HxNxL (default depends on --device)")
    p.add_argument("--backends", type=_names("backend", BACKENDS), default=list(BACKENDS),
                   help="unavailable ones are listed as such")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", default="complex64", choices=["complex64", "complex128"])
    p.add_argument("--batch", type=int, default=16, help="B of log_vandermonde_transpose's u (B, H, L)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--max-gb", type=float, default=6.0, help="skip torch configs whose tensors would exceed this")
    p.add_argument("--max-seconds", type=float, default=30.0, help="skip larger sizes of a backend slower than this")
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: leave as is)")
    a = p.parse_args(argv)
    if a.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: torch sees no CUDA device here")
    if a.threads:
        torch.set_num_threads(a.threads)
    device = torch.device(a.device)
    sizes = a.sizes or list(SIZES[device.type])
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"# {name}, torch {torch.__version__}, {a.dtype}, median of {a.repeats} after a warm-up, "
          f"batch {a.batch} for the transpose")
    rows = run(a.ops, sizes, a.backends, device, getattr(torch, a.dtype), a.repeats, a.batch, a.max_gb,
               a.max_seconds)
    for op in a.ops:
        print()
        print(table(rows, op, device))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
