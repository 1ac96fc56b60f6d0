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


def test_embedding_encoder_and_masked_mean_pool_ignore_padding():
    m = model(encoder="embedding", vocab_size=7, padding_idx=0, d_input=1).eval()
    x = torch.randint(1, 7, (2, 10))
    lengths = torch.tensor([6, 10])
    y = m(x, lengths)
    x2 = x.clone()
    x2[0, 6:] = 0  # change only padding of the first sequence (causal layer: no effect on valid steps)
    torch.testing.assert_close(m(x2, lengths), y)
    assert y.shape == (2, 3)


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


def test_retrieval_model_shapes_and_symmetric_features():
    m = RetrievalModel(d_output=2, d_input=1, d_model=8, n_layers=1, layer="s4d", layer_kwargs=SMALL,
                       encoder="embedding", vocab_size=5).eval()
    a, b = torch.randint(1, 5, (3, 12)), torch.randint(1, 5, (3, 9))
    out = m((a, b), (torch.tensor([12, 5, 7]), torch.tensor([9, 9, 2])))
    assert out.shape == (3, 2) and torch.isfinite(out).all()
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


def test_lengths_reach_layers_that_take_them():
    m = model(layer="s5", layer_kwargs={"d_state": 8, "blocks": 2, "bidirectional": True}).eval()
    x = torch.randn(2, 10, 2, dtype=torch.float64)
    lengths = torch.tensor([6, 10])
    y = m(x, lengths)
    x2 = x.clone()
    x2[0, 6:] = 100.0  # padding garbage: a bidirectional layer would see it unless it masks by lengths
    torch.testing.assert_close(m(x2, lengths), y)
