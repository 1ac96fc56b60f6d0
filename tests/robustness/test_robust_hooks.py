"""The per-layer Fourier noise (PTD protocol): every sequence layer's input gets level a cos(omega k dt_h)."""
import math

import pytest
import torch

import ssm
from ssm.models import SequenceModel
from ssm.robustness import LayerFourierNoise, channel_steps, sequence_layers

LAYERS = [("s4d", {"d_state": 8}), ("s4", {"d_state": 8}), ("dss", {"d_state": 8}), ("s4-ptd", {"d_state": 8}),
          ("s5", {"d_state": 8, "blocks": 2}), ("s5-ptd", {"d_state": 8, "blocks": 2}),
          ("lowrank-gru", {}), ("lowrank-lstm", {}), ("cfc", {})]


def _model(name, kw, n_layers=2, H=6):
    torch.manual_seed(0)
    return SequenceModel(d_input=2, d_output=3, d_model=H, n_layers=n_layers, layer=name, layer_kwargs=kw).double()


def _record(model):
    """Each layer's input as it arrives (before the noise hooks) and as the layer sees it (after them)."""
    seen = {"before": [], "after": []}
    handles = []
    for _, layer in sequence_layers(model):
        handles.append(layer.register_forward_pre_hook(lambda m, a: seen["before"].append(a[0].detach().clone())))
        handles.append(layer.register_forward_hook(lambda m, a, o: seen["after"].append(a[0].detach().clone())))
    return seen, handles


@pytest.mark.parametrize("name,kw", LAYERS, ids=[n for n, _ in LAYERS])
def test_hook_adds_the_layer_fourier_mode_to_every_layer_input(name, kw):
    model = _model(name, kw)
    seen, handles = _record(model)  # registered first: "before" runs ahead of the noise hook
    omega, level, L = 3.0, 0.4, 24
    x = torch.randn(5, L, 2, dtype=torch.float64)
    with LayerFourierNoise(model, omega, level, torch.Generator().manual_seed(0)) as noise:
        model(x)
    assert noise.calls == 2
    layers = [l for _, l in sequence_layers(model)]
    for layer, before, after in zip(layers, seen["before"], seen["after"]):
        d = after - before
        dt = channel_steps(layer, before.shape[-1])
        wave = torch.cos(omega * torch.arange(L, dtype=torch.float64).unsqueeze(-1) * dt)  # (L, H)
        a = d[:, :1] / level  # amplitude per (sample, channel), read at k = 0
        assert d.abs().max() > 1e-3 and a.min() >= 0 and a.max() < 1
        torch.testing.assert_close(d, level * a * wave)
    for h in handles:
        h.remove()
    seen, handles = _record(model)
    model(x)  # hooks removed on exit: inputs arrive untouched
    assert all(torch.equal(b, a) for b, a in zip(seen["before"], seen["after"]))


def test_step_sizes_follow_the_layer_rate_and_s5_uses_the_geometric_mean():
    layer = ssm.layers.build("s4d", d_model=4, d_state=8).double()
    seen, _ = _record(layer)
    x = torch.zeros(1, 40, 4, dtype=torch.float64)
    omega, level = 2.0, 1.0
    with LayerFourierNoise(layer, omega, level, torch.Generator().manual_seed(0)):
        layer(x, rate=2.0)
    d = seen["after"][0] - seen["before"][0]
    dt = layer.step_sizes(2.0).detach()
    wave = torch.cos(omega * torch.arange(40, dtype=torch.float64).unsqueeze(-1) * dt)
    torch.testing.assert_close(d, d[:, :1] * wave)
    s5 = ssm.layers.build("s5", d_model=4, d_state=8, blocks=2)
    steps = channel_steps(s5, 4)
    assert steps.shape == (4,) and torch.allclose(steps, s5.step_sizes().detach().double().log().mean().exp())
    assert torch.equal(channel_steps(ssm.layers.build("lowrank-gru", d_model=4), 4), torch.ones(4, dtype=torch.float64))


def test_noise_is_at_the_intended_frequency_of_each_channel():
    """FFT of the added noise per channel peaks at omega dt_h (an exact bin when dt_h L omega / 2 pi is whole)."""
    layer = ssm.layers.build("s4d", d_model=3, d_state=8, dt_min=0.01, dt_max=0.04).double()
    L = 256
    dt = layer.step_sizes().detach()
    omega = 2 * math.pi * 10 / (L * float(dt[0]))
    seen, _ = _record(layer)
    with LayerFourierNoise(layer, omega, 0.5, torch.Generator().manual_seed(0)):
        layer(torch.zeros(2, L, 3, dtype=torch.float64))
    d = seen["after"][0] - seen["before"][0]
    peak = (torch.fft.rfft(d, dim=1).abs() ** 2).argmax(dim=1)  # (B, H)
    expected = torch.round(omega * dt * L / (2 * math.pi)).long()
    assert int(expected[0]) == 10 and ((peak - expected).abs() <= 1).all()


def test_a_model_without_sequence_layers_is_rejected():
    with pytest.raises(ValueError, match="no sequence layer"):
        LayerFourierNoise(torch.nn.Linear(2, 2), 1.0, 0.1)
    with pytest.raises(ValueError, match="omega"):
        LayerFourierNoise(_model("s4d", {"d_state": 4}), float("nan"), 0.1)
