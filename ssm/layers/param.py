"""Parametrisation shared by the SSM layers: step sizes, eigenvalue real parts, optimizer tags, initialisers.

These are how a layer stores its continuous SSM (A = Lambda, dt, ...) as unconstrained parameters; the
equations that use them live in `ssm.layers.functional`.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

REAL_TRANSFORMS = ("exp", "relu", "softplus", "none")
DT_TRANSFORMS = ("exp", "softplus")


def real_part(p: torch.Tensor, transform: str) -> torch.Tensor:
    """Re(Lambda) from its parameter: -exp(p), -relu(p) - 1e-4, -softplus(p) (kept negative) or -p ("none")."""
    if transform == "exp":
        return -torch.exp(p)
    if transform == "relu":
        return -F.relu(p) - 1e-4
    if transform == "softplus":
        return -F.softplus(p)
    return -p


def real_param(re: torch.Tensor, transform: str) -> torch.Tensor:
    """Inverse of `real_part`: the parameter that gives Re(Lambda) = re (re < 0 unless "none")."""
    if transform == "none":
        return -re
    mag = (-re).clamp_min(1e-4)
    if transform == "exp":
        return torch.log(mag)
    if transform == "softplus":
        return mag + torch.log(-torch.expm1(-mag))
    return mag


def log_dt_init(shape: Union[int, Sequence[int]], dt_min: float = 1e-3, dt_max: float = 1e-1) -> torch.Tensor:
    """log(dt) drawn log-uniformly in [dt_min, dt_max], of `shape`."""
    if not (isinstance(dt_min, (int, float)) and isinstance(dt_max, (int, float)) and 0 < dt_min <= dt_max):
        raise ValueError(f"dt_min and dt_max must satisfy 0 < dt_min <= dt_max, got {dt_min!r}, {dt_max!r}")
    return torch.rand(shape) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)


def dt_value(p: torch.Tensor, transform: str) -> torch.Tensor:
    """dt from its parameter: exp(p) or softplus(p)."""
    return torch.exp(p) if transform == "exp" else F.softplus(p)


def dt_param(H: int, dt_min: float, dt_max: float, transform: str) -> torch.Tensor:
    """(H,) parameter whose dt is log-uniform in [dt_min, dt_max] under `transform`."""
    log_dt = log_dt_init(H, dt_min, dt_max)
    return log_dt if transform == "exp" else torch.log(torch.expm1(torch.exp(log_dt)))


def clip_imag(x: torch.Tensor, bound: float) -> torch.Tensor:
    """x (...,) complex with Im(x) clamped to [-bound, bound] (the official S4 init clips Im(B) at 2)."""
    return torch.complex(x.real, x.imag.clamp(-bound, bound))


def repeat_ssm(x: torch.Tensor, H: int) -> torch.Tensor:
    """(..., S, N) -> (..., H, N): channel h uses SSM copy h % S."""
    S = x.shape[-2]
    return x if S == H else x.repeat(*([1] * (x.dim() - 2)), H // S, 1)


def register_ssm_param(module: nn.Module, name: str, value: torch.Tensor, lr: Optional[float],
                       weight_decay: Optional[float] = 0.0) -> None:
    """Register `value` as a parameter tagged `_optim` (lr, weight_decay; None keeps the global one), or as a
    frozen buffer if lr == 0."""
    if lr == 0.0:
        module.register_buffer(name, value)
        return
    param = nn.Parameter(value)
    optim = {} if weight_decay is None else {"weight_decay": weight_decay}
    if lr is not None:
        optim["lr"] = lr
    param._optim = optim  # type: ignore[attr-defined]
    module.register_parameter(name, param)


def hippo_init(fn, *args, **kwargs):
    """Call a HiPPO initialiser (hippo.nplr, hippo.ptd, ...); its ValueError (an unknown measure) is reported as the
    layer argument `init`."""
    try:
        return fn(*args, **kwargs)
    except ValueError as e:
        raise ValueError(f"init must name a HiPPO matrix this layer can start from, got: {e}") from None


def glorot_(t: torch.Tensor) -> torch.Tensor:
    """Glorot-uniform init of each (fan_out, fan_in) matrix in the last two dims of `t`, in place."""
    bound = math.sqrt(6.0 / (t.shape[-1] + t.shape[-2]))
    with torch.no_grad():
        return t.uniform_(-bound, bound)


def complex_dtype(dtype: torch.dtype) -> torch.dtype:
    """complex128 for float64/complex128, else complex64 (kernels run in at least single precision)."""
    return torch.complex128 if dtype in (torch.float64, torch.complex128) else torch.complex64


def real_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 for float64, else float32."""
    return torch.float64 if dtype in (torch.float64, torch.complex128) else torch.float32
