"""Robustness of trained sequence models: input and per-layer perturbations, attacks, transfer-function analysis.

`ssm robust --ckpt RUN/checkpoints/last.ckpt --perturb fourier,gaussian,pgd --levels 0,0.05,0.1` evaluates a run;
`ssm robust transfer --ckpt ...` plots its layers' |G(i w)| against HiPPO-LegS. See docs/robustness.md.
"""
from .attacks import fgsm, l2_radius, pgd, project
from .evaluate import Row, evaluate, format_table, read_csv, subset_loader, write_csv
from .hooks import LayerFourierNoise
from .layers import channel_steps, sequence_layers
from .noise import cosine_mode, fourier_mode, gaussian, time_shift, time_warp
from .perturb import PERTURBATIONS, Perturbation, make
from .site import InputSite
from .transfer import Spike, diagonal_spike, find_spike, layer_response, legs_reference, envelope, local_excess

__all__ = ["fgsm", "pgd", "project", "l2_radius", "Row", "evaluate", "format_table", "read_csv", "subset_loader", "write_csv",
           "LayerFourierNoise", "channel_steps", "sequence_layers", "cosine_mode", "fourier_mode", "gaussian",
           "time_shift", "time_warp", "PERTURBATIONS", "Perturbation", "make", "InputSite", "Spike",
           "diagonal_spike", "find_spike", "layer_response", "legs_reference", "local_excess", "envelope"]
