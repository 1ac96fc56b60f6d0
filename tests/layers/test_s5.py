"""S5 / S5-PTD: scan == naive recurrence == step loop, state passing, lengths, bidirectional, init, groups."""
import math

import pytest
import torch

from layer_helpers import run_steps
from ssm.layers import build
from ssm.layers.s5 import OPT_CONFIGS, S5, S5PTD

H, P, J = 6, 8, 2


def layer(name="s5", dtype=torch.float64, **kw):
    torch.manual_seed(0)
    kw = {"d_state": P, "blocks": J, **kw}
    return build(name, d_model=H, **kw).to(dtype).eval()


def naive(m: S5, x, state=None, rate=1.0):
    """Pre-activation output by the unrolled recurrence written from the parameters (the oracle)."""
    cd = torch.complex128 if x.dtype == torch.float64 else torch.complex64
    re = m.Lambda_re.clamp(max=-1e-4) if m.clip_eigs else m.Lambda_re
    re = -re.abs() if m.force_neg else re
    lam = torch.complex(re, m.Lambda_im).to(cd)
    dt = (torch.exp(m.log_step) * m.step_rescale * rate).to(cd)
    Bt, Ct = torch.view_as_complex(m.B).to(cd), torch.view_as_complex(m.C).to(cd)
    if m.discretization == "zoh":
        Ab = torch.exp(lam * dt)
        Bb = ((Ab - 1) / lam)[:, None] * Bt
    else:
        Ab = (1 + dt / 2 * lam) / (1 - dt / 2 * lam)
        Bb = (dt / (1 - dt / 2 * lam))[:, None] * Bt
    s = 2.0 if m.conj_sym else 1.0

    def run(C, order):
        h = torch.zeros(x.shape[0], lam.shape[0], dtype=cd) if state is None else state.to(cd)
        ys = [None] * x.shape[1]
        for t in order:
            h = Ab * h + x[:, t].to(cd) @ Bb.T
            ys[t] = s * (h @ C.T).real
        return torch.stack(ys, 1), h

    y, h = run(Ct[0], range(x.shape[1]))
    if m.bidirectional:
        y2, _ = run(Ct[1], range(x.shape[1] - 1, -1, -1))
        y = y + y2 if m.bidirectional_mode == "sum" else torch.cat([y, y2], -1)
    return y + m.D * x, h


@pytest.mark.parametrize("name", ["s5", "s5-ptd"])
@pytest.mark.parametrize("disc", ["zoh", "bilinear"])
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-4)])
def test_forward_equals_naive_recurrence_and_step(name, disc, dtype, tol):
    m = layer(name, dtype, discretization=disc)
    x = torch.randn(3, 23, H, dtype=dtype)
    state = 0.3 * torch.randn(3, m.n_states, dtype=torch.complex128).to(m.default_state(1).dtype)
    y, s = m(x, state)
    y_ref, s_ref = naive(m, x, state)
    torch.testing.assert_close(y, m.output(y_ref), rtol=tol, atol=tol)
    torch.testing.assert_close(s, s_ref.to(s.dtype), rtol=tol, atol=tol)
    ys, h = run_steps(m, x, state)
    torch.testing.assert_close(ys, y, rtol=tol, atol=tol)
    torch.testing.assert_close(h, s, rtol=tol, atol=tol)


