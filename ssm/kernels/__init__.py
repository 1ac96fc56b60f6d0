"""Differentiable kernel ops with several backends (torch reference, keops, compiled ext, triton)."""
from .cauchy import cauchy
from .dispatch import report as backend_report
from .fftconv import fftconv
from .scan import scan
from .vandermonde import log_vandermonde, log_vandermonde_transpose, vandermonde

__all__ = ["cauchy", "vandermonde", "log_vandermonde", "log_vandermonde_transpose", "scan", "fftconv", "backend_report"]
