"""A test backend whose Cauchy primitive reads address 0: whoever runs it dies with SIGSEGV (test_probe.py)."""
import ctypes
import sys


def load(device):
    return sys.modules[__name__]


def cauchy_fwd(v, z, w, conj, power):
    ctypes.string_at(0)


def cauchy_bwd(g, z, w, conj):
    ctypes.string_at(0)
