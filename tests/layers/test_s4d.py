"""S4D, DSS and S4-PTD against oracles: a naive recurrence on matrices discretized here from the
continuous parameters, explicit softmax / dense matrix exponentials, and autograd checks."""
from __future__ import annotations

import math

import pytest
import torch

from layer_helpers import rel, run_steps
from ssm import hippo
from ssm.layers import build
from ssm.layers.param import real_part

H, N, L = 3, 8, 37

CONFIGS = [
    ("s4d", dict(init="legs")),
    ("s4d", dict(init="inv", discretization="bilinear")),
    ("s4d", dict(init="lin", real_transform="relu", fold_B=True)),
    ("s4d", dict(init="real", real_transform="softplus", dt_transform="softplus", discretization="bilinear")),
    ("s4d", dict(init="legs", real_transform="none")),
    ("dss", dict(variant="exp")),
    ("dss", dict(variant="softmax", l_max=40)),
    ("s4-ptd", dict()),
    ("s4-ptd", dict(discretization="bilinear")),
]
IDS = [f"{n}-{'-'.join(str(v) for v in kw.values())}" for n, kw in CONFIGS]


def make(name, dtype=torch.float64, seed=0, **kw):
    torch.manual_seed(seed)
    kw = {"d_state": N, "output": "none", "activation": None, **kw}
    return build(name, d_model=H, **kw).to(dtype)


def continuous(layer, rate):
    """Lambda (H, M), B (H, M), W (C, H, M), dt (H, 1) read from the parameters."""
    lam = torch.complex(real_part(layer.A_real, layer.real_transform), layer.A_imag).expand(H, -1)
    dt = layer.dt(rate)
    B = torch.ones_like(lam) if layer.fold_B else torch.view_as_complex(layer.B).expand(H, -1)
    return lam, B, torch.view_as_complex(layer.C), dt


def oracle_matrices(layer, rate):
    """dA, dB, dC (C, H, M) discretized here, independently of the layer's code."""
    lam, B, W, dt = continuous(layer, rate)
    kind = getattr(layer, "discretization", "zoh")
    if kind == "zoh":
        dA = torch.exp(dt * lam)
        dB = B * (dA - 1) / lam
    else:
        dA = (1 + dt * lam / 2) / (1 - dt * lam / 2)
        dB = B * dt / (1 - dt * lam / 2)
    if getattr(layer, "variant", None) == "softmax":  # W / (Lambda sum_{l<l_max} exp(l dt Lambda))
        Ln = layer.l_max / rate
        assert float(Ln).is_integer()
        total = torch.stack([torch.exp(l * dt * lam) for l in range(int(Ln))]).sum(0)
        dB = 1 / (lam * total)
    if hasattr(layer, "variant"):  # DSS keeps dB = 1 and folds the rest into the output weights
        return dA, torch.ones_like(dB), W * dB
    return dA, dB, W


def naive(layer, x, rate=1.0, state=None):
    """Unrolled x_l = dA x_{l-1} + dB u_l, y_l = s Re(dC x_l) + D u_l (two-sided if bidirectional)."""
    dA, dB, dC = oracle_matrices(layer, rate)
    s = 2.0 if layer.conj else 1.0
    Bsz, T, _ = x.shape
    h = torch.zeros(Bsz, H, dA.shape[-1], dtype=dA.dtype) if state is None else state.clone()
    ys = []
    for t in range(T):
        h = dA * h + dB * x[:, t, :, None]
        ys.append(s * (dC[0] * h).sum(-1).real + layer.D * x[:, t])
    y = torch.stack(ys, 1)
    if layer.bidirectional:  # z_l = sum_{m>l} dA^(m-l-1) dB u_m
        z = torch.zeros_like(h)
        back = [None] * T
        for t in range(T - 1, -1, -1):
            back[t] = s * (dC[1] * z).sum(-1).real
            z = dA * z + dB * x[:, t, :, None]
        y = y + torch.stack(back, 1)
    return y, h


@pytest.mark.parametrize("name,kw", CONFIGS, ids=IDS)
@pytest.mark.parametrize("rate", [1.0, 0.5])
def test_conv_equals_step_equals_naive_fp64(name, kw, rate):
    layer = make(name, **kw)
    x = torch.randn(2, L, H, dtype=torch.float64)
    with torch.no_grad():
        y, s = layer(x, rate=rate)
        y_step, s_step = run_steps(layer, x, rate=rate)
        y_ref, s_ref = naive(layer, x, rate)
    assert rel(y, y_ref) < 1e-10 and rel(y_step, y_ref) < 1e-10
    assert rel(s, s_ref) < 1e-10 and rel(s_step, s_ref) < 1e-10


