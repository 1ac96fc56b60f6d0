import pytest
import torch

from ssm.models import RetrievalModel, SequenceModel, pool
from ssm.models.norm import MaskedBatchNorm

SMALL = {"d_state": 8}


def model(**kw):
    args = dict(d_input=2, d_output=3, d_model=8, n_layers=2, layer="s4d", layer_kwargs=SMALL)
    args.update(kw)
    return SequenceModel(**args).double()


@pytest.mark.parametrize("prenorm", [True, False])
@pytest.mark.parametrize("norm", ["layer", "batch", "none"])
@pytest.mark.parametrize("residual", [True, False])
def test_step_path_equals_full_pass(prenorm, norm, residual):
    m = model(prenorm=prenorm, norm=norm, residual=residual)
    m.train()
    m(torch.randn(4, 9, 2, dtype=torch.float64))  # give BatchNorm non-trivial running statistics
    m.eval()
    x = torch.randn(3, 11, 2, dtype=torch.float64)
    full = m.features(x)
    state = m.default_state(3)
    steps = []
    for t in range(x.shape[1]):
        z, state = m.step(x[:, t], state)
        steps.append(z)
    torch.testing.assert_close(torch.stack(steps, 1), full, rtol=1e-10, atol=1e-10)


# Small settings per registry layer; the SSMs bidirectional, the hard case for padding (the backward direction
# starts at the end of the padded sequence).
LAYERS = {
    "s4": {"d_state": 4, "bidirectional": True}, "s4d": {"d_state": 4, "bidirectional": True},
    "dss": {"d_state": 4, "bidirectional": True}, "s4-ptd": {"d_state": 4, "bidirectional": True},
    "s5": {"d_state": 4, "blocks": 1, "bidirectional": True},
    "s5-ptd": {"d_state": 4, "blocks": 1, "bidirectional": True},
    "lowrank-gru": {"rank": 2}, "lowrank-lstm": {"rank": 2}, "cfc": {},
}


@pytest.mark.parametrize("name", list(LAYERS))
@pytest.mark.parametrize("pooling", ["mean", "last", "none"])
def test_padded_batch_gives_each_example_its_own_output(name, pooling):
    torch.manual_seed(0)
    m = model(layer=name, layer_kwargs=LAYERS[name], pool=pooling, norm="batch").eval()
    m.train()
    m(torch.randn(4, 9, 2, dtype=torch.float64))  # non-trivial BatchNorm running statistics
    m.eval()
    lengths = torch.tensor([10, 6, 3])
    x = torch.randn(3, 10, 2, dtype=torch.float64)
    x[1, 6:], x[2, 3:] = 1e3, -1e3  # padding garbage: nothing may leak from it
    batch = m(x, lengths)
    for i, n in enumerate(lengths.tolist()):
        alone = m(x[i: i + 1, :n])
        got = batch[i, :n] if pooling == "none" else batch[i]
        torch.testing.assert_close(got, alone[0], rtol=1e-9, atol=1e-9)
        if pooling == "none":
            assert (batch[i, n:] == 0).all()


def test_rate_and_lengths_reach_every_block(monkeypatch):
    m = model(n_layers=3, layer="s5", layer_kwargs={"d_state": 4, "blocks": 1}).eval()
    seen = []
    for block in m.blocks:
        forward, step = block.layer.forward, block.layer.step

        def spy(*a, _f=forward, **kw):
            seen.append(("forward", kw.get("rate", 1.0), kw.get("lengths")))
            return _f(*a, **kw)

        def spy_step(*a, _f=step, **kw):
            seen.append(("step", kw.get("rate", 1.0), None))
            return _f(*a, **kw)

        monkeypatch.setattr(block.layer, "forward", spy)
        monkeypatch.setattr(block.layer, "step", spy_step)
    x, lengths = torch.randn(2, 7, 2, dtype=torch.float64), torch.tensor([7, 4])
    y2 = m(x, lengths, rate=2.0)
    assert [(k, r) for k, r, _ in seen] == [("forward", 2.0)] * 3 and all(l is lengths for *_, l in seen)
    assert not torch.allclose(y2, m(x, lengths))  # the rate changes every dt, so the output
    seen.clear()
    m.step(x[:, 0], m.default_state(2), rate=2.0)
    assert seen == [("step", 2.0, None)] * 3


