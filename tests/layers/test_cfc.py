"""CfC: equal to ncps.torch.CfC for the same weights, irregular time stamps, wired recurrence honoured, contract."""
import pytest
import torch
from torch import nn

from ssm.layers import build, set_checks
from ssm.layers.cfc import CfC, CfCCell
from ssm.layers.wirings import NCP, LowRankSparse, Wiring

B, L, H = 3, 7, 5


@pytest.fixture
def float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # ncps allocates its zero state in the default dtype
    yield
    torch.set_default_dtype(old)


def load_from_ncps(ours: CfC, theirs) -> None:
    """Copy an ncps.torch.CfC's weights into ours (first layer on [x; h] split into W_in, W_rec)."""
    cells = theirs.rnn_cell._layers if hasattr(theirs.rnn_cell, "_layers") else [theirs.rnn_cell]
    with torch.no_grad():
        for mine, cell in zip(ours.cells, cells):
            heads = [cell.ff1] + ([] if mine.mode == "pure" else [cell.ff2, cell.time_a, cell.time_b])
            W_heads = torch.cat([h.weight for h in heads])
            b_heads = torch.cat([h.bias for h in heads])
            if cell.backbone_layers > 0:
                lins = [m for m in cell.backbone if isinstance(m, nn.Linear)]
                W, b = lins[0].weight, lins[0].bias
                for dst, src in zip(mine.backbone, lins[1:]):
                    dst.load_state_dict(src.state_dict())
                mine.heads.weight.copy_(W_heads)
                mine.heads.bias.copy_(b_heads)
            else:
                W, b = W_heads, b_heads
            mine.w_in.weight.copy_(W[:, : mine.input_size])
            mine.w_rec.weight.copy_(W[:, mine.input_size:])
            mine.bias.copy_(b)
            if mine.mode == "pure":
                mine.w_tau.copy_(cell.w_tau[0])
                mine.A.copy_(cell.A[0])
        if ours.mixed_memory:  # ncps gate order [g, i, f, o] -> torch's [i, f, g, o]
            perm = lambda w: torch.cat([w.chunk(4)[k] for k in (1, 2, 0, 3)])  # noqa: E731
            ours.lstm_ih.weight.copy_(perm(theirs.lstm.input_map.weight))
            ours.lstm_ih.bias.copy_(perm(theirs.lstm.input_map.bias))
            ours.lstm_hh.weight.copy_(perm(theirs.lstm.recurrent_map.weight))
        if isinstance(ours.readout, nn.Linear):
            ours.readout.load_state_dict(theirs.fc.state_dict())


CASES = [  # mode, activation, backbone_layers, mixed_memory, proj_size
    ("default", "lecun_tanh", 1, False, None), ("no_gate", "silu", 2, False, 4), ("pure", "relu", 1, True, None),
    ("default", "gelu", 0, True, 3), ("pure", "tanh", 0, False, None), ("no_gate", "lecun_tanh", 1, True, None)]


@pytest.mark.parametrize("mode,act,layers,mixed,proj", CASES)
def test_dense_cfc_equals_ncps(float64, mode, act, layers, mixed, proj):
    ncps = pytest.importorskip("ncps.torch")
    torch.manual_seed(0)
    units = H if proj is None else 6  # without proj_size our output must already be d_model wide
    theirs = ncps.CfC(H, units, proj_size=proj, mixed_memory=mixed, mode=mode, activation=act,
                      backbone_units=8, backbone_layers=layers)
    ours = CfC(H, units=units, proj_size=proj, mixed_memory=mixed, mode=mode, backbone_activation=act, backbone_units=8,
               backbone_layers=layers)
    load_from_ncps(ours, theirs)
    x = torch.randn(B, L, H)
    h0 = torch.randn(B, units)
    state = (h0, torch.randn(B, units)) if mixed else h0
    y, s = ours(x, state)
    yt, st = theirs(x, state)
    torch.testing.assert_close(y, yt, rtol=1e-12, atol=1e-12)
    for a, b in zip(s if mixed else [s], st if mixed else [st]):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", ["default", "pure"])