@pytest.mark.parametrize("name,kw", CONFIGS, ids=IDS)
def test_conv_equals_naive_fp32_and_bidirectional(name, kw):
    layer = make(name, **kw)
    x = torch.randn(2, L, H, dtype=torch.float64)
    with torch.no_grad():
        y_ref, _ = naive(layer, x)
        y32, _ = layer.float()(x.float())
    assert rel(y32.double(), y_ref) < 1e-4
    bi = make(name, bidirectional=True, **kw)
    with torch.no_grad():
        assert rel(bi(x, rate=2.0)[0], naive(bi, x, 2.0)[0]) < 1e-10


@pytest.mark.parametrize("name,kw", CONFIGS[::2], ids=IDS[::2])
def test_state_passing_across_chunks(name, kw):
    layer = make(name, **kw, output="glu", activation="gelu")
    x = torch.randn(2, L, H, dtype=torch.float64)
    with torch.no_grad():
        y, s = layer(x)
        y1, s1 = layer(x[:, :11])
        y2, s2 = layer(x[:, 11:30], s1)
        y3, s3 = layer(x[:, 30:], s2)
        ys, _ = run_steps(layer, x)
    assert rel(torch.cat([y1, y2, y3], 1), y) < 1e-10 and rel(s3, s) < 1e-10
    assert rel(ys, y) < 1e-10
    assert layer(x, return_state=False)[1] is None


def test_dss_softmax_is_the_paper_kernel_at_l_max():
    """K[l] = 2 Re sum_n W_n / Lambda_n softmax_l(l dt Lambda_n) over l < l_max (explicit complex softmax)."""
    layer = make("dss", variant="softmax", l_max=L)
    with torch.no_grad():
        layer.A_real[:, 0] = -0.3  # one eigenvalue with positive real part: the softmax still normalises
        lam, _, W, dt = continuous(layer, 1.0)
        P = dt.unsqueeze(-1) * lam.unsqueeze(-1) * torch.arange(L, dtype=torch.float64)  # (H, M, L)
        P = P - P.real.amax(-1, keepdim=True)
        soft = P.exp() / P.exp().sum(-1, keepdim=True)
        K = 2 * (W[0].unsqueeze(-1) / lam.unsqueeze(-1) * soft).sum(-2).real
        K_layer = layer.kernel(L)[0]
    assert torch.isfinite(K_layer).all() and rel(K_layer, K) < 1e-9


def test_s4ptd_kernel_is_zoh_of_perturbed_hippo():
    """With W = (C V) * (V^-1 B): kernel == Re(C Abar^l Bbar) of the ZOH of A_H + E with dense matrix exponentials."""
    torch.manual_seed(0)
    Cr = torch.randn(1, H, N, dtype=torch.float64)
    torch.manual_seed(0)
    layer = build("s4-ptd", d_model=H, d_state=N, output="none", activation=None).double()
    init = hippo.ptd("legs", N)
    A_H, B_H = hippo.transition("legs", N)
    lam = torch.complex(real_part(layer.A_real, "exp"), layer.A_imag)[0]
    V, V_inv = init.V.to(torch.complex128), init.V_inv.to(torch.complex128)
    A = V @ torch.diag(lam) @ V_inv  # A_H + E up to the float32 storage of Lambda
    assert rel(A, A_H.to(torch.complex128) + init.E.to(torch.complex128)) < 1e-5
    assert layer.A_real.shape == (1, N) and not layer.conj
    dt = layer.dt()[:, 0]
    eye = torch.eye(N, dtype=torch.complex128)
    Ks = []
    for h in range(H):
        Abar = torch.linalg.matrix_exp(dt[h] * A)
        v = torch.linalg.solve(A, (Abar - eye) @ B_H.to(torch.complex128).reshape(-1))
        row = []
        for _ in range(L):
            row.append((Cr[0, h].to(torch.complex128) @ v).real)
            v = Abar @ v
        Ks.append(torch.stack(row))
    with torch.no_grad():
        W = (Cr.to(torch.complex128) @ init.V.to(torch.complex128)) * (init.V_inv.to(torch.complex128) @ B_H.reshape(-1).to(torch.complex128))
        layer.C.copy_(torch.view_as_real(W))
        K = layer.kernel(L)[0]
    assert rel(K, torch.stack(Ks)) < 1e-8


def test_s4ptd_real_part_stays_negative_and_lambda_shared():
    layer = make("s4-ptd")
    with torch.no_grad():
        layer.A_real.fill_(-50.0)  # any parameter value: Re(Lambda) = -exp(p) < 0
    assert (layer.Lambda().real < 0).all() and layer.Lambda().shape == (H, N)
    assert torch.equal(layer.Lambda()[0], layer.Lambda()[1])


@pytest.mark.parametrize("name", ["s4d", "dss", "s4-ptd"])
def test_optim_tags_and_frozen(name):
    layer = build(name, d_model=4, d_state=N)
    tagged = {n for n, p in layer.named_parameters() if hasattr(p, "_optim")}
    assert {"inv_dt", "A_real", "A_imag"} <= tagged and "C" not in tagged and "D" not in tagged
    assert all(p._optim == {"lr": 1e-3, "weight_decay": 0.0} for n, p in layer.named_parameters() if n in tagged)
    frozen = build(name, d_model=4, d_state=N, lr=0.0)
    assert "A_real" in dict(frozen.named_buffers()) and "A_real" not in dict(frozen.named_parameters())


