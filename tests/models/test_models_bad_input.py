"""Bad input to the models: every case raises ValueError/TypeError naming the argument, what was expected and
what was received (one table row per case)."""
import pytest
import torch

from ssm.models import ResidualBlock, RetrievalModel, SequenceModel, pool

SMALL = {"d_state": 4}


def seq(**kw):
    args = dict(d_input=2, d_output=3, d_model=8, n_layers=2, layer="s4d", layer_kwargs=SMALL)
    args.update(kw)
    return SequenceModel(**args)


def tokens(**kw):
    return seq(encoder="embedding", vocab_size=5, **kw)


X = torch.randn(2, 6, 2)
T = torch.randint(1, 5, (2, 6))

# (id, call, exception type, substrings the message must contain)
CONSTRUCTION = [
    ("d_input=0", lambda: seq(d_input=0), ValueError, ["d_input", "positive", "0"]),
    ("d_input=-1", lambda: seq(d_input=-1), ValueError, ["d_input", "-1"]),
    ("d_input=1.5", lambda: seq(d_input=1.5), TypeError, ["d_input", "int", "1.5"]),
    ("d_output=0", lambda: seq(d_output=0), ValueError, ["d_output", "positive", "0"]),
    ("d_output=True", lambda: seq(d_output=True), TypeError, ["d_output", "int", "True"]),
    ("d_model=0", lambda: seq(d_model=0), ValueError, ["d_model", "0"]),
    ("n_layers=-1", lambda: seq(n_layers=-1), ValueError, ["n_layers", "-1"]),
    ("n_layers=0", lambda: seq(n_layers=0), ValueError, ["n_layers", "0"]),
    ("n_layers='2'", lambda: seq(n_layers="2"), TypeError, ["n_layers", "int", "'2'"]),
    ("dropout=1", lambda: seq(dropout=1.0), ValueError, ["dropout", "[0, 1)", "1.0"]),
    ("dropout<0", lambda: seq(dropout=-0.1), ValueError, ["dropout", "-0.1"]),
    ("vocab_size=0", lambda: seq(encoder="embedding", vocab_size=0), ValueError, ["vocab_size", "0"]),
    ("vocab_size=-3", lambda: seq(encoder="embedding", vocab_size=-3), ValueError, ["vocab_size", "-3"]),
    ("padding_idx>=vocab", lambda: tokens(padding_idx=5), ValueError, ["padding_idx", "5", "vocab_size"]),
    ("layer unknown", lambda: seq(layer="s6"), ValueError, ["layer", "s6", "s4d"]),
    ("layer_kwargs list", lambda: seq(layer_kwargs=[1]), TypeError, ["layer_kwargs", "dict", "list"]),
    ("layer_kwargs typo", lambda: seq(layer_kwargs={"d_stat": 4}), TypeError, ["d_stat", "s4d", "d_state"]),
    ("layer_kwargs d_model", lambda: seq(layer_kwargs={"d_model": 4}), TypeError, ["d_model", "layer_kwargs"]),
    ("pool", lambda: seq(pool="max"), ValueError, ["pool", "max", "mean"]),
    ("encoder", lambda: seq(encoder="conv"), ValueError, ["encoder", "conv", "linear"]),
    ("norm", lambda: seq(norm="group"), ValueError, ["norm", "group", "layer"]),
    ("retrieval d_output=0", lambda: RetrievalModel(d_output=0, d_input=1, d_model=8, n_layers=1,
                                                     layer_kwargs=SMALL), ValueError, ["d_output", "0"]),
    ("block d_model=0", lambda: ResidualBlock(0, "s4d", SMALL), ValueError, ["d_model", "0"]),
]

