"""HiPPO transition matrices, their NPLR/DPLR forms, diagonal inits, the PTD init and transfer functions.

Modules, each importing only modules listed before it: checks (argument checks), matrices (A, B per
measure; rank corrections), forms (NPLR form, normal-part eigendecomposition, diagonal inits), store (the
PTD disk cache), perturb (the PTD init: perturb-then-diagonalize), transfer (transfer functions; needs only
checks), report (the PTD acceptance table). Numerics are float64/complex128 throughout."""
from .forms import DIAG_KINDS, diag_init, normal_eig, nplr
from .matrices import CONVENTIONS, MEASURES, rank_correction, transition
from .perturb import FAST_N, MAX_N, PTD_MEASURES, PTDInit, clear_cache, ptd
from .report import OFFICIAL, format_table, main, ptd_table
from .transfer import frequency_grid, sup_on_axis, transfer_evaluator, transfer_function

__all__ = ["MEASURES", "CONVENTIONS", "DIAG_KINDS", "PTD_MEASURES", "FAST_N", "MAX_N", "OFFICIAL",
           "transition", "rank_correction", "nplr", "normal_eig", "diag_init", "PTDInit", "ptd", "clear_cache",
           "transfer_function", "transfer_evaluator", "frequency_grid", "sup_on_axis", "ptd_table",
           "format_table", "main"]