@pytest.mark.parametrize("name", ["s4d", "dss", "s4-ptd"])
def test_errors(name):
    layer = build(name, d_model=4, d_state=N)
    with pytest.raises(ValueError, match="d_model=4"):
        layer(torch.randn(2, 5, 3))
    with pytest.raises(ValueError, match="state"):
        layer(torch.randn(2, 5, 4), torch.zeros(2, 4, 1, dtype=torch.cfloat))
    with pytest.raises(ValueError, match="rate"):
        layer(torch.randn(2, 5, 4), rate=-1.0)
    bi = build(name, d_model=4, d_state=N, bidirectional=True)
    with pytest.raises(ValueError, match="bidirectional"):
        bi.step(torch.randn(2, 4), layer.default_state(2))
    with pytest.raises(ValueError, match="discretization|variant"):
        build(name, d_model=4, d_state=N, **({"variant": "x"} if name == "dss" else {"discretization": "x"}))
    if name != "s4-ptd":
        with pytest.raises(ValueError, match="d_state must be even"):
            build(name, d_model=4, d_state=7)
    else:
        assert build(name, d_model=4, d_state=7)(torch.randn(1, 5, 4))[0].shape == (1, 5, 4)


def test_init_errors():
    for name in ("s4d", "s4-ptd", "s4"):
        with pytest.raises(ValueError, match="init"):
            build(name, d_model=4, d_state=N, init="nope")
    with pytest.raises(ValueError, match="real_transform"):
        build("s4d", d_model=4, d_state=N, real_transform="nope")


@pytest.mark.parametrize("name", ["s4d", "dss", "s4-ptd"])
def test_bf16_autocast(name):
    layer = build(name, d_model=4, d_state=N, bidirectional=True)
    x = torch.randn(2, 64, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y, _ = layer(x)
        assert layer.kernel(64).dtype == torch.float32
    y.float().sum().backward()
    assert torch.isfinite(y.float()).all() and torch.isfinite(layer.A_real.grad).all()
    assert rel(y.float(), layer(x)[0]) < 0.1


@pytest.mark.parametrize("name,kw", [("s4d", {}), ("dss", {"l_max": 16384}), ("s4-ptd", {})])
def test_long_sequence_finite_fp32_with_grads(name, kw):
    layer = build(name, d_model=2, d_state=N, dt_min=1e-4, dt_max=1e-1, **kw)
    x = torch.randn(1, 16384, 2)
    y, s = layer(x)
    (y.sum() + s.abs().sum()).backward()
    assert torch.isfinite(y).all() and torch.isfinite(s).all()
    assert all(torch.isfinite(p.grad).all() for p in layer.parameters() if p.grad is not None)


@pytest.mark.parametrize("name,kw", [("s4d", {}), ("s4d", {"discretization": "bilinear"}), ("dss", {}), ("s4-ptd", {})])
def test_gradcheck_kernel(name, kw):
    layer = make(name, backend="torch", **kw)
    names = ["inv_dt", "A_real", "A_imag", "C"]

    def f(*params):
        for n, p in zip(names, params):
            setattr(layer, n, p)
        return layer.kernel(12)

    params = [getattr(layer, n).detach().clone().requires_grad_() for n in names]
    for n in names:
        delattr(layer, n)
    assert torch.autograd.gradcheck(f, params, fast_mode=True)


def test_rate_halves_sampling_consistently():
    """At rate 2 the SSM sees dt doubled: its kernel equals the rate-1 kernel of a layer with dt doubled."""
    layer = make("s4d")
    other = make("s4d")
    with torch.no_grad():
        other.inv_dt.add_(math.log(2.0))
        assert rel(layer.kernel(L, rate=2.0), other.kernel(L)) < 1e-12


ACCURACY = [("s4d", {}), ("s4d", {"init": "inv"}), ("s4d", {"discretization": "bilinear"}), ("dss", {"variant": "exp"}),
            ("dss", {"l_max": 16384}), ("s4-ptd", {"d_state": 16})]


@pytest.mark.parametrize("name,kw", ACCURACY)
def test_complex64_kernel_is_accurate_at_16k(name, kw):
    """float32 vs float64 kernel of the same parameters at L = 16384, N = 64, dt in [1e-4, 1e-1]: the phase
    l * log(Abar) is formed without rounding log(Abar) to complex64 (rounding Abar cost 1e-5 here)."""
    import copy

    torch.manual_seed(0)
    layer = build(name, d_model=8, **{"d_state": 64, "dt_min": 1e-4, "dt_max": 1e-1, **kw})
    with torch.no_grad():
        k32, k64 = layer.kernel(16384), copy.deepcopy(layer).double().kernel(16384)
    assert k32.dtype == torch.float32 and rel(k32.double(), k64) < 5e-6
