"""Transfer-function analysis: the LegS reference, the diagonal-init spike near N^2/pi, spikes found from layers."""
import math

import pytest
import torch

import ssm
from ssm import hippo
from ssm.models import SequenceModel
from ssm.robustness import diagonal_spike, find_spike, layer_response, envelope, legs_reference, local_excess
from ssm.robustness.transfer import NoTransferFunction


def test_legs_reference_is_the_resolvent_of_the_normalised_legs_system():
    N = 8
    A, B = hippo.transition("legs", N)
    b = (B / B.norm()).to(torch.complex128)
    w = torch.tensor([0.1, 3.0, 40.0], dtype=torch.float64)
    direct = torch.stack([b @ torch.linalg.solve(1j * om * torch.eye(N, dtype=torch.complex128) - A.to(torch.complex128), b)
                          for om in w])
    torch.testing.assert_close(legs_reference(N, w), direct)


@pytest.mark.parametrize("N", [8, 16, 32])
def test_diagonal_init_departs_from_legs_near_N_squared_over_pi(N):
    """The PTD paper's observation: a spike of height ~0.8 near s = N^2/pi, where |G_H| itself is about 0.03 or less."""
    omega, height = diagonal_spike(N)
    assert omega == pytest.approx(N * N / math.pi, rel=0.03)
    assert 0.7 < height < 0.9
    assert legs_reference(N, torch.tensor([omega], dtype=torch.float64)).abs().item() < 0.035


def _model(layer, **kw):
    torch.manual_seed(0)
    return SequenceModel(d_input=1, d_output=2, d_model=4, n_layers=2, layer=layer, layer_kwargs=kw)


def test_spike_of_an_s4d_legs_model_is_found_from_its_own_transfer_functions():
    model = _model("s4d", d_state=16, init="legs")
    spike = find_spike(model, "legs")
    assert spike.omega == pytest.approx(diagonal_spike(16)[0], rel=0.01)
    assert set(spike.per_layer) == {"blocks.0.layer", "blocks.1.layer"}
    peak = find_spike(model, "peak")  # every resonance of |G| sits at a pole Im(lambda) of the diagonal init
    lam = hippo.diag_init("legs", 16)[0].imag
    assert (lam - peak.omega).abs().min() < 0.02 * peak.omega


def test_step_domain_spike_is_a_per_step_frequency():
    model = _model("s4d", d_state=8)
    theta = find_spike(model, "legs", "step").omega
    assert 0 < theta <= math.pi


def test_layer_response_matches_the_layers_transfer_function():
    layer = ssm.layers.build("s4-ptd", d_model=3, d_state=8)
    w = torch.tensor([0.5, 5.0], dtype=torch.float64)
    G = layer_response(layer, w)
    assert G.shape == (3, 2) and G.dtype == torch.complex128
    with torch.no_grad():
        torch.testing.assert_close(G, layer.transfer_function(1j * w).to(torch.complex128))


def test_local_excess_flags_a_narrow_resonance_and_ignores_a_change_of_level():
    w = torch.logspace(-1, 3, 2001, dtype=torch.float64)
    lw = torch.log10(w)
    level = 3.0 * torch.sigmoid(4 * (lw - 1))  # a broad step of 3 (log units) over about a decade
    bump = 2.0 * torch.exp(-((lw - math.log10(250.0)) ** 2) / (2 * 0.003 ** 2))  # a resonance at w = 250
    ex = local_excess((level + bump).unsqueeze(0), w)[0]
    assert float(w[ex.argmax()]) == pytest.approx(250.0, rel=0.005)
    assert ex.max() > 1.5 and local_excess(level.unsqueeze(0), w).abs().max() < 0.1


def test_envelope_fills_the_notches_of_the_reference():
    """|G_H| of LegS has deep notches (zeros near the imaginary axis); a layer's gain there is no spike."""
    w = torch.logspace(-2, math.log10(10 * 32 ** 2), 2000, dtype=torch.float64)
    mag = legs_reference(32, w).abs()
    env = envelope(mag, w)
    assert (env >= mag).all()
    assert (mag.log() - env.log()).min() < -3  # a notch more than e^3 deep ...
    assert (env.log().diff().abs() < 0.05).all()  # ... gone from the envelope, which varies smoothly


def test_rnn_models_have_no_spike_and_say_so():
    with pytest.raises(NoTransferFunction, match="LowRankGRU.*--frequency"):
        find_spike(_model("lowrank-gru"))
    with pytest.raises(ValueError, match="criterion"):
        find_spike(_model("s4d", d_state=4), "max")
