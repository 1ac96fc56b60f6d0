"""Text (IMDB), Retrieval (AAN) and Image (CIFAR-10): loaders on small files in the exact release formats."""
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lra import (ImageDataModule, RetrievalDataModule, TextDataModule, prepare_image, prepare_retrieval,
                 prepare_text, synthetic)
from lra.image import MEAN, STD, grayscale
from lra.release import RELEASE_URL
from ssm.models import RetrievalModel

from lra_helpers import leftovers


def imdb(tmp_path: Path, reviews: dict) -> Path:
    """aclImdb/{split}/{cls}/<id>_<rating>.txt from {(split, cls): [texts]}."""
    for (split, cls), texts in reviews.items():
        d = tmp_path / "aclImdb" / split / cls
        d.mkdir(parents=True, exist_ok=True)
        for i, t in enumerate(texts):
            (d / f"{i}_{8 if cls == 'pos' else 2}.txt").write_text(t, encoding="utf-8")
    return tmp_path / "aclImdb"


REVIEWS = {("train", "neg"): ["bad film", "dull<br />", "awful"], ("train", "pos"): ["good film", "éé"],
           ("test", "neg"): ["bad zzz"], ("test", "pos"): ["good"]}


def test_text_vocabulary_min_freq_truncation_and_val_equals_test(tmp_path):
    src = imdb(tmp_path, REVIEWS)
    prepare_text(str(src), str(tmp_path), l_max=6, min_freq=2)
    dm = TextDataModule(data_dir=str(tmp_path), l_max=6, min_freq=2, batch_size=8)
    dm.setup()
    vocab = dm.manifest["vocab"]
    # kept training text: "bad f", "dull<", "awful", "good ", "éé"; characters seen twice or more:
    assert vocab[:3] == ["<pad>", "<unk>", "<eos>"] and set(vocab[3:]) == set("ad ulfoé")
    x, y, lengths = dm.train_set[0]  # review 0: "bad film" -> "bad f" + <eos>, label 0 (neg first)
    ids = {t: i for i, t in enumerate(vocab)}
    assert x.tolist() == [[1, ids["a"], ids["d"], ids[" "], ids["f"], 2]] and y.tolist() == [0]  # b: <unk>
    assert len(dm.val_set) == len(dm.test_set) == 2 and dm.val_set.tokens is dm.test_set.tokens
    labels = sorted(int(dm.train_set[i][1]) for i in range(len(dm.train_set)))
    assert labels == [0, 0, 0, 1, 1] and dm.vocab_size == len(vocab) and dm.d_output == 2
    dm2 = TextDataModule(data_dir=str(tmp_path), l_max=6, min_freq=2, val_fraction=0.4)
    dm2.setup()
    assert (len(dm2.train_set), len(dm2.val_set)) == (3, 2)
    assert not set(dm2.train_set.index) & set(dm2.val_set.index)


def test_text_bad_files_are_named(tmp_path):
    src = imdb(tmp_path, REVIEWS)
    (src / "test" / "pos" / "0_8.txt").write_bytes(b"fine\nthen \xff broken")
    with pytest.raises(ValueError, match=rf"0_8.txt, line 2: not UTF-8.*{RELEASE_URL}"):
        prepare_text(str(src), str(tmp_path / "data"))
    (src / "test" / "pos" / "0_8.txt").unlink()
    (src / "test" / "pos" / "review.txt").write_text("x")
    with pytest.raises(ValueError, match=r"review.txt: review files are named <id>_<rating>.txt"):
        prepare_text(str(src), str(tmp_path / "data"))
    shutil.rmtree(src / "test" / "pos")
    with pytest.raises(FileNotFoundError, match=r"test/pos"):
        prepare_text(str(src), str(tmp_path / "data"))
    assert not (tmp_path / "data" / "lra").exists() or leftovers(tmp_path / "data") == []


def aan(tmp_path: Path, lines_by_split: dict) -> Path:
    d = tmp_path / "tsv_data"
    d.mkdir(parents=True, exist_ok=True)
    for split, lines in lines_by_split.items():
        (d / f"new_aan_pairs.{split}.tsv").write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return d


PAIRS = {"train": ["1.0\tp1\tp2\tabc\tabcd", "0\tp3\tp4\tcab\tb"], "eval": ["1\tp5\tp6\tab\tx"],
         "test": ["0.0\tp7\tp8\tc\tcc"]}


