"""Kernel benchmark: forward+backward median time and peak memory per backend, with ratios to `torch` (same run).

Run: `ssm bench kernels [--ops cauchy,vandermonde] [--H 64,256] [--N 64] [--L 1024,4096,16384] [--device cpu]`
or `python benchmarks/kernels.py ...`. Prints one markdown table per op."""
from __future__ import annotations

import argparse
import gc
import math
import statistics
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch

from . import dispatch


def _inputs(op: str, H: int, N: int, L: int, device: torch.device, dtype: torch.dtype) -> Tuple[Callable, tuple]:
    """S4/S4D-like inputs of the op (leaf tensors that require grad) and a function of them."""
    gen = torch.Generator().manual_seed(0)
    real = torch.float64 if dtype == torch.complex128 else torch.float32
    f = lambda *s: torch.randn(*s, generator=gen, dtype=real)  # noqa: E731
    v = torch.complex(f(H, N), f(H, N))
    if op == "vandermonde":
        dt = torch.exp(torch.rand(H, 1, generator=gen) * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3)).to(real)
        A = torch.complex(-0.5 * torch.ones(H, N, dtype=real), math.pi * torch.arange(N, dtype=real).expand(H, N))
        x = torch.exp(dt * A)
        leaves = (v.to(device).requires_grad_(), x.to(device).requires_grad_())
        return (lambda v, x, backend: _ops().vandermonde(v, x, L, backend=backend)), leaves
    w = torch.complex(-0.5 * torch.ones(H, N, dtype=real), f(H, N) * 10)
    omega = torch.exp(-2j * math.pi * torch.arange(L, dtype=torch.float64) / L)
    z = (2 * (1 - omega) / (1 + omega + 1e-3)).to(dtype)
    leaves = (v.to(device).requires_grad_(), w.to(device).requires_grad_())
    z = z.to(device)
    return (lambda v, w, backend: _ops().cauchy(v, z, w, conj=True, backend=backend)), leaves


def _ops():
    import ssm.kernels as K

    return K


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _step(fn: Callable, leaves: tuple, backend: str) -> None:
    out = fn(*leaves, backend=backend)
    torch.autograd.grad(out, leaves, torch.ones_like(out))


