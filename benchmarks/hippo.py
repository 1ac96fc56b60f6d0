"""PTD acceptance table (same as `python -m ssm.hippo report`): python benchmarks/hippo.py [N ...].

Per N (default 8 16 32 64 128): ||E||_2, ||E||_2/||A_H||_2, cond_2(V), max over s = i omega of
|G_PTD - G_H| and |G_diag - G_H| (B = B_H/||B_H||, C = B^T; G_diag is S4D-LegS, i.e. E = p p^T),
where the diagonal init's error peaks (compare N^2/pi), max |G_H|, and the wall/CPU seconds of one
uncached ptd("legs", N). The frequency grid is 4000 log-spaced points per half axis up to 30 N^2 plus
the frequency of every pole of both diagonal systems (their resonances are narrower than the grid).
"""
import sys

from ssm.hippo import main

if __name__ == "__main__":
    sys.exit(main(["report", *sys.argv[1:]]))