def test_step_path_equals_full_pass_at_another_rate():
    m = model(n_layers=2).eval()
    x = torch.randn(2, 9, 2, dtype=torch.float64)
    state, steps = m.default_state(2), []
    for t in range(x.shape[1]):
        z, state = m.step(x[:, t], state, rate=0.5)
        steps.append(z)
    torch.testing.assert_close(torch.stack(steps, 1), m.features(x, rate=0.5), rtol=1e-10, atol=1e-10)
    assert not torch.allclose(m.features(x, rate=0.5), m.features(x))


def test_pool_modes():
    z = torch.arange(24, dtype=torch.float64).reshape(2, 4, 3)
    lengths = torch.tensor([2, 4])
    torch.testing.assert_close(pool(z, lengths, "mean")[0], z[0, :2].mean(0))
    torch.testing.assert_close(pool(z, lengths, "last")[0], z[0, 1])
    torch.testing.assert_close(pool(z, None, "mean"), z.mean(1))
    assert pool(z, None, "none") is z


def test_masked_batchnorm_uses_only_valid_tokens():
    torch.manual_seed(1)
    bn = MaskedBatchNorm(3).double().train()
    ref = torch.nn.BatchNorm1d(3).double().train()
    x = torch.randn(2, 5, 3, dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    x[~mask] = 1e6  # padding garbage must not leak into the statistics
    out = bn(x, mask)
    torch.testing.assert_close(out[mask], ref(x[mask]))
    torch.testing.assert_close(bn.running_mean, ref.running_mean)
    assert (out[~mask] == 0).all()


def test_retrieval_model_shapes_padding_and_rate():
    m = RetrievalModel(d_output=2, d_input=1, d_model=8, n_layers=1, layer="s5", layer_kwargs=LAYERS["s5"],
                       encoder="embedding", vocab_size=5).eval()
    a, b = torch.randint(1, 5, (3, 12)), torch.randint(1, 5, (3, 9))
    out = m((a, b), (torch.tensor([12, 5, 7]), torch.tensor([9, 9, 2])))
    assert out.shape == (3, 2) and torch.isfinite(out).all()
    torch.testing.assert_close(out[2], m((a[2:, :7], b[2:, :2]))[0])  # padding of either document has no effect
    assert not torch.allclose(m((a, b), rate=2.0), m((a, b)))
    with pytest.raises(ValueError, match="pair"):
        m(a)


def test_bad_arguments():
    with pytest.raises(ValueError, match="pool"):
        model(pool="max")
    with pytest.raises(ValueError, match="encoder"):
        model(encoder="conv")
    with pytest.raises(ValueError, match="vocab_size"):
        model(encoder="embedding")
    with pytest.raises(ValueError, match="norm"):
        model(norm="group")


@pytest.mark.parametrize("name", [
    "s4d", "s5",
    pytest.param("lowrank-gru", marks=pytest.mark.slow),  # tracing unrolls the recurrence: ~40 s
    "s4",
])
def test_compiled_model_equals_eager(name, monkeypatch):
    """torch.compile(fullgraph=True) on the CPU with the torch reference kernels gives the eager output."""
    from ssm.kernels import dispatch

    monkeypatch.setenv("SSM_KERNEL_BACKEND", "torch")
    dispatch.reset_cache()
    torch._dynamo.reset()
    kw = {k: v for k, v in LAYERS[name].items() if k != "bidirectional"}
    m = SequenceModel(d_input=2, d_output=3, d_model=8, n_layers=2, layer=name, layer_kwargs=kw).eval()
    x = torch.randn(2, 12, 2)
    ref = m(x)  # eager first: backend probes run outside the trace
    try:
        out = torch.compile(m, fullgraph=True, backend="aot_eager")(x)
    finally:
        dispatch.reset_cache()
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
