"""Input perturbations: amplitude bounds, frequency content (FFT), shift/warp geometry, argument checks."""
import math

import pytest
import torch

from ssm.robustness import fourier_mode, gaussian, time_shift, time_warp
from ssm.robustness.noise import check_level, cosine_mode


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_fourier_mode_amplitude_is_level_times_uniform_per_sample_and_channel():
    B, L, C, level = 400, 64, 3, 0.3
    x = torch.randn(B, L, C, dtype=torch.float64)
    d = fourier_mode(x, 2 * math.pi * 5 / L, level, generator=_gen()) - x
    a = d[:, 0, :] / level  # cos(0) = 1: the amplitude of each (sample, channel)
    assert a.min() >= 0 and a.max() < 1
    assert d.abs().max() <= level + 1e-12
    torch.testing.assert_close(d, level * a.unsqueeze(1) * cosine_mode(L, 2 * math.pi * 5 / L, 1.0, dtype=x.dtype))
    # U[0, 1): mean 1/2, variance 1/12, and no two (sample, channel) pairs share an amplitude
    assert abs(a.mean() - 0.5) < 0.03 and abs(a.var() - 1 / 12) < 0.01
    assert a.unique().numel() == B * C


@pytest.mark.parametrize("m", [1, 7, 40])
def test_fourier_mode_energy_sits_in_the_intended_fft_bin(m):
    L = 128
    x = torch.zeros(4, L, 2, dtype=torch.float64)
    d = fourier_mode(x, 2 * math.pi * m / L, 1.0, generator=_gen(1))
    power = torch.fft.rfft(d, dim=1).abs() ** 2  # (B, F, C)
    assert (power.argmax(dim=1) == m).all()
    assert (power[:, m] / power.sum(1) > 1 - 1e-10).all()


def test_fourier_mode_uses_each_channels_own_step():
    L, m = 256, 8
    dt = torch.tensor([1.0, 2.0, 0.5], dtype=torch.float64)  # channel c oscillates at bin m dt_c
    d = fourier_mode(torch.zeros(2, L, 3, dtype=torch.float64), 2 * math.pi * m / L, 0.5, dt=dt, generator=_gen(2))
    peaks = (torch.fft.rfft(d, dim=1).abs() ** 2).argmax(dim=1)
    assert (peaks == torch.tensor([8, 16, 4])).all()


def test_gaussian_noise_has_the_level_as_standard_deviation():
    x = torch.zeros(64, 100, 4)
    d = gaussian(x, 0.2, generator=_gen(3))
    assert abs(float(d.std()) - 0.2) < 0.005 and abs(float(d.mean())) < 0.005


def test_level_zero_is_the_identity_for_every_perturbation():
    x = torch.randn(2, 10, 3)
    for out in (fourier_mode(x, 1.0, 0.0), gaussian(x, 0.0), time_shift(x, 0.0), time_warp(x, 0.0)):
        assert torch.equal(out, x)


def test_time_shift_delays_by_round_level_L_steps():
    x = torch.arange(1, 21, dtype=torch.float32).reshape(1, 20, 1)
    y = time_shift(x, 0.25)
    assert torch.equal(y[0, :5, 0], torch.zeros(5)) and torch.equal(y[0, 5:, 0], x[0, :15, 0])
    assert torch.equal(time_shift(x, 1.0), torch.zeros_like(x))


def test_time_warp_is_a_monotone_reparametrisation_keeping_the_ends():
    B, L, level = 200, 50, 0.5
    ramp = torch.arange(L, dtype=torch.float64).reshape(1, L, 1).expand(B, L, 1).contiguous()
    tau = time_warp(ramp, level, generator=_gen(4))[..., 0]  # warping a ramp returns the read times themselves
    assert (tau[:, 0] == 0).all() and torch.allclose(tau[:, -1], torch.full((B,), L - 1.0, dtype=tau.dtype))
    assert (tau.diff(dim=1) >= 0).all()
    g = torch.log(tau[:, L // 2] / (L - 1)) / math.log((L // 2) / (L - 1))  # exponent g of each sample
    assert g.min() >= math.exp(-level) - 1e-9 and g.max() <= math.exp(level) + 1e-9
    assert g.max() - g.min() > 0.5  # drawn per sample, spread over the range


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf"), "0.1", True])
def test_bad_levels_are_rejected_naming_the_argument(bad):
    with pytest.raises(ValueError, match="level"):
        check_level(bad)
    with pytest.raises(ValueError, match="level"):
        gaussian(torch.zeros(1, 4, 1), bad)


def test_shift_above_one_and_bad_inputs_are_rejected():
    with pytest.raises(ValueError, match="<= 1"):
        time_shift(torch.zeros(1, 4, 1), 1.5)
    with pytest.raises(ValueError, match="x must be"):
        fourier_mode(torch.zeros(4, 1), 1.0, 0.1)
