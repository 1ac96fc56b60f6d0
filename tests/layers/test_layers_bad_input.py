"""One bad-input policy for every registry layer, as a table: (case, call, expected error type, argument named).

Shape and value errors are ValueError, type and dtype errors TypeError; the message names the argument, the
expected and the received value ("<arg> must ..., got ..."). An empty batch is not an error: it gives empty
outputs. Finiteness checks run only when switched on (they make the GPU wait for the host).
"""
from __future__ import annotations

import functools
import math
import re

import pytest
import torch

from ssm.layers import CLASS_NAMES, REGISTRY, build, checks_enabled, set_checks

SMALL = {"s4": {"d_state": 4}, "s4d": {"d_state": 4}, "dss": {"d_state": 4}, "s4-ptd": {"d_state": 4},
         "s5": {"d_state": 4, "blocks": 2}, "s5-ptd": {"d_state": 4, "blocks": 2},
         "lowrank-gru": {"rank": 2}, "lowrank-lstm": {"rank": 2}, "cfc": {"units": 4, "backbone_units": 4}}
NAMES = sorted(REGISTRY)
SSMS = ("s4", "s4d", "dss", "s4-ptd", "s5", "s5-ptd")
B, L, H = 2, 5, 4


@functools.lru_cache(maxsize=None)
def make(name, bidirectional=False):
    """One layer per (name, direction), shared by the cases (none of them changes a layer)."""
    torch.manual_seed(0)
    kw = {"bidirectional": True} if bidirectional else {}
    return build(name, d_model=H, **{**SMALL[name], **kw}).eval()


def x_(*shape, dtype=torch.float32):
    return torch.randn(*(shape or (B, L, H)), dtype=dtype)


def nan_x():
    x = x_()
    x[1, 2, 3] = float("nan")
    return x


def wrong_state(layer):
    """A state whose first tensor has one channel too many."""
    s = layer.default_state(B)
    grow = lambda t: torch.cat([t, t[..., :1]], -1)  # noqa: E731
    return tuple(grow(t) for t in s) if isinstance(s, tuple) else grow(s)


def retyped_state(layer):
    """The default state in the wrong precision (double instead of single)."""
    s = layer.default_state(B)
    up = lambda t: t.to(torch.complex128 if t.is_complex() else torch.float64)  # noqa: E731
    return tuple(up(t) for t in s) if isinstance(s, tuple) else up(s)


def nan_state(layer):
    s = layer.default_state(B)
    first = s[0] if isinstance(s, tuple) else s
    first.view(-1)[0] = float("nan")
    return s


# (id, which layers, call(layer), expected exception or None for "no error", argument named)
CASES = [
    ("x-rank2", NAMES, lambda m: m(x_(B, L)), ValueError, "x"),
    ("x-rank4", NAMES, lambda m: m(x_(B, L, H, 1)), ValueError, "x"),
    ("x-width", NAMES, lambda m: m(x_(B, L, H + 1)), ValueError, "x"),
    ("x-length0", NAMES, lambda m: m(x_(B, 0, H)), ValueError, "x"),
    ("x-list", NAMES, lambda m: m([[0.0] * H] * L), TypeError, "x"),
    ("x-int", NAMES, lambda m: m(torch.ones(B, L, H, dtype=torch.long)), TypeError, "x"),
    ("x-float64-into-float32", NAMES, lambda m: m(x_(dtype=torch.float64)), TypeError, "x"),
    ("x-float16-into-float32", NAMES, lambda m: m(x_(dtype=torch.float16)), TypeError, "x"),
    ("x-bfloat16-into-float32", NAMES, lambda m: m(x_(dtype=torch.bfloat16)), TypeError, "x"),
    ("x-nan-checks-off", NAMES, lambda m: m(nan_x()), None, None),
    ("x-nan-checks-on", NAMES, lambda m: _checked(m, nan_x()), ValueError, "x"),
    ("state-shape", NAMES, lambda m: m(x_(), wrong_state(m)), ValueError, "state"),
    ("state-dtype", NAMES, lambda m: m(x_(), retyped_state(m)), TypeError, "state"),
    ("state-list", NAMES, lambda m: m(x_(), [1.0]), TypeError, "state"),
    ("state-nan-checks-on", NAMES, lambda m: _checked(m, x_(), nan_state(m)), ValueError, "state"),
    ("state-bidirectional", SSMS, lambda m: _bi(m)(x_(), m.default_state(B)), ValueError, "state"),
    ("rate-inf", SSMS + ("cfc",), lambda m: m(x_(), rate=math.inf), ValueError, "rate"),
    ("rate-nan", SSMS + ("cfc",), lambda m: m(x_(), rate=math.nan), ValueError, "rate"),
    ("rate-zero", SSMS + ("cfc",), lambda m: m(x_(), rate=0.0), ValueError, "rate"),
    ("rate-negative", SSMS + ("cfc",), lambda m: m(x_(), rate=-2.0), ValueError, "rate"),
    ("rate-string", NAMES, lambda m: m(x_(), rate="2"), TypeError, "rate"),
    ("rate-bool", NAMES, lambda m: m(x_(), rate=True), TypeError, "rate"),
    ("rate-not-1-rnn", ("lowrank-gru", "lowrank-lstm"), lambda m: m(x_(), rate=2.0), ValueError, "rate"),
    ("lengths-shape", NAMES, lambda m: m(x_(), lengths=torch.tensor([L])), ValueError, "lengths"),
    ("lengths-2d", NAMES, lambda m: m(x_(), lengths=torch.tensor([[L], [L]])), ValueError, "lengths"),
    ("lengths-float", NAMES, lambda m: m(x_(), lengths=torch.tensor([2.0, 3.0])), TypeError, "lengths"),
    ("lengths-list", NAMES, lambda m: m(x_(), lengths=[2, 3]), TypeError, "lengths"),
    ("lengths-too-long", NAMES, lambda m: m(x_(), lengths=torch.tensor([L + 1, 2])), ValueError, "lengths"),
    ("lengths-negative", NAMES, lambda m: m(x_(), lengths=torch.tensor([-1, 2])), ValueError, "lengths"),
    ("default-state-2.5", NAMES, lambda m: m.default_state(2.5), TypeError, "batch_size"),
    ("default-state-negative", NAMES, lambda m: m.default_state(-1), ValueError, "batch_size"),
    ("default-state-int-dtype", NAMES, lambda m: m.default_state(B, dtype=torch.int32), TypeError, "dtype"),
    ("step-rank", NAMES, lambda m: m.step(x_(B, 1, H), m.default_state(B)), ValueError, "x_t"),
    ("step-width", NAMES, lambda m: m.step(x_(B, H + 1), m.default_state(B)), ValueError, "x_t"),
    ("step-float64", NAMES, lambda m: m.step(x_(B, H, dtype=torch.float64), m.default_state(B)), TypeError, "x_t"),
    ("step-state-shape", NAMES, lambda m: m.step(x_(B, H), wrong_state(m)), ValueError, "state"),
    ("step-state-batch", NAMES, lambda m: m.step(x_(B + 1, H), m.default_state(B)), ValueError, "state"),
    ("step-state-dtype", NAMES, lambda m: m.step(x_(B, H), retyped_state(m)), TypeError, "state"),
    ("step-rate-inf", SSMS + ("cfc",), lambda m: m.step(x_(B, H), m.default_state(B), rate=math.inf), ValueError,
     "rate"),
    ("step-rate-not-1-rnn", ("lowrank-gru", "lowrank-lstm"),
     lambda m: m.step(x_(B, H), m.default_state(B), rate=0.5), ValueError, "rate"),
    ("step-bidirectional", SSMS, lambda m: _bi(m).step(x_(B, H), m.default_state(B)), ValueError, "bidirectional"),
]


