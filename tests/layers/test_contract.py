"""The layer contract (forward/step/state, shapes, dtypes, gradients), checked for every registry name."""
import pytest
import torch

from layer_helpers import run_steps
from ssm.layers import REGISTRY, SequenceLayer, build, set_checks

# small sizes so that every registry layer runs in well under a second
SMALL = {"s4": {"d_state": 8}, "s4d": {"d_state": 8}, "dss": {"d_state": 8}, "s4-ptd": {"d_state": 8},
         "s5": {"d_state": 8, "blocks": 2}, "s5-ptd": {"d_state": 8, "blocks": 2}}
NAMES = sorted(REGISTRY)
H, L, B = 6, 17, 3


def make(name, **kw):
    layer = build(name, d_model=H, **{**SMALL.get(name, {}), **kw}).double().eval()
    assert isinstance(layer, SequenceLayer)
    return layer


@pytest.mark.parametrize("name", NAMES)
def test_shapes_and_dtypes(name):
    layer = make(name)
    for dtype in (torch.float64, torch.float32):
        x = torch.randn(B, L, H, dtype=dtype)
        y, _ = layer.to(dtype)(x)
        assert y.shape == (B, L, H) and y.dtype == dtype and torch.isfinite(y).all()


@pytest.mark.parametrize("name", NAMES)
def test_state_continuation_and_step_agree_with_forward(name):
    layer = make(name)
    x = torch.randn(B, L, H, dtype=torch.float64)
    y, s = layer(x)
    t = 7
    y1, s1 = layer(x[:, :t])
    y2, s2 = layer(x[:, t:], s1)
    torch.testing.assert_close(torch.cat([y1, y2], 1), y, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(run_steps(layer, x)[0], y, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", NAMES)
def test_bad_inputs_raise_value_error_naming_the_argument(name):
    layer = make(name)
    with pytest.raises(ValueError, match="x"):
        layer(torch.randn(B, L, dtype=torch.float64))  # missing channel dim
    with pytest.raises(ValueError, match="d_model"):
        layer(torch.randn(B, L, H + 1, dtype=torch.float64))
    bad = torch.randn(B, L, H, dtype=torch.float64)
    bad[0, 3, 1] = float("nan")
    set_checks(finite=True)  # value checks are opt-in (they sync the device)
    try:
        with pytest.raises(ValueError, match="finite"):
            layer(bad)
    finally:
        set_checks(finite=False)
    with pytest.raises(ValueError):
        layer.step(torch.randn(B, H + 2, dtype=torch.float64), layer.default_state(B, dtype=torch.float64))


@pytest.mark.parametrize("name", NAMES)
def test_gradients_reach_every_trainable_parameter(name):
    layer = make(name).train()
    x = torch.randn(B, L, H, dtype=torch.float64, requires_grad=True)
    y, _ = layer(x)
    y.square().sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    missing = [n for n, p in layer.named_parameters() if p.requires_grad and (p.grad is None or not torch.isfinite(p.grad).all())]
    assert not missing, f"no finite gradient for {missing}"


def test_unknown_layer_name():
    with pytest.raises(ValueError, match="layer name must be one of"):
        build("s6", d_model=4)
