"""The PTD acceptance table (`python -m ssm.hippo report [N ...]`): our PTD beside the official perturbations."""
from __future__ import annotations

import math
import sys
import time
from typing import Dict, List, Optional, Sequence

import numpy as np

from .checks import check_int, describe
from .forms import nplr_arrays
from .matrices import transition_arrays
from .perturb import ptd
from .transfer import frequency_grid, sup_on_axis, transfer_evaluator

DEFAULT_NS = (8, 16, 32, 64, 128, 256)
ROW_KEYS = {"N", "relE", "cond", "err_ptd", "at", "err_diag", "spike", "n2pi", "GH_max", "steps", "cpu", "seconds"}
# The perturbations shipped with the PTD paper's code, measured with this table's protocol:
# N: (||E||_2 / ||A_H||_2, cond_2(V), max_s |G_PTD(s) - G_H(s)|).
OFFICIAL: Dict[int, tuple] = {8: (0.098, 5.11, 1.1e-2), 16: (0.051, 6.56, 1.3e-3), 32: (0.038, 8.31, 7.7e-4),
                              64: (0.034, 9.17, 3.5e-4), 128: (0.032, 8.01, 2.0e-5)}


def ptd_row(N: int, measure: str = "legs", timed: bool = True) -> dict:
    """One row: ||E||, cond(V), sup |G_PTD - G_H| and sup |G_diag - G_H| (where), max |G_H|, CPU/wall of ptd.

    timed: compute ptd from nothing (every level, no cache) and time it; else take it from the cache (times NaN)."""
    A, B = transition_arrays(measure, N)
    B = B / np.linalg.norm(B)
    t0, c0 = time.perf_counter(), time.process_time()
    init = ptd(measure, N, cache=not timed)
    seconds, cpu = (time.perf_counter() - t0, time.process_time() - c0) if timed else (math.nan, math.nan)
    Lam, V, Vi = init.Lambda.numpy(), init.V.numpy(), init.V_inv.numpy()
    form = nplr_arrays(measure, N)
    G_H = transfer_evaluator(A, B, B)  # Schur form of A_H itself: independent of the NPLR form ptd works in
    G_P = transfer_evaluator(Lam, Vi @ B, B @ V)
    G_D = transfer_evaluator(form.Lambda, form.V.conj().T @ B, B @ form.V)  # S4D-LegS with all N modes: E = p p^T
    omega = frequency_grid(N, Lam, form.Lambda)
    err, at = sup_on_axis(lambda s: np.abs(G_P(s) - G_H(s)), omega)
    spike_err, spike = sup_on_axis(lambda s: np.abs(G_D(s) - G_H(s)), omega)
    nE = float(np.linalg.norm(init.E.numpy(), 2))
    return dict(N=N, E=nE, relE=nE / np.linalg.norm(A, 2), cond=init.cond, err_ptd=err, at=abs(at),
                err_diag=spike_err, spike=abs(spike), n2pi=N * N / math.pi, GH_max=float(np.abs(G_H(1j * omega)).max()),
                seconds=seconds, cpu=cpu, steps=init.steps, official=OFFICIAL.get(N) if measure == "legs" else None)


def ptd_table(Ns: Sequence[int] = DEFAULT_NS, measure: str = "legs", timed: bool = True) -> List[dict]:
    """Rows of `ptd_row` per N (see there)."""
    if isinstance(Ns, (str, bytes)) or not isinstance(Ns, Sequence):
        raise TypeError(f"Ns must be a sequence of ints, got {describe(Ns)}")
    return [ptd_row(check_int("N", N), measure, timed) for N in Ns]


def format_table(rows: List[dict]) -> str:
    """Markdown table of ptd_table rows, ours beside the official figures (— where none were published).

    E/A = ||E||_2 / ||A_H||_2; gap = sup over omega of |G(i omega) - G_H(i omega)|; max G_H = max |G_H|."""
    if not isinstance(rows, Sequence) or not all(isinstance(r, dict) and ROW_KEYS <= r.keys() for r in rows):
        raise TypeError(f"rows must be a list of ptd_table rows (dicts with {sorted(ROW_KEYS)}), got {describe(rows)}")

    def official(r, i, fmt):
        return format(r["official"][i], fmt) if r.get("official") else "—"
    head = ("| N | E/A | official | cond(V) | official | gap PTD | official | at omega | gap diag | at omega "
            "| N^2/pi | max G_H | steps | PTD CPU s | PTD wall s |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    lines = [f"| {r['N']} | {r['relE']:.3f} | {official(r, 0, '.3f')} | {r['cond']:.2f} | {official(r, 1, '.2f')} | "
             f"{r['err_ptd']:.2e} | {official(r, 2, '.1e')} | {r['at']:.1f} | {r['err_diag']:.3f} | {r['spike']:.1f} | "
             f"{r['n2pi']:.1f} | {r['GH_max']:.2e} | {r['steps']} | {r['cpu']:.2f} | {r['seconds']:.2f} |"
             for r in rows]
    return "\n".join([head] + lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """`python -m ssm.hippo report [N ...]`: print the PTD acceptance table (default N = 8 ... 256)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] != "report":
        print("usage: python -m ssm.hippo report [N ...]", file=sys.stderr)
        return 2
    try:
        Ns = [int(a) for a in args[1:]] or list(DEFAULT_NS)
        print(format_table(ptd_table(Ns)))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