def _checked(m, *args, **kw):
    old = checks_enabled()
    set_checks(finite=True)
    try:
        return m(*args, **kw)
    finally:
        set_checks(**old)


def _bi(m):
    return make(CLASS_NAMES[type(m).__name__], bidirectional=True)


TABLE = [pytest.param(name, call, exc, arg, id=f"{case}-{name}") for case, names, call, exc, arg in CASES
         for name in names]


@pytest.mark.parametrize("name,call,exc,arg", TABLE)
def test_bad_input(name, call, exc, arg):
    layer = make(name)
    if exc is None:
        call(layer)
        return
    with pytest.raises(exc) as info:
        call(layer)
    msg = str(info.value)
    assert re.search(rf"\b{re.escape(arg)}\b", msg), f"message does not name {arg!r}: {msg}"
    assert "got" in msg, f"message does not say what was received: {msg}"


@pytest.mark.parametrize("name", NAMES)
def test_empty_batch_gives_empty_outputs(name):
    layer = make(name)
    y, s = layer(x_(0, L, H))
    assert y.shape == (0, L, H)
    ref = layer.default_state(0)
    for a, b in zip(s if isinstance(s, tuple) else [s], ref if isinstance(ref, tuple) else [ref]):
        assert a.shape == b.shape and a.dtype == b.dtype
    y_t, s_t = layer.step(x_(0, H), layer.default_state(0))
    assert y_t.shape == (0, H)
    y, _ = layer(x_(0, L, H), lengths=torch.zeros(0, dtype=torch.long))
    assert y.shape == (0, L, H)


@pytest.mark.parametrize("name", NAMES)
def test_default_state_and_precision_follow_the_layer(name):
    torch.manual_seed(0)
    layer = build(name, d_model=H, **SMALL[name]).double()
    x = x_(dtype=torch.float64)
    y, s = layer(x, layer.default_state(B))
    assert y.dtype == torch.float64
    assert all(t.dtype in (torch.float64, torch.complex128) for t in (s if isinstance(s, tuple) else (s,)))
    with torch.autocast("cpu", dtype=torch.bfloat16):  # under autocast, low-precision input is the convention
        y, _ = make(name)(x_(dtype=torch.bfloat16))
    assert torch.isfinite(y.float()).all()


def test_env_var_switches_finite_checks():
    from ssm.layers.checks import finite_from_env

    assert all(finite_from_env({"SSM_CHECK_FINITE": v}) for v in ("1", "true", "YES", " on "))
    assert not any(finite_from_env(env) for env in ({}, {"SSM_CHECK_FINITE": "0"}, {"SSM_CHECK_FINITE": "off"}))
    assert checks_enabled()["finite"] is False  # the default: no device sync
