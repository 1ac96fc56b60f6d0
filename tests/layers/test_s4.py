"""S4 (DPLR) against a dense oracle: A = diag(Lambda) - P P* over all N states, bilinear Abar, Bbar and
C = Ct (I - Abar^L)^-1 built here with dense linear algebra; kernel, convolution, step, state passing."""
from __future__ import annotations

import pytest
import torch

from layer_helpers import rel, run_steps
from ssm.layers import build

H, N, L = 3, 8, 37


def make(dtype=torch.float64, seed=0, random_P=False, **kw):
    torch.manual_seed(seed)
    kw = {"d_state": N, "output": "none", "activation": None, "l_max": 64, **kw}
    layer = build("s4", d_model=H, **kw).to(dtype)
    if random_P:  # a random rank-r low-rank part exercises the Woodbury solve
        S, M = layer.A_real.shape
        layer.P = torch.nn.Parameter(0.5 * torch.randn(layer.rank, S, M, 2, dtype=dtype))
    return layer


def dense_oracle(layer, rate=1.0):
    """Abar (H, N, N), Bbar (H, N), C (C, H, N) from the continuous parameters, all N complex states."""
    p = layer.ssm_params(rate)
    full = lambda x: torch.cat([x, x.conj()], -1)  # noqa: E731
    Pf = full(p["P"])
    A = torch.diag_embed(full(p["Lambda"])) - torch.einsum("rhn,rhm->hnm", Pf, Pf.conj())
    dt = p["dt"].unsqueeze(-1)
    eye = torch.eye(N, dtype=A.dtype)
    if layer.discretization == "zoh":
        Abar = torch.linalg.matrix_exp(dt * A)
        Bbar = (torch.linalg.inv(A) @ (Abar - eye) @ full(p["B"]).unsqueeze(-1)).squeeze(-1)
    else:
        inv = torch.linalg.inv(eye - dt / 2 * A)
        Abar, Bbar = inv @ (eye + dt / 2 * A), (inv @ full(p["B"]).unsqueeze(-1)).squeeze(-1) * p["dt"]
    Lk = round(int(layer.l_kernel) / rate)
    AL = torch.linalg.matrix_power(Abar, Lk)
    C = torch.einsum("chn,hnm->chm", full(p["Ct"]), torch.linalg.inv(eye - AL))
    return Abar, Bbar, C


def naive(layer, x, rate=1.0, state=None):
    """Unrolled dense recurrence over full states (two-sided if bidirectional)."""
    Abar, Bbar, C = dense_oracle(layer, rate)
    Bsz, T, _ = x.shape
    M = N // 2
    h = torch.zeros(Bsz, H, N, dtype=Abar.dtype)
    if state is not None:
        h = torch.cat([state, state.conj()], -1)
    ys = []
    for t in range(T):
        h = torch.einsum("hnm,bhm->bhn", Abar, h) + Bbar * x[:, t, :, None]
        ys.append((C[0] * h).sum(-1).real + layer.D * x[:, t])
    y = torch.stack(ys, 1)
    if layer.bidirectional:
        z, back = torch.zeros_like(h), [None] * T
        for t in range(T - 1, -1, -1):
            back[t] = (C[1] * z).sum(-1).real
            z = torch.einsum("hnm,bhm->bhn", Abar, z) + Bbar * x[:, t, :, None]
        y = y + torch.stack(back, 1)
    assert torch.allclose(h[..., M:], h[..., :M].conj(), atol=1e-9)  # the state stays conjugate-symmetric
    return y, h[..., :M]


CASES = [dict(), dict(n_ssm=None), dict(n_ssm=1, rank=2, random_P=True), dict(discretization="zoh", rank=2, random_P=True),
         dict(dt_transform="exp", real_transform="softplus"), dict(real_transform="relu", dt_min=0.05, dt_max=0.5),
         dict(init="legt", rank=2), dict(init="fourier", n_ssm=None), dict(init="lagt")]


