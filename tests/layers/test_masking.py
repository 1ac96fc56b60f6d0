"""Per-example lengths: each example of a padded batch gets exactly what it gets alone at its own length.

Padding is filled with large garbage; the output there must be zero, no direction may see it, and the returned
state (the state at the length) must continue the sequence in step mode as the unpadded state does."""
from __future__ import annotations

import pytest
import torch

from layer_helpers import run_steps
from ssm.layers import build

SMALL = {"s4": {"d_state": 6}, "s4d": {"d_state": 6}, "dss": {"d_state": 6}, "s4-ptd": {"d_state": 5},
         "s5": {"d_state": 8, "blocks": 2}, "s5-ptd": {"d_state": 8, "blocks": 2},
         "lowrank-gru": {"rank": 2, "num_layers": 2}, "lowrank-lstm": {"rank": 2, "num_layers": 2},
         "cfc": {"units": 6, "backbone_units": 8, "mixed_memory": True}}
SSMS = ["s4", "s4d", "dss", "s4-ptd", "s5", "s5-ptd"]
CASES = [(n, {}) for n in SMALL] + [("s4", {"discretization": "zoh"}), ("s4d", {"discretization": "bilinear"})]
IDS = [n + ("-" + "-".join(map(str, kw.values())) if kw else "") for n, kw in CASES]
H, L = 4, 13
LENGTHS = [13, 8, 1, 0]


def make(name, **kw):
    torch.manual_seed(0)
    return build(name, d_model=H, **{**SMALL[name], **kw}).double().eval()


def padded(x):
    noisy = x.clone()
    for b, n in enumerate(LENGTHS):
        noisy[b, n:] = 1e3 * torch.randn(L - n, H, dtype=x.dtype)
    return noisy, torch.tensor(LENGTHS)


def states(s):
    return s if isinstance(s, tuple) else (s,)


def batch_index(layer, t, b):
    """Example b of a state tensor (batch is dim 1 for the stacked RNN states, else dim 0)."""
    return t[:, b:b + 1] if t.dim() == 3 and name_of(layer) in ("lowrank-gru", "lowrank-lstm") else t[b:b + 1]


def name_of(layer):
    return {"LowRankGRU": "lowrank-gru", "LowRankLSTM": "lowrank-lstm"}.get(type(layer).__name__, "")


@pytest.mark.parametrize("name,kw", CASES, ids=IDS)
@pytest.mark.parametrize("with_state", [False, True])
def test_padded_batch_equals_each_example_alone(name, kw, with_state):
    layer = make(name, **kw)
    x = torch.randn(len(LENGTHS), L, H, dtype=torch.float64)
    noisy, lengths = padded(x)
    s0 = None
    if with_state:  # a nonzero initial state, from a previous chunk
        _, s0 = layer(torch.randn(len(LENGTHS), 5, H, dtype=torch.float64))
    with torch.no_grad():
        y, s = layer(noisy, s0, lengths=lengths)
        tail = torch.randn(len(LENGTHS), 3, H, dtype=torch.float64)
        y_next, _ = run_steps(layer, tail, s)
        for b, n in enumerate(LENGTHS):
            sb = None if s0 is None else type(s0)(batch_index(layer, t, b) for t in s0) if isinstance(s0, tuple) \
                else batch_index(layer, s0, b)
            assert torch.all(y[b, n:] == 0), "padded outputs must be zero"
            if n == 0:
                alone_state = sb if sb is not None else layer.default_state(1, dtype=torch.float64)
            else:
                y_alone, alone_state = layer(x[b:b + 1, :n], sb)
                torch.testing.assert_close(y[b:b + 1, :n], y_alone, rtol=1e-9, atol=1e-9)
            for got, ref in zip(states(s), states(alone_state)):
                torch.testing.assert_close(batch_index(layer, got, b), ref, rtol=1e-9, atol=1e-9)
            y_next_alone, _ = run_steps(layer, tail[b:b + 1], alone_state)
            torch.testing.assert_close(y_next[b:b + 1], y_next_alone, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", SSMS)
def test_bidirectional_sees_no_padding(name):
    layer = make(name, bidirectional=True)
    x = torch.randn(len(LENGTHS), L, H, dtype=torch.float64)
    noisy, lengths = padded(x)
    with torch.no_grad():
        y, s = layer(noisy, lengths=lengths)
        assert s is None
        for b, n in enumerate(LENGTHS):
            assert torch.all(y[b, n:] == 0)
            if n:
                torch.testing.assert_close(y[b:b + 1, :n], layer(x[b:b + 1, :n])[0], rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", ["s4d", "s5", "cfc"])
def test_lengths_equal_to_L_change_nothing(name):
    layer = make(name)
    x = torch.randn(3, L, H, dtype=torch.float64)
    y, s = layer(x)
    y2, s2 = layer(x, lengths=torch.full((3,), L))
    torch.testing.assert_close(y2, y, rtol=1e-12, atol=1e-12)
    for a, b in zip(states(s2), states(s)):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
