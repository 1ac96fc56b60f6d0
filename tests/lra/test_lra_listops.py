"""ListOps: the generator's grammar and statistics, and the loader on files in the release's TSV format."""
import collections
from pathlib import Path

import numpy as np
import pytest

from lra import ListOpsDataModule, prepare_listops
from lra.generators import listops as gen
from lra.release import RELEASE_URL

from lra_helpers import leftovers


def evaluate_text(source: str) -> int:
    """An evaluator written apart from the generator: a stack machine over the printed expression."""
    stack, result = [], None
    for tok in source.replace("(", " ").replace(")", " ").split():
        if tok.startswith("["):
            stack.append((tok, []))
        elif tok == "]":
            op, args = stack.pop()
            value = {"[MIN": min, "[MAX": max, "[SM": lambda a: sum(a) % 10,
                     "[MED": lambda a: int(np.floor(np.median(a)))}[op](args)
            if stack:
                stack[-1][1].append(value)
            else:
                result = value
        else:
            assert tok.isdigit() and len(tok) == 1
            if stack:
                stack[-1][1].append(int(tok))
            else:
                result = int(tok)
    assert not stack
    return result


def depth_and_arity(source: str):
    """Deepest operator nesting (the root operator at depth 1) and the argument counts of every operator."""
    depth, deepest, counts, arity = 0, 0, [], []
    for tok in source.replace("(", " ").replace(")", " ").split():
        if tok.startswith("["):
            depth += 1
            deepest = max(deepest, depth)
            counts.append(0)
        elif tok == "]":
            depth -= 1
            arity.append(counts.pop())
            if counts:
                counts[-1] += 1
        elif counts:
            counts[-1] += 1
    return deepest, arity


@pytest.fixture(scope="module")
def examples():
    return gen.chunk((7, 0, gen.ListOpsSpec())) + gen.chunk((7, 1, gen.ListOpsSpec()))


def test_labels_agree_with_an_independent_evaluator(examples):
    for text, value in examples:
        assert evaluate_text(text) == value


def test_lengths_depth_arity_and_operator_mix(examples):
    lengths = [len(text.replace("(", " ").replace(")", " ").split()) for text, _ in examples]
    assert 500 < min(lengths) and max(lengths) < 2000
    ops = collections.Counter(t for text, _ in examples for t in text.split() if t.startswith("["))
    total = sum(ops.values())
    assert set(ops) == set(gen.OPERATORS)
    assert all(abs(c / total - 0.25) < 0.03 for c in ops.values()), ops  # thousands of draws: 0.25 +- 0.01
    for text, _ in examples:
        deepest, arity = depth_and_arity(text)
        assert deepest <= 9 and 2 <= min(arity) and max(arity) <= 10  # digits fill depth 10
    assert {v for _, v in examples} == set(range(10))


def test_printing_is_left_nested_like_the_release():
    assert gen.to_text(("[MAX", [2, 9])) == "( ( ( [MAX 2 ) 9 ) ] )"
    t = ("[SM", [("[MIN", [3, 4]), 5, 8])
    assert evaluate_text(gen.to_text(t)) == gen.evaluate(t) == (3 + 5 + 8) % 10
    assert gen.evaluate(("[MED", [1, 2, 7, 9])) == 4  # floor of the median 4.5


def test_generate_writes_deduplicated_splits_independent_of_workers(tmp_path):
    a = gen.generate(str(tmp_path / "a"), 100, 20, 20, seed=3, workers=1)
    b = gen.generate(str(tmp_path / "b"), 100, 20, 20, seed=3, workers=2)
    rows = []
    for split in ("train", "val", "test"):
        text = Path(a[split]).read_text()
        assert text == Path(b[split]).read_text()
        lines = text.splitlines()
        assert lines[0] == "Source\tTarget"
        rows += [tuple(line.split("\t")) for line in lines[1:]]
    assert len(rows) == 140 == len({src for src, _ in rows})
    other = Path(gen.generate(str(tmp_path / "c"), 5, 0, 0, seed=4, workers=1)["train"]).read_text()
    assert other.splitlines()[1] not in Path(a["train"]).read_text()  # another seed, other trees


