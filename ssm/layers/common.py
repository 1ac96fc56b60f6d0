"""Pieces shared by the SSM layers: activations, tied dropout, GLU output, dt init, per-parameter optimizer settings."""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn

ACTIVATIONS = {
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "swish": nn.SiLU,
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "identity": nn.Identity,
    None: nn.Identity,
}


def activation(name: Optional[str]) -> nn.Module:
    """The activation module called `name` (gelu, silu, relu, tanh, sigmoid, identity)."""
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(k for k in ACTIVATIONS if k)}, got {name!r}")
    return ACTIVATIONS[name]()


class DropoutNd(nn.Module):
    """Dropout on (B, L, H) with one mask per (batch, channel) shared over time when `tie`."""

    def __init__(self, p: float = 0.0, tie: bool = True):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {p}")
        self.p, self.tie = p, tie

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, L, H) or (B, H) -> same shape."""
        if not self.training or self.p == 0.0:
            return x
        shape = (x.shape[0], 1, x.shape[-1]) if self.tie and x.dim() == 3 else x.shape
        mask = torch.rand(shape, device=x.device) >= self.p
        return x * mask.to(x.dtype) / (1.0 - self.p)

    def extra_repr(self) -> str:
        return f"p={self.p}, tie={self.tie}"


class OutputLayer(nn.Module):
    """activation -> tied dropout -> Linear(H, 2H) + GLU ("glu"), Linear(H, H) ("linear") or nothing ("none")."""

    def __init__(self, d_model: int, activation_name: Optional[str] = "gelu", dropout: float = 0.0,
                 output: str = "glu", tie_dropout: bool = True):
        super().__init__()
        if output not in ("glu", "linear", "none"):
            raise ValueError(f"output must be one of ['glu', 'linear', 'none'], got {output!r}")
        self.activation = activation(activation_name)
        self.dropout = DropoutNd(dropout, tie=tie_dropout)
        self.kind = output
        if output == "glu":
            self.linear = nn.Linear(d_model, 2 * d_model)
        elif output == "linear":
            self.linear = nn.Linear(d_model, d_model)
        else:
            self.linear = nn.Identity()

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        """y: (..., H) -> (..., H)."""
        y = self.linear(self.dropout(self.activation(y)))
        return nn.functional.glu(y, dim=-1) if self.kind == "glu" else y


def register_ssm_param(module: nn.Module, name: str, value: torch.Tensor, lr: Optional[float],
                       weight_decay: float = 0.0) -> None:
    """Register `value` as a parameter tagged `_optim` (lr, weight_decay), or as a frozen buffer if lr == 0."""
    if lr == 0.0:
        module.register_buffer(name, value)
        return
    param = nn.Parameter(value)
    optim = {"weight_decay": weight_decay}
    if lr is not None:
        optim["lr"] = lr
    param._optim = optim  # type: ignore[attr-defined]
    module.register_parameter(name, param)


def log_dt_init(shape, dt_min: float = 1e-3, dt_max: float = 1e-1) -> torch.Tensor:
    """log(dt) drawn log-uniformly in [dt_min, dt_max], of `shape`."""
    if not 0 < dt_min <= dt_max:
        raise ValueError(f"dt_min and dt_max must satisfy 0 < dt_min <= dt_max, got {dt_min}, {dt_max}")
    return torch.rand(shape) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)


def complex_dtype(dtype: torch.dtype) -> torch.dtype:
    """complex128 for float64, else complex64 (kernels run in at least single precision)."""
    return torch.complex128 if dtype == torch.float64 else torch.complex64


def real_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 for float64, else float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32