@pytest.mark.parametrize("kw", CASES, ids=lambda kw: "-".join(f"{k}={v}" for k, v in kw.items()) or "default")
@pytest.mark.parametrize("rate", [1.0, 0.5, 2.0])
def test_cauchy_kernel_equals_dense_powers(kw, rate):
    layer = make(**kw)
    before = {k: v.clone() for k, v in layer.state_dict().items()}
    with torch.no_grad():
        for T in (L, 200):  # shorter than l_max, then longer (Ct extended on the fly to 64 * 2^k nodes)
            K = layer.kernel(T, rate)[0]
            Abar, Bbar, C = dense_oracle(layer, rate)
            v, ref = Bbar, []
            for _ in range(T):
                ref.append((C[0] * v).sum(-1).real)
                v = torch.einsum("hnm,hm->hn", Abar, v)
            assert rel(K, torch.stack(ref, -1)) < 1e-8
    after = layer.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # forward changes no parameter


@pytest.mark.parametrize("kw", CASES[:4], ids=["default", "per-channel", "rank2", "zoh"])
@pytest.mark.parametrize("rate", [1.0, 2.0])
def test_conv_equals_step_equals_naive_fp64(kw, rate):
    layer = make(**kw)
    x = torch.randn(2, L, H, dtype=torch.float64)
    with torch.no_grad():
        y, s = layer(x, rate=rate)
        y_step, s_step = run_steps(layer, x, rate=rate)
        y_ref, s_ref = naive(layer, x, rate)
    assert rel(y, y_ref) < 1e-10 and rel(y_step, y_ref) < 1e-10
    assert rel(s, s_ref) < 1e-10 and rel(s_step, s_ref) < 1e-10


def test_conv_equals_naive_fp32():
    layer = make()
    x = torch.randn(2, L, H, dtype=torch.float64)
    with torch.no_grad():
        y_ref, _ = naive(layer, x)
        layer.float()
        y32, s32 = layer(x.float())
        ys32, _ = run_steps(layer, x.float())
    assert rel(y32.double(), y_ref) < 1e-4 and rel(ys32.double(), y_ref) < 1e-4


@pytest.mark.parametrize("rank", [1, 2])
@pytest.mark.parametrize("disc", ["bilinear", "zoh"])
def test_bidirectional_two_sided_kernel(rank, disc):
    layer = make(bidirectional=True, rank=rank, random_P=rank > 1, discretization=disc)
    x = torch.randn(2, L, H, dtype=torch.float64)
    with torch.no_grad():
        assert rel(layer(x, rate=0.5)[0], naive(layer, x, 0.5)[0]) < 1e-10
    assert layer.C.shape[0] == 2 and layer(x)[1] is None


@pytest.mark.parametrize("disc", ["bilinear", "zoh"])
def test_state_passing_across_chunks_with_output_layer(disc):
    layer = make(output="glu", activation="gelu", rank=2, random_P=True, discretization=disc)
    x = torch.randn(2, L, H, dtype=torch.float64)
    with torch.no_grad():
        y, s = layer(x)
        y1, s1 = layer(x[:, :10])
        y2, s2 = layer(x[:, 10:25], s1)
        y3, s3 = layer(x[:, 25:], s2)
        ys, _ = run_steps(layer, x[:, 10:], state=s1)
        _, s_ref = naive(layer, x)
    assert rel(torch.cat([y1, y2, y3], 1), y) < 1e-10 and rel(s3, s_ref) < 1e-10
    assert rel(ys, y[:, 10:]) < 1e-10


def test_step_with_grad_matches_cached_step():
    layer = make()
    x = torch.randn(2, H, dtype=torch.float64)
    st = layer.default_state(2, dtype=torch.float64) + 0.1
    y_grad, _ = layer.step(x, st)
    y_grad.sum().backward()
    assert layer.C.grad is not None and layer.P.grad is not None
    with torch.no_grad():
        y1, _ = layer.step(x, st)
        layer.C.mul_(2.0)  # an in-place update invalidates the cached output matrix
        y2, _ = layer.step(x, st)
    assert rel(y1, y_grad.detach()) < 1e-12 and rel(y2 - layer.D * x, 2 * (y1 - layer.D * x)) < 1e-10


