"""The papers' equations as small functions that the layers call (docs/equations.md indexes them).

discretize: `zoh`, `bilinear`, `discretize`, `log_abar`, `discretize_dense`; diagonal SSM (S4D, DSS, S4-PTD):
`vandermonde_kernel`, `reversed_vandermonde_kernel`, `diagonal_final_state`, `diagonal_initial_response`,
`diagonal_step`, `diagonal_transfer`;
DPLR (S4): `dplr_kernel`, `C_tilde`, `woodbury`, `bilinear_dplr`, `dplr_step`; dense SSMs: `krylov`,
`dense_final_state`;
S5: `s5_step`, `s5_scan`; RNNs: `gru_cell`, `lstm_cell`, `lowrank_matvec`, `cfc_update`.
"""
from .dense import complex_vector, dense_final_state, krylov, real_form, real_vector, squarings
from .diagonal import (diagonal_final_state, diagonal_initial_response, diagonal_readout, diagonal_step,
                       diagonal_transfer, reversed_vandermonde_kernel, vandermonde_kernel)
from .discretize import METHODS, bilinear, discretize, discretize_dense, input_factor, log_abar, zoh
from .dplr import (C_tilde, bilinear_dplr, dplr_A0, dplr_A1, dplr_dense, dplr_generating, dplr_kernel, dplr_step,
                   full, re_inner, woodbury, woodbury_setup)
from .rnn import (cfc_update, gru_cell, gru_cell_reset_before, gru_scan, lecun_tanh, lowrank_matvec, lstm_cell,
                  lstm_scan)
from .s5 import s5_input, s5_readout, s5_scan, s5_step

__all__ = [
    "zoh", "bilinear", "discretize", "log_abar", "input_factor", "discretize_dense", "METHODS",
    "vandermonde_kernel", "reversed_vandermonde_kernel", "diagonal_final_state", "diagonal_initial_response",
    "diagonal_step", "diagonal_readout", "diagonal_transfer",
    "dplr_kernel", "dplr_generating", "C_tilde", "woodbury", "bilinear_dplr", "dplr_dense", "dplr_step", "dplr_A0",
    "dplr_A1",
    "woodbury_setup", "full", "re_inner",
    "krylov", "squarings", "dense_final_state", "real_form", "real_vector", "complex_vector",
    "s5_input", "s5_readout", "s5_step", "s5_scan",
    "lowrank_matvec", "gru_cell", "gru_cell_reset_before", "gru_scan", "lstm_cell", "lstm_scan", "lecun_tanh",
    "cfc_update",
]
