"""Every registry layer compiles with torch.compile(fullgraph=True) on the CPU and gives the eager result.

The SSM layers run the torch kernel backend here (the compiled-extension ops are not traceable in this branch).
The default test captures the whole graph (dynamo, backend="eager"); the slow one also lowers it with inductor
and compares gradients."""
from __future__ import annotations

import pytest
import torch

from ssm.layers import REGISTRY, build

SMALL = {"s4": {"d_state": 4}, "s4d": {"d_state": 4}, "dss": {"d_state": 4}, "s4-ptd": {"d_state": 4},
         "s5": {"d_state": 4, "blocks": 2}, "s5-ptd": {"d_state": 4, "blocks": 2},
         "lowrank-gru": {"rank": 2}, "lowrank-lstm": {"rank": 2}, "cfc": {"units": 4, "backbone_units": 4}}
SSMS = ("s4", "s4d", "dss", "s4-ptd", "s5", "s5-ptd")


def make(name):
    torch.manual_seed(0)
    return build(name, d_model=4, **SMALL[name], **({"backend": "torch"} if name in SSMS else {})).eval()


def flat(out):
    y, s = out
    return [y] + (list(s) if isinstance(s, tuple) else [] if s is None else [s])


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_fullgraph_capture_gives_the_eager_result(name):
    layer = make(name)
    x, lengths = torch.randn(2, 9, 4), torch.tensor([9, 5])
    state = layer(x[:, :3])[1]
    eager = flat(layer(x, state, lengths=lengths))  # first eager: kernel backends are probed outside the graph
    compiled = torch.compile(layer, fullgraph=True, backend="eager")
    for a, b in zip(flat(compiled(x, state, lengths=lengths)), eager):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_inductor_forward_and_backward_equal_eager(name):
    layer = make(name).train()
    x = torch.randn(2, 9, 4, requires_grad=True)
    y0 = layer(x, lengths=torch.tensor([9, 5]))[0]
    g0 = torch.autograd.grad(y0.square().sum(), [x] + list(layer.parameters()), allow_unused=True)
    compiled = torch.compile(layer, fullgraph=True)
    y = compiled(x, lengths=torch.tensor([9, 5]))[0]
    g = torch.autograd.grad(y.square().sum(), [x] + list(layer.parameters()), allow_unused=True)
    torch.testing.assert_close(y, y0, rtol=1e-5, atol=1e-5)
    for a, b in zip(g, g0):
        if b is not None:
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