FORWARD = [
    ("x rank 2 for linear", lambda m: m(torch.randn(2, 6)), ValueError, ["x", "(batch, length, 2)", "(2, 6)"]),
    ("x width", lambda m: m(torch.randn(2, 6, 3)), ValueError, ["x", "2", "(2, 6, 3)"]),
    ("x ints for linear", lambda m: m(torch.ones(2, 6, 2, dtype=torch.long)), TypeError, ["x", "float", "int64"]),
    ("x not a tensor", lambda m: m([[0.0]]), TypeError, ["x", "Tensor", "list"]),
    ("lengths wrong batch", lambda m: m(X, torch.tensor([6, 6, 6])), ValueError, ["lengths", "(2,)", "(3,)"]),
    ("lengths 2-D", lambda m: m(X, torch.tensor([[6], [6]])), ValueError, ["lengths", "(2,)", "(2, 1)"]),
    ("lengths > L", lambda m: m(X, torch.tensor([6, 9])), ValueError, ["lengths", "6", "9"]),
    ("lengths negative", lambda m: m(X, torch.tensor([6, -1])), ValueError, ["lengths", "-1"]),
    ("lengths zero, mean pool", lambda m: m(X, torch.tensor([6, 0])), ValueError, ["lengths", ">= 1", "0"]),
    ("lengths float", lambda m: m(X, torch.tensor([6.0, 3.5])), TypeError, ["lengths", "int", "float32"]),
    ("lengths bool", lambda m: m(X, torch.tensor([True, True])), TypeError, ["lengths", "int", "bool"]),
    ("lengths list", lambda m: m(X, [6, 6]), TypeError, ["lengths", "Tensor", "list"]),
    ("rate 0", lambda m: m(X, rate=0.0), ValueError, ["rate", "positive", "0.0"]),
    ("rate negative", lambda m: m(X, rate=-2.0), ValueError, ["rate", "-2.0"]),
    ("rate nan", lambda m: m(X, rate=float("nan")), ValueError, ["rate", "nan"]),
    ("rate str", lambda m: m(X, rate="2"), TypeError, ["rate", "number", "'2'"]),
    ("step state too short", lambda m: m.step(X[:, 0], m.default_state(2)[:1]), ValueError,
     ["state", "2", "1"]),
    ("step state too long", lambda m: m.step(X[:, 0], m.default_state(2) * 2), ValueError, ["state", "2", "4"]),
    ("step state not a list", lambda m: m.step(X[:, 0], None), TypeError, ["state", "list", "NoneType"]),
    ("step x_t rank", lambda m: m.step(X, m.default_state(2)), ValueError, ["x_t", "(batch, 2)", "(2, 6, 2)"]),
    ("step rate 0", lambda m: m.step(X[:, 0], m.default_state(2), rate=0.0), ValueError, ["rate", "0.0"]),
]

TOKENS = [
    ("ids >= vocab_size", lambda m: m(torch.tensor([[1, 2, 5]])), ValueError, ["x", "vocab_size", "5"]),
    ("ids negative", lambda m: m(torch.tensor([[1, -2, 3]])), ValueError, ["x", "-2"]),
    ("float tokens", lambda m: m(torch.rand(2, 6)), TypeError, ["x", "int", "float32"]),
    ("tokens rank 3", lambda m: m(torch.ones(2, 6, 1, dtype=torch.long)), ValueError, ["x", "(batch, length)"]),
    ("step ids >= vocab_size", lambda m: m.step(torch.tensor([1, 7]), m.default_state(2)), ValueError,
     ["x_t", "vocab_size", "7"]),
]

POOLING = [
    ("pool how", lambda: pool(torch.zeros(2, 3, 4), None, "max"), ValueError, ["how", "max"]),
    ("last, length 0", lambda: pool(torch.zeros(2, 3, 4), torch.tensor([0, 3]), "last"), ValueError,
     ["lengths", ">= 1", "0"]),
    ("last, length > L", lambda: pool(torch.zeros(2, 3, 4), torch.tensor([4, 3]), "last"), ValueError,
     ["lengths", "3", "4"]),
    ("retrieval lengths not a pair", lambda: RetrievalModel(d_output=2, d_input=2, d_model=8, n_layers=1,
                                                             layer_kwargs=SMALL)((X, X), torch.tensor([6, 6])),
     ValueError, ["lengths", "pair"]),
]


def _check(call, exc, needles):
    with pytest.raises(exc) as info:
        call()
    msg = str(info.value)
    missing = [n for n in needles if n not in msg]
    assert not missing, f"message {msg!r} lacks {missing}"


@pytest.mark.parametrize("call,exc,needles", [c[1:] for c in CONSTRUCTION], ids=[c[0] for c in CONSTRUCTION])
def test_construction(call, exc, needles):
    _check(call, exc, needles)


@pytest.fixture(scope="module")
def float_model():
    return seq().eval()


@pytest.fixture(scope="module")
def token_model():
    return tokens(d_input=1).eval()


@pytest.mark.parametrize("call,exc,needles", [c[1:] for c in FORWARD], ids=[c[0] for c in FORWARD])
def test_forward(float_model, call, exc, needles):
    _check(lambda: call(float_model), exc, needles)


@pytest.mark.parametrize("call,exc,needles", [c[1:] for c in TOKENS], ids=[c[0] for c in TOKENS])
def test_tokens(token_model, call, exc, needles):
    _check(lambda: call(token_model), exc, needles)


@pytest.mark.parametrize("call,exc,needles", [c[1:] for c in POOLING], ids=[c[0] for c in POOLING])
def test_pooling(call, exc, needles):
    _check(call, exc, needles)


def test_length_zero_is_allowed_without_pooling_and_padding_outputs_are_zero():
    m = seq(pool="none", layer="s5", layer_kwargs={"d_state": 4, "blocks": 1}).eval()  # S5 takes lengths already
    out = m(X, torch.tensor([6, 0]))
    assert out.shape == (2, 6, 3) and torch.isfinite(out).all()
    assert (out[1] == 0).all() and (out[0] != 0).any()