def test_retrieval_pairs_batches_and_model(tmp_path):
    src = aan(tmp_path, PAIRS)
    prepare_retrieval(str(src), str(tmp_path), l_max=4)
    dm = RetrievalDataModule(data_dir=str(tmp_path), l_max=4, batch_size=2)
    dm.setup()
    vocab = dm.manifest["vocab"]
    # kept training characters "abc", "abc", "cab", "b": b 4, then a and c 3 each (ties by symbol); d was cut off
    assert vocab == ["<pad>", "<unk>", "<eos>", "b", "a", "c"]
    (x1, x2), y, (l1, l2) = next(iter(dm.train_dataloader()))
    order = torch.argsort(y)  # label 0 first
    assert y[order].tolist() == [0, 1]
    assert x1[order].tolist() == [[5, 4, 3, 2], [4, 3, 5, 2]]  # "cab", "abc" + <eos>
    assert x2[order].tolist() == [[3, 2, 0, 0], [4, 3, 5, 2]] and l2[order].tolist() == [2, 4]  # "b", "abc|d"
    vx, vy, vl = next(iter(dm.val_dataloader()))
    assert vx[1].tolist() == [[1, 2, 0]] and vl[0].tolist() == [3]  # x unseen: <unk>; both padded to length 3
    model = RetrievalModel(d_output=2, d_model=8, n_layers=1, layer="s4d", layer_kwargs={"d_state": 4},
                           encoder="embedding", vocab_size=dm.vocab_size, padding_idx=0)
    assert model((x1, x2), (l1, l2)).shape == (2, 2)


@pytest.mark.parametrize("line,needle", [("1\tp1\tp2\tabc", "expected 5 tab-separated fields"),
                                         ("2\tp1\tp2\ta\tb", "the label must be 0 or 1")])
def test_retrieval_malformed_line_is_named(tmp_path, line, needle):
    src = aan(tmp_path, dict(PAIRS, eval=PAIRS["eval"] + [line]))
    with pytest.raises(ValueError, match=rf"new_aan_pairs.eval.tsv, line 2: {needle}"):
        prepare_retrieval(str(src), str(tmp_path / "data"))
    assert not (tmp_path / "data" / "lra" / "retrieval").exists() and leftovers(tmp_path / "data") == []


def test_image_grayscale_matches_pil_and_inputs_are_normalised(tmp_path):
    src = synthetic.write_cifar(tmp_path, per_batch=20, seed=1)
    rgb = pickle.load(open(src / "data_batch_1", "rb"), encoding="bytes")[b"data"]
    planes = rgb.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    expect = np.stack([np.asarray(Image.fromarray(im, "RGB").convert("L")).reshape(-1) for im in planes])
    np.testing.assert_array_equal(grayscale(rgb), expect)
    prepare_image(str(src), str(tmp_path))
    dm = ImageDataModule(data_dir=str(tmp_path), batch_size=4)
    dm.setup()
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (90, 10, 20)
    rows = np.concatenate([dm.train_set.index, dm.val_set.index])
    assert sorted(rows.tolist()) == list(range(100))
    x, y = dm.train_set[int(np.where(dm.train_set.index == 3)[0][0])]
    np.testing.assert_allclose(x[0, :, 0].numpy(), (expect[3] / 255 - MEAN) / STD, rtol=1e-5, atol=1e-5)
    assert x.shape == (1, 1024, 1) and dm.d_output == 10 and dm.vocab_size is None


def test_image_rejects_foreign_pickles_and_bad_batches(tmp_path):
    src = synthetic.write_cifar(tmp_path, per_batch=2)
    with open(src / "test_batch", "wb") as f:
        pickle.dump({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1], b"x": Path("/")}, f)
    with pytest.raises(ValueError, match=r"test_batch: not a CIFAR-10 python batch .*refusing"):
        prepare_image(str(src), str(tmp_path / "data"))
    with open(src / "test_batch", "wb") as f:
        pickle.dump({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, f)
    with pytest.raises(ValueError, match=r"test_batch: data must be \(n, 3072\)"):
        prepare_image(str(src), str(tmp_path / "data"))
    (src / "data_batch_2").unlink()
    with pytest.raises(FileNotFoundError, match=r"data_batch_2"):
        prepare_image(str(src), str(tmp_path / "data"))
    assert not (tmp_path / "data" / "lra" / "image").exists()
