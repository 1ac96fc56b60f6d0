"""fftconv against a direct (quadratic) convolution: causal, bidirectional, skip term D."""
import pytest
import torch

from ssm.kernels import fftconv


def direct(u, k, D=None, anti=None):
    """y_l = sum_{m<=l} k_m u_{l-m} (+ sum_m anti_m u_{l+1+m}) + D u_l, by loops."""
    B, H, L = u.shape
    y = torch.zeros_like(u)
    for l in range(L):
        for m in range(l + 1):
            y[..., l] += k[..., m] * u[..., l - m]
        if anti is not None:
            for m in range(L - 1 - l):
                y[..., l] += anti[..., m] * u[..., l + 1 + m]
    return y + (u * D.unsqueeze(-1) if D is not None else 0)


def test_causal_with_D():
    u, k, D = torch.randn(2, 3, 17, dtype=torch.float64), torch.randn(3, 17, dtype=torch.float64), torch.randn(3, dtype=torch.float64)
    assert torch.allclose(fftconv(u, k, D), direct(u, k, D), atol=1e-10)


def test_bidirectional():
    u, k = torch.randn(2, 3, 13, dtype=torch.float64), torch.randn(2, 3, 13, dtype=torch.float64)
    assert torch.allclose(fftconv(u, k, bidirectional=True), direct(u, k[0], anti=k[1]), atol=1e-10)


def test_causality():
    u, k = torch.randn(1, 2, 32), torch.randn(2, 32)
    u2 = u.clone()
    u2[..., 20:] += 1.0
    assert torch.allclose(fftconv(u, k)[..., :20], fftconv(u2, k)[..., :20], atol=1e-5)


def test_bad_kernel_shapes():
    with pytest.raises(ValueError, match="k must have shape"):
        fftconv(torch.randn(1, 2, 8), torch.randn(2, 2, 8))
    with pytest.raises(ValueError, match="length >= L = 8"):
        fftconv(torch.randn(1, 2, 8), torch.randn(2, 4))


@pytest.mark.parametrize("bidirectional", [False, True])
def test_matches_the_direct_reference(bidirectional):
    """The FFT path equals the op's O(L^2) conv1d reference, with a kernel shared by every channel (H = 1)."""
    from ssm.kernels.ops.fftconv import fftconv_ref

    u = torch.randn(2, 3, 13, dtype=torch.float64)
    k = torch.randn(*((2, 1, 20) if bidirectional else (1, 20)), dtype=torch.float64)
    D = torch.randn(3, dtype=torch.float64)
    assert torch.allclose(fftconv(u, k, D, bidirectional), fftconv_ref(u, k, D, bidirectional), atol=1e-10)
    direct_k = k[0, 0, :13] if bidirectional else k[0, :13]
    anti = k[1, 0, :13] if bidirectional else None
    assert torch.allclose(fftconv_ref(u, k, D, bidirectional), direct(u, direct_k, D, anti), atol=1e-10)


def test_longer_kernels_are_truncated_not_wrapped():
    u, k = torch.randn(2, 3, 9, dtype=torch.float64), torch.randn(3, 30, dtype=torch.float64)
    assert torch.allclose(fftconv(u, k), direct(u, k[:, :9]), atol=1e-10)
    kb = torch.randn(2, 3, 30, dtype=torch.float64)
    assert torch.allclose(fftconv(u, kb, bidirectional=True), direct(u, kb[0, :, :9], anti=kb[1, :, :9]), atol=1e-10)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_gradcheck(bidirectional):
    u = torch.randn(2, 3, 11, dtype=torch.float64, requires_grad=True)
    k = torch.randn(*((2, 3, 11) if bidirectional else (3, 11)), dtype=torch.float64, requires_grad=True)
    D = torch.randn(3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda u, k, D: fftconv(u, k, D, bidirectional), (u, k, D), fast_mode=True)
