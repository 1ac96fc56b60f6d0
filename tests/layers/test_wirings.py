"""Wirings: NCP / AutoNCP / Random / FullyConnected structure, low-rank sparse matrices under training."""
import pytest
import torch

from ssm.layers.cfc import CfC
from ssm.layers.wirings import (NCP, AutoNCP, FullyConnected, LowRankSparse, MaskedWeight, Random, Wiring,
                                make_wiring)


def test_lowrank_sparse_factors_are_the_truncated_svd_and_mask_has_the_sparsity():
    torch.manual_seed(0)
    init = torch.randn(12, 9, dtype=torch.float64)
    w = LowRankSparse(rank=3, sparsity=0.25, seed=1).build(init)
    U, S, Vh = torch.linalg.svd(init)
    torch.testing.assert_close(w.W1 @ w.W2, U[:, :3] @ torch.diag(S[:3]) @ Vh[:3])  # best rank-3 approximation
    torch.testing.assert_close(w.W1.T @ w.W1, w.W2 @ w.W2.T)  # balanced split S^(1/2) on both sides
    assert int((w.mask == 0).sum()) == round(0.25 * 12 * 9)
    full = LowRankSparse(rank=9, sparsity=0.0).build(init)
    torch.testing.assert_close(full(), init)  # full rank, no mask: the initial matrix itself


def test_lowrank_sparse_cfc_keeps_rank_and_zeros_through_training():
    torch.manual_seed(1)
    layer = CfC(4, units=10, wiring={"name": "lowrank_sparse", "rank": 2, "sparsity": 0.6}, backbone_units=12)
    w = layer.cells[0].w_rec
    mask0 = w.mask.clone()
    assert all(p is not w.mask for p in layer.parameters())
    opt = torch.optim.AdamW(layer.parameters(), lr=0.05, weight_decay=0.1)
    x, target = torch.randn(8, 6, 4), torch.randn(8, 6, 4)
    for _ in range(5):
        opt.zero_grad()
        loss = (layer(x)[0] - target).square().mean()
        loss.backward()
        opt.step()
    W = w().detach()
    assert W.shape == (12, 10) and torch.equal(w.mask, mask0)
    assert torch.all(W[mask0 == 0] == 0)  # exactly zero, not small
    assert (W[mask0 == 1] != 0).all()
    assert torch.linalg.matrix_rank(w.W1 @ w.W2) <= 2
    assert not torch.equal(w.W1.detach(), LowRankSparse(2, 0.6).build(torch.zeros(12, 10)).W1)  # it trained


def test_ncp_structure_follows_the_layers():
    w = NCP(6, 4, 2, sensory_fanout=3, inter_fanout=2, recurrent_command_synapses=5, motor_fanin=2, seed=3).build(5)
    inter, command, motor = w.layers()
    assert sorted(inter + command + motor) == list(range(12)) and motor == [0, 1] and w.output_dim == 2
    A = w.adjacency != 0
    allowed = torch.zeros_like(A)
    for src, dest in ((inter, command), (command, command), (command, motor)):
        allowed[torch.tensor(src).unsqueeze(1), torch.tensor(dest)] = True
    assert not (A & ~allowed).any()  # no synapse outside sensory->inter->command(->command)->motor
    S = w.sensory != 0
    assert not S[:, command + motor].any() and S[:, inter].any(0).all()  # every inter neuron is reachable
    assert A[inter][:, command].any(0).all() and (A[command][:, motor].sum(0) >= 2).all()
    assert (S[:, inter].sum(1) >= 3).all()  # sensory fan-out
    assert set(torch.unique(w.adjacency).tolist()) <= {-1, 0, 1}
    again = NCP(6, 4, 2, 3, 2, 5, 2, seed=3).build(5)
    assert torch.equal(again.adjacency, w.adjacency) and torch.equal(again.sensory, w.sensory)
    assert w.input_mask(1).shape == (4, 6) and w.recurrent_mask(1).shape == (4, 4)


def test_autoncp_sizes_and_random_density():
    w = AutoNCP(20, 4, sparsity=0.5)
    assert w.units == 20 and w.output_dim == 4 and len(w.layers()[-1]) == 4 and w.num_layers == 3
    r = Random(10, sparsity=0.7, seed=2).build(6)
    assert r.synapse_count == 30 and int((r.sensory != 0).sum()) == 18
    fc = FullyConnected(5, self_connections=False)
    assert fc.synapse_count == 20 and torch.all(torch.diag(fc.adjacency) == 0)


def test_wiring_build_and_masks():
    w = FullyConnected(4, output_dim=2)
    with pytest.raises(ValueError, match="built"):
        w.input_mask(0)
    w.build(3)
    assert torch.equal(w.input_mask(0), torch.ones(4, 3))
    with pytest.raises(ValueError, match="input_dim"):
        w.build(5)
    custom = Wiring.from_adjacency(torch.tensor([[0, 1], [0, 0]]), torch.ones(3, 2), [[0, 1]], 1)
    assert torch.equal(custom.recurrent_mask(0, self_loops=False), torch.tensor([[0.0, 0.0], [1.0, 0.0]]))
    assert torch.equal(custom.recurrent_mask(0), torch.tensor([[1.0, 0.0], [1.0, 1.0]]))
    m = MaskedWeight(torch.ones(2, 2), torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    assert torch.equal(m(), torch.eye(2)) and [n for n, _ in m.named_parameters()] == ["weight"]


def test_make_wiring_configs_and_errors():
    assert make_wiring(None, 8) is None and make_wiring("full", 8) is None
    assert make_wiring("random", 8).units == 8
    assert make_wiring({"name": "autoncp", "output_size": 2}, 8).output_dim == 2
    lrs = make_wiring("lowrank_sparse", 8)
    assert isinstance(lrs, LowRankSparse) and lrs.rank == 2
    with pytest.raises(ValueError, match="wiring"):
        make_wiring("mesh", 8)
    with pytest.raises(ValueError, match="sparsity"):
        Random(4, sparsity=1.0)
    with pytest.raises(ValueError, match="motor_fanin"):
        NCP(4, 2, 2, 2, 2, 1, motor_fanin=3)
    with pytest.raises(ValueError, match="output_size"):
        AutoNCP(6, 4)
    with pytest.raises(ValueError, match="rank"):
        LowRankSparse(rank=0)
    with pytest.raises(ValueError, match="rank"):
        LowRankSparse(rank=5).build(torch.zeros(4, 4))
