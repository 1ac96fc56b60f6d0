"""The acceptance table: `python -m ssm.hippo report [N ...]` prints ours beside the official figures."""
import math
import os
import subprocess
import sys

from ssm import hippo


def test_report_prints_ours_beside_the_official_figures(capsys):
    assert hippo.main(["report", "8"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("| N | E/A | official | cond(V) | official | gap PTD | official |")
    row = [c.strip() for c in lines[2].strip("|").split("|")]
    assert row[0] == "8" and row[2] == "0.098" and row[4] == "5.11" and row[6] == "1.1e-02"
    assert float(row[3]) <= 1.05 * 5.11 and float(row[5]) <= 1.1e-2


def test_format_table_marks_missing_official_figures():
    row = dict(N=256, relE=0.07, cond=6.8, err_ptd=5e-6, at=400.0, err_diag=0.81, spike=20860.0, n2pi=20860.8,
               GH_max=3e-5, steps=80, cpu=math.nan, seconds=math.nan, official=None)
    line = hippo.format_table([row]).splitlines()[2]
    assert line.startswith("| 256 | 0.070 | — | 6.80 | — | 5.00e-06 | — |")


def test_module_entry_point():
    env = dict(os.environ, SSM_CACHE_DIR="")
    out = subprocess.run([sys.executable, "-m", "ssm.hippo", "report", "4"], capture_output=True, text=True,
                         env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[2].startswith("| 4 |")
