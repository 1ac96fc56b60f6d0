"""Argument checks and row plumbing shared by the op modules (shapes and dtypes only: no device->host syncs)."""
from __future__ import annotations

import operator
from typing import Optional, Sequence, Tuple

import torch


def tensor(name: str, x: object, min_dim: int = 0, shape: str = "") -> torch.Tensor:
    """`x` if it is a floating or complex tensor with >= min_dim dims, else TypeError/ValueError naming `name`."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__module__}.{type(x).__qualname__}")
    if not (x.is_floating_point() or x.is_complex()):
        raise TypeError(f"{name} must be a floating or complex tensor, got dtype {x.dtype}")
    if x.dim() < min_dim:
        raise ValueError(f"{name} must have shape {shape or f'with >= {min_dim} dims'}, got shape {tuple(x.shape)}")
    return x


def integer(name: str, x: object, minimum: int) -> int:
    """`x` as a Python int >= minimum (ints and numpy integers; not floats, bools or tensors)."""
    if isinstance(x, (bool, torch.Tensor)):
        raise TypeError(f"{name} must be a Python int, got {type(x).__name__} {x!r}")
    try:
        value = operator.index(x)
    except TypeError:
        raise TypeError(f"{name} must be an int, got {type(x).__name__} {x!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value}")
    return value


def flag(name: str, x: object) -> bool:
    """`x` if it is a Python bool."""
    if not isinstance(x, bool):
        raise TypeError(f"{name} must be a bool, got {type(x).__name__} {x!r}")
    return x


def backend_name(x: object) -> None:
    if x is not None and not isinstance(x, str):
        raise TypeError(f"backend must be None or a backend name (str), got {type(x).__name__} {x!r}")


def same_device(**tensors: torch.Tensor) -> torch.device:
    """The common device of the tensors, else ValueError naming them."""
    devices = {n: t.device for n, t in tensors.items()}
    if len(set(devices.values())) > 1:
        raise ValueError("inputs must be on one device, got " + ", ".join(f"{n} on {d}" for n, d in devices.items()))
    return next(iter(devices.values()))


def broadcast(s: Sequence[int], t: Sequence[int]) -> Optional[torch.Size]:
    """The broadcast of two shapes, or None (plain Python: torch.broadcast_shapes costs tens of microseconds)."""
    n = max(len(s), len(t))
    s, t = (1,) * (n - len(s)) + tuple(s), (1,) * (n - len(t)) + tuple(t)
    if any(a != b and a != 1 and b != 1 for a, b in zip(s, t)):
        return None
    return torch.Size(b if a == 1 else a for a, b in zip(s, t))


def batch_shape(na: str, a: torch.Tensor, nb: str, b: torch.Tensor, last: bool = True) -> torch.Size:
    """Broadcast batch shape of a (..., K) and b (..., N): broadcastable batch dims (and K == N if `last`)."""
    if last and a.shape[-1] != b.shape[-1]:
        raise ValueError(f"{na} and {nb} must have the same last dim N, got {na} {tuple(a.shape)} and {nb} {tuple(b.shape)}")
    shape = broadcast(a.shape[:-1], b.shape[:-1])
    if shape is None:
        raise ValueError(f"{na} and {nb} must have broadcastable batch dims, got {na} {tuple(a.shape)} and "
                         f"{nb} {tuple(b.shape)}")
    return shape


def complex_dtype(*ts: torch.Tensor) -> torch.dtype:
    """complex64 or complex128: the promoted dtype of the inputs, at least complex64."""
    dtype = torch.complex64
    for t in ts:
        dtype = torch.promote_types(dtype, t.dtype)
    return dtype if dtype.is_complex else torch.complex128


_REAL = {torch.complex64: torch.float32, torch.complex128: torch.float64}


def real_dtype(dtype: torch.dtype) -> torch.dtype:
    """float32 for complex64, float64 for complex128 (a table: torch.compile traces it)."""
    return _REAL[dtype]


def as_rows(a: torch.Tensor, b: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Size]:
    """a (..., K), b (..., N) with broadcastable (already checked), non-empty batch shapes -> a2 (R, K), b2 (Rb, N)
    contiguous with R % Rb == 0 (row r uses b2[r % Rb]), and the broadcast batch shape.

    When b's batch shape is a suffix of a's (v (C, H, N) with x (H, N)), b is not copied; otherwise both are
    expanded (autograd sums the expanded gradient back)."""
    shape = broadcast(a.shape[:-1], b.shape[:-1])
    K, N = a.shape[-1], b.shape[-1]
    R = shape.numel()
    bs = list(b.shape[:-1])
    while bs and bs[0] == 1:
        bs.pop(0)
    if tuple(a.shape[:-1]) == tuple(shape) and tuple(shape[len(shape) - len(bs):]) == tuple(bs):
        return a.reshape(R, K).contiguous(), b.reshape(torch.Size(bs).numel(), N).contiguous(), shape
    return a.expand(*shape, K).reshape(R, K).contiguous(), b.expand(*shape, N).reshape(R, N).contiguous(), shape


def fold_rows(g: torch.Tensor, rows: int) -> torch.Tensor:
    """(R, N) gradient of rows reused cyclically -> (rows, N) summed over the repeats."""
    return g if g.shape[0] == rows else g.reshape(-1, rows, g.shape[-1]).sum(0)