def write_tsv(folder: Path, rows_by_split: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for split, rows in rows_by_split.items():
        (folder / f"basic_{split}.tsv").write_text("Source\tTarget\n" + "".join(f"{s}\t{t}\n" for s, t in rows))
    return folder


SMALL = {"train": [("( ( ( [MAX 2 ) 9 ) ] )", 9), ("( ( ( [SM 1 ) ( ( [MIN 3 ) 4 ) ] ) ] )", 4)],
         "val": [("( ( ( [MED 5 ) 1 ) ] )", 3)], "test": [("7", 7)]}


def test_tokens_vocabulary_eos_truncation_and_padding(tmp_path):
    src = write_tsv(tmp_path / "src", SMALL)
    dest = prepare_listops(str(src), str(tmp_path / "data"), l_max=6)
    dm = ListOpsDataModule(data_dir=str(tmp_path / "data"), l_max=6, batch_size=4)
    vocab = dm.manifest["vocab"]
    assert vocab[:3] == ["<pad>", "<unk>", "<eos>"] and dm.vocab_size == len(vocab)
    assert set(vocab[3:]) == {"[MAX", "[SM", "[MIN", "]", "1", "2", "3", "4", "9"}  # train tokens only
    dm.setup()
    x, y, lengths = next(iter(dm.train_dataloader()))
    ids = {t: i for i, t in enumerate(vocab)}
    rows = {tuple(r[:n].tolist()) for r, n in zip(x, lengths)}
    assert (ids["[MAX"], ids["2"], ids["9"], ids["]"], 2) in rows  # 4 tokens + <eos>
    assert (ids["[SM"], ids["1"], ids["[MIN"], ids["3"], ids["4"], 2) in rows  # truncated to l_max - 1, + <eos>
    assert x.shape == (2, 6) and sorted(lengths.tolist()) == [5, 6] and sorted(y.tolist()) == [4, 9]
    assert (x[lengths == 5, 5] == 0).all()  # right padding with <pad> = 0
    vx, vy, vl = next(iter(dm.val_dataloader()))
    assert vx.tolist() == [[1, 1, ids["1"], ids["]"], 2]] and vy.tolist() == [3]  # [MED and 5 unseen: <unk>
    assert dm.d_output == 10 and dm.rate == 1.0 and dm.d_input == 1
    assert Path(dest, "manifest.json").exists()


def test_second_prepare_reuses_the_cache_and_a_changed_source_rebuilds_it(tmp_path):
    src = write_tsv(tmp_path / "src", SMALL)
    dest = prepare_listops(str(src), str(tmp_path))
    stamp = (dest / "train_tokens.npy").stat().st_mtime_ns
    assert prepare_listops(str(src), str(tmp_path)) == dest
    assert (dest / "train_tokens.npy").stat().st_mtime_ns == stamp
    sha = __import__("json").loads((dest / "manifest.json").read_text())["sha256"]
    write_tsv(src, {"test": [("8", 8)]})
    prepare_listops(str(src), str(tmp_path))
    manifest = __import__("json").loads((dest / "manifest.json").read_text())
    assert manifest["sha256"] != sha and manifest["sizes"]["test"] == 1
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("line,needle", [
    ("( ( ( [MAX 2 ) 9 ) ] )\t9\textra", "expected 2 tab-separated fields"),
    ("( ( ( [MAX 2 ) 9 ) ] )\t12", "target must be a digit"),
    ("( ( ( [POW 2 ) 9 ) ] )\t9", "[POW"),
    ("\t3", "nothing"),
])
def test_a_malformed_line_names_the_file_the_line_and_the_release(tmp_path, line, needle):
    src = write_tsv(tmp_path / "src", SMALL)
    with open(src / "basic_val.tsv", "a") as f:
        f.write(line + "\n")
    with pytest.raises(ValueError) as e:
        prepare_listops(str(src), str(tmp_path / "data"))
    msg = str(e.value)
    assert "basic_val.tsv, line 3" in msg and needle in msg and RELEASE_URL in msg
    assert not (tmp_path / "data" / "lra" / "listops").exists() and leftovers(tmp_path / "data") == []


def test_bad_header_non_utf8_and_missing_files(tmp_path):
    src = write_tsv(tmp_path / "src", SMALL)
    (src / "basic_test.tsv").write_text("Source,Target\n7\t7\n")
    with pytest.raises(ValueError, match=r"basic_test.tsv, line 1: expected the header"):
        prepare_listops(str(src), str(tmp_path))
    (src / "basic_test.tsv").write_bytes(b"Source\tTarget\n7\t7\n\xff\t1\n")
    with pytest.raises(ValueError, match=r"basic_test.tsv, line 3: not UTF-8"):
        prepare_listops(str(src), str(tmp_path))
    (src / "basic_test.tsv").unlink()
    with pytest.raises(FileNotFoundError, match=r"basic_test.tsv.*long-range-arena"):
        prepare_listops(str(src), str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"ssm data prepare lra-listops --source"):
        ListOpsDataModule(data_dir=str(tmp_path / "empty")).setup()


def test_a_failed_rebuild_keeps_the_previous_cache(tmp_path):
    src = write_tsv(tmp_path / "src", SMALL)
    dest = prepare_listops(str(src), str(tmp_path))
    before = (dest / "manifest.json").read_text()
    with open(src / "basic_train.tsv", "a") as f:
        f.write("broken line without a tab\n")
    with pytest.raises(ValueError):
        prepare_listops(str(src), str(tmp_path))
    assert (dest / "manifest.json").read_text() == before and leftovers(tmp_path) == []


def test_generated_files_load_like_the_release(release, data_dir):
    dm = ListOpsDataModule(data_dir=data_dir, source=release["listops"], batch_size=5)
    dm.setup()
    assert dm.manifest["sizes"] == {"train": 12, "val": 4, "test": 4}
    x, y, lengths = next(iter(dm.train_dataloader()))
    assert x.shape[0] == 5 and x.shape[1] == int(lengths.max()) and 500 < int(lengths.min())
    assert (x[torch_range(x.shape[1]) >= lengths[:, None]] == 0).all()
    assert (x[range(5), lengths - 1] == 2).all()  # <eos> last


def torch_range(n):
    import torch

    return torch.arange(n)[None, :]


def test_bad_arguments_name_themselves(tmp_path):
    with pytest.raises(ValueError, match="l_max must be an int >= 2, got 1"):
        prepare_listops(str(tmp_path), l_max=1)
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        ListOpsDataModule(batch_size=0)