def test_timespans_both_shapes_equal_ncps_per_sample(float64, mode):
    """ncps squeezes ts to (B,), which broadcasts against (B, units) only for B = 1: compare sample by sample."""
    ncps = pytest.importorskip("ncps.torch")
    torch.manual_seed(1)
    theirs = ncps.CfC(H, H, mode=mode, backbone_units=8)
    ours = CfC(H, mode=mode, backbone_units=8)
    load_from_ncps(ours, theirs)
    x, ts = torch.randn(B, L, H), torch.rand(B, L) * 2
    y2, s2 = ours(x, timespans=ts)
    y3, s3 = ours(x, timespans=ts.unsqueeze(-1))
    torch.testing.assert_close(y2, y3, rtol=0, atol=0)
    yt = torch.cat([theirs(x[i:i + 1], timespans=ts[i:i + 1])[0] for i in range(B)])
    torch.testing.assert_close(y2, yt, rtol=1e-12, atol=1e-12)
    assert not torch.allclose(y2, ours(x)[0])  # the time stamps matter


def ncps_wiring_copy(w) -> Wiring:
    return Wiring.from_adjacency(torch.as_tensor(w.adjacency_matrix), torch.as_tensor(w.sensory_adjacency_matrix),
                                 [w.get_neurons_of_layer(l) for l in range(w.num_layers)], w.output_dim)


