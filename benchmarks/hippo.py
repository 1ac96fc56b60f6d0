"""PTD acceptance table (same as `python -m ssm.hippo report`): python benchmarks/hippo.py [N ...].

Per N (default 8 16 32 64 128 256), our ptd("legs", N) beside the perturbations shipped with the PTD
paper's code: ||E||_2/||A_H||_2, cond_2(V) and sup over s = i omega of |G_PTD(s) - G_H(s)| (B = B_H/||B_H||,
C = B^T), then the diagonal init's gap sup |G_diag - G_H| and where it peaks (compare N^2/pi), max |G_H|, the
optimiser's evaluations at N, and the CPU/wall seconds of one ptd from nothing (every coarser level included,
no cache). The sup is taken over 4000 log-spaced omega in [1e-2, 30 N^2], plus every pole's frequency and its
half-width neighbours, then refined by three zooms into the eight highest local maxima.
"""
import sys

from ssm.hippo import main

if __name__ == "__main__":
    sys.exit(main(["report", *sys.argv[1:]]))
