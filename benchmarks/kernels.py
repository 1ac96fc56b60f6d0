"""Kernel benchmark (thin wrapper): python benchmarks/kernels.py [--H 64,256 --L 1024,4096,16384 ...]; same as `ssm bench kernels`."""
import sys

from ssm.kernels.benchmark import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