@pytest.mark.parametrize("kind", ["fully_connected", "ncp"])
@pytest.mark.parametrize("mode", ["default", "pure"])
def test_wired_cfc_equals_ncps_with_dense_recurrence(float64, kind, mode):
    ncps = pytest.importorskip("ncps")
    torch.manual_seed(2)
    if kind == "ncp":
        w = ncps.wirings.NCP(4, 3, 2, sensory_fanout=2, inter_fanout=2, recurrent_command_synapses=3, motor_fanin=2)
    else:
        w = ncps.wirings.FullyConnected(6)
    theirs = ncps.torch.CfC(H, w, proj_size=H, mode=mode, mixed_memory=True)
    ours = CfC(H, wiring=ncps_wiring_copy(w), proj_size=H, mode=mode, mixed_memory=True,
               dense_recurrent=(kind == "ncp"))  # FullyConnected has every synapse: honouring it changes nothing
    load_from_ncps(ours, theirs)
    x, ts = torch.randn(1, L, H), torch.rand(1, L) + 0.5
    y, (h, c) = ours(x, timespans=ts)
    yt, (ht, ct) = theirs(x, timespans=ts)
    torch.testing.assert_close(y, yt, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(h, ht, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode,mask_gates", [("pure", False), ("default", True)])
def test_wired_cfc_honours_recurrent_synapses(mode, mask_gates):
    torch.manual_seed(3)
    w = NCP(4, 5, 2, sensory_fanout=2, inter_fanout=2, recurrent_command_synapses=4, motor_fanin=2, seed=1)
    layer = CfC(H, wiring=w, mode=mode, mask_gates=mask_gates).double()
    dense = CfC(H, wiring=w, mode=mode, mask_gates=mask_gates, dense_recurrent=True).double()
    for l, (cell, dcell) in enumerate(zip(layer.cells, dense.cells)):
        n = cell.hidden_size
        u = torch.randn(1, cell.w_in.weight.shape[0], dtype=torch.float64)
        h = torch.randn(1, n, dtype=torch.float64)
        jac = torch.autograd.functional.jacobian(lambda h: cell.recur(u, h, 0.7), h).reshape(n, n)
        allowed = w.recurrent_mask(l).bool()  # (dest, src): within-layer synapses + own state
        assert torch.all(jac[~allowed] == 0)
        assert (jac[allowed] != 0).all()
        dcell.load_state_dict(cell.state_dict() | {k: v for k, v in dcell.state_dict().items() if "mask" in k})
        djac = torch.autograd.functional.jacobian(lambda h: dcell.recur(u, h, 0.7), h).reshape(n, n)
        assert (djac != 0).all()  # ncps-style: every neuron of the layer reads every other
    command = w.layers()[1]
    within = (w.adjacency[command][:, command] != 0).T.float() + torch.eye(len(command))
    assert torch.equal(w.recurrent_mask(1), within.clamp(max=1))
    assert 0 < within.clamp(max=1).sum() < len(command) ** 2  # the test wiring is really sparse within the layer


def test_masks_are_buffers_and_readout_maps_motor_neurons_to_d_model():
    w = NCP(4, 3, 2, sensory_fanout=2, inter_fanout=2, recurrent_command_synapses=2, motor_fanin=2)
    layer = CfC(H, wiring=w)
    names = [n for n, _ in layer.named_parameters()]
    assert not any("mask" in n for n in names)
    buffers = dict(layer.named_buffers())
    assert {"cells.0.w_in.mask", "cells.1.w_rec.mask", "cells.2.w_in.mask"} <= set(buffers)
    assert isinstance(layer.readout, nn.Linear) and layer.readout.in_features == 2 and layer.output_size == 2
    y, h = layer(torch.randn(B, L, H))
    assert y.shape == (B, L, H) and h.shape == (B, 9)
    lrs = CfC(H, units=8, wiring=LowRankSparse(rank=2, sparsity=0.5))
    assert "cells.0.w_rec.mask" in dict(lrs.named_buffers()) and "cells.0.w_rec.W1" in dict(lrs.named_parameters())


@pytest.mark.parametrize("wiring", [None, "lowrank_sparse", {"name": "autoncp", "output_size": 3},
                                    {"name": "random", "sparsity": 0.5}])
@pytest.mark.parametrize("mixed", [False, True])
def test_step_loop_and_continuation_equal_forward_with_timespans(wiring, mixed):
    torch.manual_seed(4)
    layer = build("cfc", d_model=H, units=8, wiring=wiring, mixed_memory=mixed, backbone_units=None).double()
    x, ts = torch.randn(B, L, H, dtype=torch.float64), torch.rand(B, L, dtype=torch.float64) + 0.1
    y, s = layer(x, timespans=ts)
    state, ys = layer.default_state(B, dtype=torch.float64), []
    for t in range(L):
        yt, state = layer.step(x[:, t], state, ts=ts[:, t])
        ys.append(yt)
    torch.testing.assert_close(torch.stack(ys, 1), y, rtol=1e-10, atol=1e-10)
    y1, s1 = layer(x[:, :3], timespans=ts[:, :3])
    y2, _ = layer(x[:, 3:], s1, timespans=ts[:, 3:])
    torch.testing.assert_close(torch.cat([y1, y2], 1), y, rtol=1e-10, atol=1e-10)


def test_cell_forward_is_project_then_recur():
    torch.manual_seed(5)
    cell = CfCCell(H, 4, backbone_units=6, backbone_layers=2).double()
    x, h = torch.randn(B, H, dtype=torch.float64), torch.randn(B, 4, dtype=torch.float64)
    z = torch.cat([x, h], 1) @ torch.cat([cell.w_in.weight, cell.w_rec.weight], 1).T + cell.bias
    torch.testing.assert_close(cell(x, h), cell.recur(z - h @ cell.w_rec.weight.T, h, 1.0))


def test_bad_arguments_raise_value_error():
    with pytest.raises(ValueError, match="mode"):
        CfC(H, mode="fast")
    with pytest.raises(ValueError, match="backbone_activation"):
        CfC(H, backbone_activation="softplus")
    with pytest.raises(ValueError, match="wiring"):
        CfC(H, wiring="grid")
    with pytest.raises(ValueError, match="backbone"):
        CfC(H, wiring="fully_connected", backbone_layers=2)
    with pytest.raises(ValueError, match="units"):
        CfC(H, units=0)
    layer = CfC(H, units=4, mixed_memory=True, backbone_units=4)
    x = torch.randn(B, L, H)
    with pytest.raises(ValueError, match=r"timespans must have shape \(3, 7\) or \(3, 7, 1\)"):
        layer(x, timespans=torch.ones(B, L, 2))
    set_checks(finite=True)  # value checks are opt-in
    try:
        with pytest.raises(ValueError, match="timespans must be finite"):
            layer(x, timespans=torch.full((B, L), float("inf")))
    finally:
        set_checks(finite=False)
    with pytest.raises(TypeError, match=r"state must be a tuple of 2 tensors"):
        layer(x, torch.zeros(B, 4))
    with pytest.raises(ValueError, match=r"state\[0\] must have shape \(3, 4\)"):
        layer(x, (torch.zeros(B, 5), torch.zeros(B, 4)))
    with pytest.raises(ValueError, match="ts must be"):
        layer.step(x[:, 0], layer.default_state(B), ts=torch.ones(B + 1))


def test_inside_the_residual_backbone_with_a_wiring_config():
    from ssm.models import SequenceModel

    model = SequenceModel(d_input=3, d_output=2, d_model=8, n_layers=2, layer="cfc",
                          layer_kwargs={"units": 12, "wiring": {"name": "autoncp", "output_size": 4}})
    assert model(torch.randn(B, L, 3)).shape == (B, 2)
    assert model.blocks[0].layer.output_size == 4 and model.blocks[0].layer.readout.out_features == 8
