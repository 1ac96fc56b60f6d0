"""Low-rank passthrough GRU/LSTM: equal to torch.nn.GRU/LSTM in full form, to a naive recurrence in every form."""
import pytest
import torch

from layer_helpers import run_steps
from ssm.layers import build
from ssm.layers.passthrough import GateMatrices, LowRankGRU, LowRankLSTM

B, L, H = 3, 9, 6
FORMS = [("full", None, False), ("lowrank", 2, False), ("lowrank", 2, True), ("lowrank_diag", 3, False),
         ("lowrank_diag", 2, True)]


def copy_torch_weights(layer, rnn):
    """Load torch.nn.GRU/LSTM weights into a parametrization='full' layer."""
    G = layer.gates
    with torch.no_grad():
        for l, lay in enumerate(layer.layers):
            lay.w_ih.W.copy_(getattr(rnn, f"weight_ih_l{l}").view(G, layer.hidden_size, -1))
            lay.w_hh.W.copy_(getattr(rnn, f"weight_hh_l{l}").view(G, layer.hidden_size, -1))
            lay.b_ih.copy_(getattr(rnn, f"bias_ih_l{l}"))
            lay.b_hh.copy_(getattr(rnn, f"bias_hh_l{l}"))


@pytest.mark.parametrize("script", [False, True])
@pytest.mark.parametrize("hidden", [H, 4])
def test_full_gru_equals_torch_gru(hidden, script):
    torch.manual_seed(0)
    layer = LowRankGRU(H, hidden_size=hidden, parametrization="full", num_layers=2, script=script).double()
    rnn = torch.nn.GRU(H, hidden, num_layers=2, batch_first=True).double()
    copy_torch_weights(layer, rnn)
    x, h0 = torch.randn(B, L, H, dtype=torch.float64), torch.randn(2, B, hidden, dtype=torch.float64)
    y, h = layer(x, h0)
    yt, ht = rnn(x, h0)
    torch.testing.assert_close(y, layer.readout(yt), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(h, ht, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("script", [False, True])
def test_full_lstm_equals_torch_lstm(script):
    torch.manual_seed(1)
    layer = LowRankLSTM(H, parametrization="full", num_layers=2, script=script).double()
    rnn = torch.nn.LSTM(H, H, num_layers=2, batch_first=True).double()
    copy_torch_weights(layer, rnn)
    x = torch.randn(B, L, H, dtype=torch.float64)
    s0 = (torch.randn(2, B, H, dtype=torch.float64), torch.randn(2, B, H, dtype=torch.float64))
    y, (h, c) = layer(x, s0)
    yt, (ht, ct) = rnn(x, s0)
    for a, b in ((y, yt), (h, ht), (c, ct)):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def naive(layer, x):
    """Per-step recurrence from the effective matrices (paper equations), single layer, zero state."""
    lay, n = layer.layers[0], layer.hidden_size
    U, W = lay.w_ih.matrix(), lay.w_hh.matrix()
    h, c, ys = x.new_zeros(x.shape[0], n), x.new_zeros(x.shape[0], n), []
    for t in range(x.shape[1]):
        gi = x[:, t] @ U.T + lay.b_ih
        if isinstance(layer, LowRankLSTM):
            i, f, g, o = (gi + h @ W.T + lay.b_hh).chunk(4, 1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
        else:
            Wr, Wz, Wc = W.chunk(3, 0)
            br, bz, bc = lay.b_hh.chunk(3)
            ir, iz, ic = gi.chunk(3, 1)
            r, z = torch.sigmoid(ir + h @ Wr.T + br), torch.sigmoid(iz + h @ Wz.T + bz)
            cand = ic + r * (h @ Wc.T + bc) if layer.reset_after else ic + (r * h) @ Wc.T + bc
            h = (1 - z) * torch.tanh(cand) + z * h
        ys.append(h)
    return torch.stack(ys, 1)


@pytest.mark.parametrize("factored", [True, False])
@pytest.mark.parametrize("form,rank,tie", FORMS)
@pytest.mark.parametrize("cls,kw", [(LowRankGRU, {}), (LowRankGRU, {"reset_after": False}), (LowRankLSTM, {})])
def test_every_form_equals_naive_recurrence(cls, kw, form, rank, tie, factored):
    torch.manual_seed(2)
    layer = cls(H, parametrization=form, rank=rank, tie_right=tie, input_rank=2 if tie else None, **kw).double()
    layer.layers[0].w_hh.factored = factored
    x = torch.randn(B, L, H, dtype=torch.float64)
    torch.testing.assert_close(layer(x)[0], naive(layer, x), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("form,rank,tie", FORMS[1:])
def test_lowrank_matrix_has_rank_d_and_paper_init(form, rank, tie):
    torch.manual_seed(3)
    n = 10
    gru = LowRankGRU(H, hidden_size=n, parametrization=form, rank=rank, tie_right=tie, update_bias=4.5)
    lay = gru.layers[0]
    W = lay.w_hh.matrix().detach().view(3, n, n)
    if form == "lowrank_diag":
        W = W - torch.diag_embed(lay.w_hh.D.detach())
    assert all(torch.linalg.matrix_rank(w) == rank for w in W)  # exactly d for generic factors
    if form == "lowrank_diag":
        assert lay.w_hh.D.abs().max() <= 0.01
    # update gate (index 1 in [r, z, c]) starts at the passthrough bias, the others at zero
    assert torch.equal(lay.b_ih.view(3, n)[1], torch.full((n,), 4.5)) and lay.b_ih.view(3, n)[[0, 2]].abs().sum() == 0
    bound = (6.0 / (n + rank)) ** 0.5  # Glorot-uniform on both factors
    assert lay.w_hh.L.abs().max() <= bound and lay.w_hh.R.abs().max() <= bound


def expected_count(G, n_in, n, form, d, tie, input_rank, layers):
    """Parameter count from the formulas: inputs, recurrent factors, diagonals, two bias vectors per layer."""
    total = 0
    for l in range(layers):
        m = n_in if l == 0 else n
        total += G * n * m if input_rank is None else G * n * input_rank + (1 if tie else G) * input_rank * m
        if form == "full":
            total += G * n * n
        else:
            total += G * n * d + (1 if tie else G) * d * n + (G * n if form == "lowrank_diag" else 0)
        total += 2 * G * n
    return total


@pytest.mark.parametrize("cls,G", [(LowRankGRU, 3), (LowRankLSTM, 4)])
@pytest.mark.parametrize("form,d,tie,input_rank,layers", [
    ("full", None, False, None, 1), ("lowrank", 4, False, None, 2), ("lowrank", 4, True, None, 1),
    ("lowrank_diag", 3, False, 2, 2), ("lowrank_diag", 5, True, 3, 1)])
def test_parameter_counts_match_formulas(cls, G, form, d, tie, input_rank, layers):
    n_in, n = 7, 12
    layer = cls(n_in, hidden_size=n, parametrization=form, rank=d, tie_right=tie, input_rank=input_rank,
                num_layers=layers)
    readout = n * n_in + n_in  # Linear(hidden, d_model) back to the residual width
    got = sum(p.numel() for p in layer.parameters())
    assert got == expected_count(G, n_in, n, form, d, tie, input_rank, layers) + readout


@pytest.mark.parametrize("cls", [LowRankGRU, LowRankLSTM])
def test_step_loop_and_state_continuation_equal_forward(cls):
    torch.manual_seed(4)
    layer = cls(H, hidden_size=5, rank=2, num_layers=2).double()
    x = torch.randn(B, L, H, dtype=torch.float64)
    y, s = layer(x)
    torch.testing.assert_close(run_steps(layer, x)[0], y, rtol=1e-10, atol=1e-10)
    y1, s1 = layer(x[:, :4])
    y2, s2 = layer(x[:, 4:], s1)
    torch.testing.assert_close(torch.cat([y1, y2], 1), y, rtol=1e-10, atol=1e-10)
    for a, b in zip(s2 if isinstance(s, tuple) else [s2], s if isinstance(s, tuple) else [s]):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_scripted_and_python_loops_agree_with_and_without_grad():
    torch.manual_seed(5)
    layer = LowRankGRU(H, rank=2, reset_after=False)
    x = torch.randn(B, L, H)
    y = layer(x)[0]
    with torch.no_grad():  # script=None scripts the loop only here
        torch.testing.assert_close(layer(x)[0], y, rtol=1e-5, atol=1e-6)
    layer.script = True
    torch.testing.assert_close(layer(x)[0], y, rtol=1e-5, atol=1e-6)


def test_dropout_only_between_layers():
    torch.manual_seed(6)
    x = torch.randn(B, L, H)
    one = LowRankLSTM(H, dropout=0.5).train()
    torch.testing.assert_close(one(x)[0], one(x)[0])  # a single layer has nothing to drop between
    two = LowRankLSTM(H, dropout=0.5, num_layers=2).train()
    assert not torch.allclose(two(x)[0], two(x)[0])
    two.eval()
    torch.testing.assert_close(two(x)[0], two(x)[0])


def test_gradcheck_lowrank_diag():
    torch.manual_seed(7)
    layer = LowRankGRU(3, hidden_size=4, rank=2, tie_right=True).double()
    x = torch.randn(2, 4, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: layer(x)[0], (x,))


def test_registry_names_and_residual_width():
    gru = build("lowrank-gru", d_model=H, hidden_size=10, rank=3)
    lstm = build("lowrank-lstm", d_model=H)
    assert isinstance(gru, LowRankGRU) and isinstance(lstm, LowRankLSTM)
    x = torch.randn(B, L, H)
    assert gru(x)[0].shape == (B, L, H) and lstm(x)[0].shape == (B, L, H)
    assert lstm.rank == H  # default rank min(24, hidden_size)
    gru.apply(lambda m: None)  # nn.Module.apply is not shadowed


@pytest.mark.parametrize("name", ["lowrank-gru", "lowrank-lstm"])
def test_inside_the_residual_backbone(name):
    from ssm.models import SequenceModel

    model = SequenceModel(d_input=3, d_output=2, d_model=8, n_layers=2, layer=name,
                          layer_kwargs={"rank": 2, "num_layers": 2, "dropout": 0.1})
    assert model(torch.randn(B, L, 3)).shape == (B, 2)


def test_bad_arguments_raise_value_error():
    with pytest.raises(ValueError, match="parametrization"):
        LowRankGRU(H, parametrization="sparse")
    with pytest.raises(ValueError, match="rank"):
        LowRankGRU(H, rank=H + 1)
    with pytest.raises(ValueError, match="rank"):
        LowRankLSTM(H, rank=0)
    with pytest.raises(ValueError, match="num_layers"):
        LowRankLSTM(H, num_layers=0)
    with pytest.raises(ValueError, match="hidden_size"):
        LowRankGRU(H, hidden_size=-1)
    with pytest.raises(ValueError, match="dropout"):
        LowRankGRU(H, dropout=1.5)
    with pytest.raises(ValueError, match="square"):
        GateMatrices(3, 4, 5, "lowrank_diag", 2)
    gru, lstm = LowRankGRU(H, num_layers=2), LowRankLSTM(H)
    with pytest.raises(ValueError, match=r"state must have shape \(2, 3, 6\)"):
        gru(torch.randn(B, L, H), torch.zeros(1, B, H))
    with pytest.raises(TypeError, match=r"state must be a tuple of 2 tensors"):
        lstm(torch.randn(B, L, H), torch.zeros(1, B, H))
    with pytest.raises(ValueError, match="d_model"):
        lstm.step(torch.randn(B, H + 1), lstm.default_state(B))
