"""Differentiable kernel ops with interchangeable backends (torch reference, compiled ext, keops, triton).

ops/<op>.py holds each public function beside its autograd and reference; backends/<name>.py the primitives of
one backend; registry.py the one table of backends; dispatch.py picks one per call (see docs/kernels.md).
"""
from .dispatch import report as backend_report
from .ops.cauchy import cauchy
from .ops.fftconv import fftconv
from .ops.log_vandermonde import log_vandermonde
from .ops.log_vandermonde_transpose import log_vandermonde_transpose
from .ops.scan import scan
from .ops.vandermonde import vandermonde

__all__ = ["cauchy", "vandermonde", "log_vandermonde", "log_vandermonde_transpose", "scan", "fftconv",
           "backend_report"]