@pytest.mark.parametrize("backend", ["torch", "ref"])
def test_state_continuation_across_chunks(backend):
    m = layer(backend=backend)
    x = torch.randn(2, 40, H, dtype=torch.float64)
    y, s = m(x)
    y1, s1 = m(x[:, :13])
    y2, s2 = m(x[:, 13:], s1)
    torch.testing.assert_close(torch.cat([y1, y2], 1), y, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(s2, s, rtol=1e-10, atol=1e-10)


def test_backends_agree_in_the_layer():
    """The layer gives the same output and gradients whichever scan backend runs it."""
    from ssm.kernels import dispatch

    names = [n for n in ("ref", "torch", "ext") if dispatch.status("scan", n, torch.device("cpu")) is None]
    x = torch.randn(2, 30, H, dtype=torch.float64)
    outs = []
    for n in names:
        m = layer(backend=n, bidirectional=True)
        y = m(x)[0]
        y.square().sum().backward()
        outs.append((y, m.Lambda_im.grad, m.B.grad))
    for o in outs[1:]:
        for t, r in zip(o, outs[0]):
            torch.testing.assert_close(t, r, rtol=1e-10, atol=1e-10)


def test_conj_sym_equals_full_conjugate_system():
    """conj_sym (P/2 states, 2 Re) equals the P-state system with the conjugate states written out."""
    m = layer(conj_sym=True)
    full = layer(conj_sym=False)
    with torch.no_grad():
        for n in ("Lambda_re", "log_step", "D"):
            getattr(full, n).copy_(torch.cat([getattr(m, n)] * 2) if n != "D" else m.D)
        full.Lambda_im.copy_(torch.cat([m.Lambda_im, -m.Lambda_im]))
        B, C = torch.view_as_complex(m.B), torch.view_as_complex(m.C)
        full.B.copy_(torch.view_as_real(torch.cat([B, B.conj()], 0)))
        full.C.copy_(torch.view_as_real(torch.cat([C, C.conj()], -1)))
        full.output.load_state_dict(m.output.state_dict())
    x = torch.randn(2, 15, H, dtype=torch.float64)
    torch.testing.assert_close(full(x)[0], m(x)[0], rtol=1e-10, atol=1e-10)


def test_init_blocks_and_shapes():
    m = layer(d_state=16, blocks=4, conj_sym=True)
    assert m.n_states == 8 and m.B.shape == (8, H, 2) and m.C.shape == (1, H, 8, 2)
    lam = torch.complex(m.Lambda_re, m.Lambda_im).view(4, 2)
    assert torch.equal(lam, lam[:1].expand(4, 2))  # one HiPPO block repeated
    torch.testing.assert_close(m.Lambda_re, torch.full_like(m.Lambda_re, -0.5))  # normal part of LegS
    assert (torch.exp(m.log_step) >= 1e-3 - 1e-9).all() and (torch.exp(m.log_step) <= 1e-1 + 1e-9).all()
    ptd = layer("s5-ptd", d_state=16, blocks=4)
    assert ptd.n_states == 16 and not ptd.conj_sym and ptd.clip_eigs
    lam = torch.complex(ptd.Lambda_re, ptd.Lambda_im).view(4, 4)
    assert torch.equal(lam, lam[:1].expand(4, 4))


@pytest.mark.parametrize("C_init", ["trunc_standard_normal", "lecun_normal", "complex_normal"])
def test_C_init_scale(C_init):
    """C V with V unitary keeps C's scale: E|Ct|^2 per entry = 2/P (trunc), 2/(P H) (lecun), 1 (complex)."""
    torch.manual_seed(0)
    Hb, Pb = 64, 64
    m = S5(Hb, d_state=Pb, blocks=4, conj_sym=False, C_init=C_init)
    power = torch.view_as_complex(m.C).abs().pow(2).mean().item()
    expected = {"trunc_standard_normal": 2 / Pb, "lecun_normal": 2 / (Pb * Hb), "complex_normal": 1.0}[C_init]
    assert abs(power / expected - 1) < 0.1


@pytest.mark.parametrize("mode", ["sum", "concat"])
def test_bidirectional(mode):
    m = layer(bidirectional=True, bidirectional_mode=mode)
    x = torch.randn(2, 12, H, dtype=torch.float64)
    y, s = m(x)
    assert s is None and m.C.shape[:2] == (2, H if mode == "sum" else H // 2)
    torch.testing.assert_close(y, m.output(naive(m, x)[0]), rtol=1e-10, atol=1e-10)
    # causal in neither direction: the first output depends on the last input
    x2 = x.clone()
    x2[:, -1] += 1.0
    assert not torch.allclose(m(x2)[0][:, 0], y[:, 0])
    with pytest.raises(ValueError, match="state must be None"):
        m(x, m.default_state(2))
    with pytest.raises(ValueError, match="unidirectional"):
        m.step(x[:, 0], None)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_variable_lengths_ignore_padding(bidirectional):
    """With `lengths`, padded steps (filled with garbage) change neither the valid outputs nor the final state."""
    m = layer(bidirectional=bidirectional)
    L, lengths = 16, torch.tensor([16, 9, 1, 0])
    x = torch.randn(4, L, H, dtype=torch.float64)
    noisy = x.clone()
    for b, n in enumerate(lengths.tolist()):
        noisy[b, n:] = 100 * torch.randn(L - n, H, dtype=torch.float64)
    y, s = m(noisy, lengths=lengths)
    for b, n in enumerate(lengths.tolist()):
        if n == 0:
            continue
        yb, sb = m(x[b:b + 1, :n])
        torch.testing.assert_close(y[b:b + 1, :n], yb, rtol=1e-10, atol=1e-10)
        if not bidirectional:
            torch.testing.assert_close(s[b:b + 1], sb, rtol=1e-10, atol=1e-10)
    if not bidirectional:
        assert torch.equal(s[3], torch.zeros_like(s[3]))  # length 0: the initial (zero) state


def test_step_rescale_equals_scaled_dt():
    m = layer()
    x = torch.randn(2, 10, H, dtype=torch.float64)
    y2 = m(x, rate=2.0)[0]
    with torch.no_grad():
        m.log_step += math.log(2.0)
    torch.testing.assert_close(m(x)[0], y2, rtol=1e-10, atol=1e-10)
    m2 = layer(step_rescale=2.0)
    with torch.no_grad():
        m2.log_step += math.log(2.0)
    torch.testing.assert_close(layer(step_rescale=4.0)(x)[0], m2(x)[0], rtol=1e-10, atol=1e-10)


def test_clip_eigs_and_force_neg():
    m = layer(clip_eigs=True)
    with torch.no_grad():
        m.Lambda_re.copy_(torch.linspace(-1, 1, m.n_states))
    assert (m.Lambda().real <= -1e-4).all()
    m = layer(force_neg=True)
    with torch.no_grad():
        m.Lambda_re.copy_(torch.linspace(-1, 1, m.n_states))
    torch.testing.assert_close(m.Lambda().real, -m.Lambda_re.abs())
    x = torch.randn(1, 9, H, dtype=torch.float64)
    torch.testing.assert_close(m(x)[0], m.output(naive(m, x)[0]), rtol=1e-10, atol=1e-10)


def test_output_blocks_and_activation():
    x = torch.randn(2, 7, H, dtype=torch.float64)
    outs = {o: layer(output=o)(x)[0] for o in ("half_glu1", "half_glu2", "full_glu", "none")}
    m = layer(output="half_glu2")
    pre = naive(m, x)[0]
    g = torch.nn.functional.gelu(pre, approximate="tanh")  # the default activation is JAX's tanh-approximate GELU
    torch.testing.assert_close(outs["half_glu2"], pre * torch.sigmoid(m.output.W(g)))
    torch.testing.assert_close(outs["half_glu1"], g * torch.sigmoid(m.output.W(g)))
    torch.testing.assert_close(outs["none"], g)
    assert outs["full_glu"].shape == x.shape
    exact = layer(output="none", activation="gelu")(x)[0]
    torch.testing.assert_close(exact, torch.nn.functional.gelu(pre))
    assert not torch.allclose(exact, g, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="output"):
        layer(output="gelu")


@pytest.mark.parametrize("config", list(OPT_CONFIGS))
def test_optimizer_groups(config):
    m = S5(H, d_state=P, blocks=J, opt_config=config, lr=2e-3)
    optim = {n: getattr(p, "_optim", None) for n, p in m.named_parameters()}
    ssm = {"lr": 2e-3, "weight_decay": 0.0}
    assert optim["Lambda_re"] == optim["Lambda_im"] == optim["log_step"] == ssm
    expected_B = {"standard": ssm, "BandCdecay": {"lr": 2e-3}, "BfastandCdecay": None, "noBCdecay": ssm}[config]
    assert optim["B"] == expected_B
    assert optim["C"] == optim["D"] == (ssm if config == "noBCdecay" else None)
    assert optim["output.W.weight"] is None


def test_gradients_reach_all_parameters():
    m = layer(bidirectional=True, dtype=torch.float32).train()
    m(torch.randn(2, 20, H))[0].pow(2).mean().backward()
    for n, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, n


def test_bad_inputs_raise_value_error():
    m = layer()
    with pytest.raises(ValueError, match="d_model"):
        m(torch.randn(2, 5, H + 1, dtype=torch.float64))
    with pytest.raises(ValueError, match="state must have shape"):
        m(torch.randn(2, 5, H, dtype=torch.float64), torch.zeros(2, P, dtype=torch.complex128))
    with pytest.raises(ValueError, match="lengths"):
        m(torch.randn(2, 5, H, dtype=torch.float64), lengths=torch.tensor([5, 6]))
    with pytest.raises(TypeError, match="lengths"):
        m(torch.randn(2, 5, H, dtype=torch.float64), lengths=torch.tensor([5.0, 1.0]))
    with pytest.raises(ValueError, match="even block size"):
        S5(H, d_state=6, blocks=2)
    with pytest.raises(ValueError, match="divisible"):
        S5(H, d_state=10, blocks=4, conj_sym=False)
    with pytest.raises(ValueError, match="C_init"):
        S5(H, d_state=P, blocks=J, C_init="nope")
    for cls in (S5, S5PTD):
        with pytest.raises(ValueError, match="init must name a HiPPO matrix"):
            cls(H, d_state=P, blocks=J, init="nope")
    with pytest.raises(ValueError, match="conj_sym must be False"):
        S5PTD(H, d_state=P, blocks=J, conj_sym=True)
    with pytest.raises(ValueError, match="rate"):
        m(torch.randn(1, 3, H, dtype=torch.float64), rate=0.0)


def test_groups_through_param_groups():
    """ssm.train.param_groups turns the tags into S5's groups: BandCdecay gives B the SSM lr with weight decay."""
    from ssm.train.optim import param_groups

    m = S5(H, d_state=P, blocks=J, opt_config="BandCdecay", lr=1e-3)
    groups = {(g["lr"], g["weight_decay"]): {id(p) for p in g["params"]} for g in param_groups(m, 4e-3, 0.05)}
    assert groups[(1e-3, 0.0)] == {id(m.Lambda_re), id(m.Lambda_im), id(m.log_step)}
    assert groups[(1e-3, 0.05)] == {id(m.B)}
    assert {id(m.C), id(m.D)} <= groups[(4e-3, 0.05)]