def time_fwd_bwd(fn: Callable, leaves: tuple, backend: str, device: torch.device, repeats: int,
                 slow: float = 10.0) -> float:
    """Median seconds of forward + backward (after one warm-up call; a single repeat if the warm-up took > `slow` s)."""
    t0 = time.perf_counter()
    _step(fn, leaves, backend)
    if time.perf_counter() - t0 > slow:
        repeats = 1
    times = []
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        _step(fn, leaves, backend)
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def peak_bytes(fn: Callable, leaves: tuple, backend: str, device: torch.device) -> int:
    """Peak bytes allocated through torch during one forward + backward (CUDA: allocator stats; CPU: profiler)."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        _step(fn, leaves, backend)
        return torch.cuda.max_memory_allocated(device) - base
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        _step(fn, leaves, backend)
    events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events() if e.name() == "[memory]")
    cur = peak = 0
    for _, n in events:
        cur += n
        peak = max(peak, cur)
    return peak


def _torch_bytes(op: str, H: int, N: int, L: int, dtype: torch.dtype) -> int:
    """Rough size of one materialised (H, N, L) tensor of the reference."""
    return H * N * L * torch.empty(0, dtype=dtype).element_size()


def run(ops: Sequence[str], Hs: Sequence[int], Ns: Sequence[int], Ls: Sequence[int], backends: Sequence[str],
        device: torch.device, dtype: torch.dtype, repeats: int, max_gb: float, max_seconds: float = 30.0,
        log: Callable = print) -> List[Dict]:
    """Measure every (op, H, N, L, backend); returns rows with time (s), peak (bytes) or a skip reason.

    A backend whose fwd+bwd took more than `max_seconds` is skipped at every larger size of the same op."""
    rows = []
    too_slow: Dict[Tuple[str, str], int] = {}
    for op in ops:
        names = [b for b in backends if b in dispatch.backends(op)]
        for H in Hs:
            for N in Ns:
                for L in Ls:
                    for b in names:
                        row = dict(op=op, H=H, N=N, L=L, backend=b, time=None, peak=None, note="")
                        kind, reason = dispatch.state(op, b, device)
                        if kind != dispatch.OK:
                            row["note"] = kind
                        elif b == "torch" and 4 * _torch_bytes(op, H, N, L, dtype) > max_gb * 2**30:
                            row["note"] = f"skipped: needs > {max_gb:g} GB"
                        elif H * N * L > too_slow.get((op, b), H * N * L):
                            row["note"] = f"skipped: > {max_seconds:g} s at a smaller size"
                        else:
                            fn, leaves = _inputs(op, H, N, L, device, dtype)
                            row["time"] = time_fwd_bwd(fn, leaves, b, device, repeats)
                            row["peak"] = peak_bytes(fn, leaves, b, device)
                            del leaves
                            if row["time"] > max_seconds:
                                too_slow[(op, b)] = H * N * L
                        rows.append(row)
                        log(_line(row))
    return rows


def _line(r: Dict) -> str:
    t = f"{r['time'] * 1e3:.1f} ms" if r["time"] is not None else r["note"]
    m = f"{r['peak'] / 2**20:.1f} MiB" if r["peak"] is not None else ""
    return f"# {r['op']} H={r['H']} N={r['N']} L={r['L']} {r['backend']}: {t} {m}"


def table(rows: List[Dict], op: str) -> str:
    """Markdown table of one op: time, speed-up over torch, peak memory and its ratio to torch."""
    out = [f"### {op} (forward + backward)", "",
           "| H | N | L | backend | time (ms) | speed-up vs torch | peak (MiB) | peak / torch |",
           "|---|---|---|---|---|---|---|---|"]
    for r in (r for r in rows if r["op"] == op):
        ref = next((q for q in rows if q["op"] == op and q["backend"] == "torch" and
                    (q["H"], q["N"], q["L"]) == (r["H"], r["N"], r["L"])), None)
        t = f"{r['time'] * 1e3:.1f}" if r["time"] is not None else r["note"]
        m = f"{r['peak'] / 2**20:.1f}" if r["peak"] is not None else "-"
        sp = f"{ref['time'] / r['time']:.1f}x" if r["time"] and ref and ref["time"] else "-"
        mr = f"{r['peak'] / ref['peak']:.3f}" if r["peak"] is not None and ref and ref["peak"] else "-"
        out.append(f"| {r['H']} | {r['N']} | {r['L']} | {r['backend']} | {t} | {sp} | {m} | {mr} |")
    return "\n".join(out)


def _ints(s: str) -> List[int]:
    return [int(x) for x in s.split(",") if x]


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Parse arguments, run, print the tables; returns an exit status."""
    p = argparse.ArgumentParser(prog="ssm bench kernels", description=__doc__.splitlines()[0])
    p.add_argument("--ops", default="cauchy,vandermonde")
    p.add_argument("--H", default="64,256")
    p.add_argument("--N", default="64")
    p.add_argument("--L", default="1024,4096,16384")
    p.add_argument("--backends", default="torch,ext,keops,triton", help="comma list; unavailable ones are listed as such")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", default="complex64", choices=["complex64", "complex128"])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--max-gb", type=float, default=6.0, help="skip torch configs whose tensors would exceed this")
    p.add_argument("--max-seconds", type=float, default=30.0, help="skip larger sizes of a backend slower than this")
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: leave as is)")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    import ssm.kernels  # noqa: F401 - registers every op's backends

    device = torch.device(a.device)
    print(f"# device {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'}), "
          f"torch {torch.__version__}, threads {torch.get_num_threads()}, dtype {a.dtype}, median of {a.repeats}")
    rows = run(a.ops.split(","), _ints(a.H), _ints(a.N), _ints(a.L), a.backends.split(","), device,
               getattr(torch, a.dtype), a.repeats, a.max_gb, a.max_seconds)
    for op in a.ops.split(","):
        print()
        print(table(rows, op))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