def test_errors():
    layer = build("s4", d_model=4, d_state=N)
    with pytest.raises(ValueError, match="d_model=4"):
        layer(torch.randn(2, 5, 3))
    with pytest.raises(ValueError, match="d_state must be even"):
        build("s4", d_model=4, d_state=7)
    with pytest.raises(ValueError, match="discretization"):
        build("s4", d_model=4, d_state=N, discretization="foh")
    with pytest.raises(ValueError, match="n_ssm"):
        build("s4", d_model=4, d_state=N, n_ssm=3)
    with pytest.raises(ValueError, match="state"):
        layer(torch.randn(2, 5, 4), torch.zeros(2, 4, N, dtype=torch.cfloat))
    with pytest.raises(ValueError, match="bidirectional"):
        build("s4", d_model=4, d_state=N, bidirectional=True).step(torch.randn(2, 4), layer.default_state(2))


def test_optim_tags():
    layer = build("s4", d_model=4, d_state=N)
    tagged = {n for n, p in layer.named_parameters() if hasattr(p, "_optim")}
    assert tagged == {"inv_dt", "A_real", "A_imag", "P", "B"}
    assert all(getattr(layer, n)._optim == {"lr": 1e-3, "weight_decay": 0.0} for n in tagged)
    assert "P" in dict(build("s4", d_model=4, d_state=N, lr=0.0).named_buffers())


def test_bf16_autocast():
    layer = build("s4", d_model=4, d_state=N, bidirectional=True)
    x = torch.randn(2, 64, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y, _ = layer(x)
        assert layer.kernel(64).dtype == torch.float32
    y.float().sum().backward()
    assert torch.isfinite(layer.P.grad).all() and rel(y.float(), layer(x)[0]) < 0.1


@pytest.mark.parametrize("l_max,bidirectional", [(16384, True), (1024, False)])
def test_long_sequence_finite_fp32_with_grads(l_max, bidirectional):
    """L = 16384 in float32, directly and through four doublings of the 1024 kernel nodes."""
    layer = build("s4", d_model=2, d_state=N, l_max=l_max, dt_min=1e-4, dt_max=1e-1, bidirectional=bidirectional)
    y, _ = layer(torch.randn(1, 16384, 2), return_state=False)
    y.sum().backward()
    assert torch.isfinite(y).all() and int(layer.l_kernel) == l_max
    assert all(torch.isfinite(p.grad).all() for p in layer.parameters() if p.grad is not None)


@pytest.mark.parametrize("disc", ["bilinear", "zoh"])
def test_gradcheck_kernel(disc):
    layer = make(backend="torch", rank=2, random_P=True, l_max=8, discretization=disc)
    names = ["inv_dt", "A_real", "A_imag", "P", "B", "C"]

    def f(*params):
        for n, p in zip(names, params):
            setattr(layer, n, p)
        return layer.kernel(8)

    params = [getattr(layer, n).detach().clone().requires_grad_() for n in names]
    for n in names:
        delattr(layer, n)
    assert torch.autograd.gradcheck(f, params, fast_mode=True)


class _Recorder(torch.utils._python_dispatch.TorchDispatchMode):
    """Counts the ops dispatched and the largest tensor any of them returns."""

    def __init__(self):
        super().__init__()
        self.ops, self.largest = 0, 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        self.ops += 1
        for t in (out if isinstance(out, (tuple, list)) else [out]):
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


@pytest.mark.parametrize("name", ["s4", "s4d"])
def test_final_state_has_no_loop_over_L(name):
    """The final state's op count grows with log(L), not L (a per-step loop would add >= 3840 ops from L = 256 to
    4096); S4 forms no tensor of B H N L elements (its largest temporary is the input's size)."""
    counts = {}
    for L in (256, 4096):
        layer = build(name, d_model=4, d_state=16)
        u = torch.randn(3, 4, L)
        with torch.no_grad(), _Recorder() as rec:
            layer.final_state(u, layer.default_state(3), 1.0, torch.tensor([L, L // 2, 1]))
        counts[L] = rec.ops
        if name == "s4":
            assert rec.largest <= 2 * 3 * 4 * L < 3 * 4 * 16 * L
    assert counts[4096] - counts[256] < 250


def test_l_kernel_of_a_checkpoint_is_restored():
    layer = build("s4", d_model=4, d_state=N, l_max=64)
    state = layer.state_dict()
    state["l_kernel"] = torch.tensor(256)
    other = build("s4", d_model=4, d_state=N, l_max=64)
    other.load_state_dict(state)
    assert other.nodes(1)[0] == 256 and other.nodes(300) == (256, 1)
