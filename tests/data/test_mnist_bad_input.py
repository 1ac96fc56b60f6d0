"""Bad MNIST files and settings: each fails naming the file (or setting) and what is wrong; nothing falls back to
the offline subset silently, and nothing half-written is left. One table row per case."""
import gzip
import struct

import pytest
import torch

from ssm.cli import main
from ssm.data import MNISTDataModule, prepare_mnist

STEMS = {"train_x": "train-images-idx3-ubyte", "train_y": "train-labels-idx1-ubyte",
         "test_x": "t10k-images-idx3-ubyte", "test_y": "t10k-labels-idx1-ubyte"}


def idx_bytes(arr):
    return struct.pack(">BBBB", 0, 0, 8, arr.dim()) + struct.pack(f">{arr.dim()}I", *arr.shape) + \
        arr.to(torch.uint8).numpy().tobytes()


def write_set(d, n_train=20, n_test=10, gz=False, **override):
    """The four idx files in `d`; `override[key] = bytes` replaces one file's content (None: leave it out)."""
    d.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(0)
    content = {"train_x": idx_bytes(torch.randint(0, 256, (n_train, 28, 28), generator=g)),
               "train_y": idx_bytes(torch.arange(n_train) % 10),
               "test_x": idx_bytes(torch.randint(0, 256, (n_test, 28, 28), generator=g)),
               "test_y": idx_bytes(torch.arange(n_test) % 10)}
    content.update(override)
    for key, data in content.items():
        if data is not None:
            (d / (STEMS[key] + (".gz" if gz else ""))).write_bytes(gzip.compress(data) if gz else data)
    return d


def labels(values):
    return idx_bytes(torch.tensor(values))


# (id, files to write in <tmp>/mnist as write_set kwargs, substrings of the error)
BAD_FILES = [
    ("label 200", dict(train_y=labels([200] + [1] * 19)), ["train-labels-idx1-ubyte", "0..9", "200"]),
    ("6-byte file", dict(test_y=b"\x00\x00\x08\x01\x00\x00"), ["t10k-labels-idx1-ubyte", "header", "6 bytes"]),
    ("empty file", dict(test_x=b""), ["t10k-images-idx3-ubyte", "0 bytes"]),
    ("truncated body", dict(train_x=idx_bytes(torch.zeros(20, 28, 28))[:-5]), ["train-images-idx3-ubyte",
                                                                                 "truncated"]),
    ("trailing bytes", dict(train_x=idx_bytes(torch.zeros(20, 28, 28)) + b"xx"), ["train-images-idx3-ubyte",
                                                                                    "2 bytes"]),
    ("float magic", dict(train_y=b"\x00\x00\x0d\x01" + labels([1] * 20)[4:]), ["train-labels-idx1-ubyte", "magic"]),
    ("counts differ", dict(train_y=labels([1] * 19)), ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "20",
                                                       "19"]),
    ("images 20x20", dict(test_x=idx_bytes(torch.zeros(10, 20, 20))), ["t10k-images-idx3-ubyte", "28, 28",
                                                                        "(10, 20, 20)"]),
    ("labels 2-D", dict(test_y=idx_bytes(torch.zeros(10, 2))), ["t10k-labels-idx1-ubyte", "(10, 2)"]),
    ("one file missing", dict(test_y=None), ["t10k-labels-idx1-ubyte", "missing"]),
]


@pytest.mark.parametrize("files,needles", [c[1:] for c in BAD_FILES], ids=[c[0] for c in BAD_FILES])
@pytest.mark.parametrize("how", ["data_dir", "idx_dir"])
def test_bad_idx_files(tmp_path, files, needles, how):
    d = write_set(tmp_path / "mnist", **files)
    with pytest.raises((ValueError, FileNotFoundError)) as info:
        prepare_mnist(str(tmp_path), idx_dir=str(d) if how == "idx_dir" else None)
    missing = [n for n in needles if n not in str(info.value)]
    assert not missing, f"{info.value} lacks {missing}"
    assert not list(tmp_path.rglob("*.pt")) and not list(tmp_path.rglob(".*tmp"))  # nothing (half-)written


GZ = [
    ("truncated gz", lambda b: gzip.compress(b)[:-20], ["train-images-idx3-ubyte.gz", "gzip"]),
    ("not gzip", lambda b: b"plain bytes, not gzip", ["train-images-idx3-ubyte.gz", "gzip"]),
]


@pytest.mark.parametrize("corrupt,needles", [c[1:] for c in GZ], ids=[c[0] for c in GZ])
def test_bad_gz_files(tmp_path, corrupt, needles):
    d = write_set(tmp_path / "mnist", gz=True)
    raw = idx_bytes(torch.randint(0, 256, (20, 28, 28)))
    (d / "train-images-idx3-ubyte.gz").write_bytes(corrupt(raw))
    with pytest.raises(ValueError) as info:
        prepare_mnist(str(tmp_path))
    missing = [n for n in needles if n not in str(info.value)]
    assert not missing, f"{info.value} lacks {missing}"


def test_missing_idx_dir_does_not_fall_back(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        prepare_mnist(str(tmp_path), idx_dir=str(tmp_path / "nowhere"))
    assert "nowhere" in str(info.value) and "idx_dir" in str(info.value)


def run(argv, capsys):
    try:
        rc = main(argv)
    except SystemExit as e:
        rc = f"SystemExit({e.code})"
    return rc, [line for line in capsys.readouterr().err.splitlines() if line.strip()]


CLI = [
    ("idx_dir missing", lambda d: ["--idx_dir", str(d / "nowhere")], ["nowhere", "idx_dir"]),
    ("idx_dir lacks a file", lambda d: ["--idx_dir", str(write_set(d / "x", train_x=None))],
     ["train-images-idx3-ubyte", "missing"]),
    ("bad label", lambda d: ["--idx_dir", str(write_set(d / "x", test_y=labels([10] * 10)))],
     ["t10k-labels-idx1-ubyte", "10"]),
    ("source idx, nothing there", lambda d: ["--source", "idx"], ["idx files", "data_dir"]),
]


@pytest.mark.parametrize("extra,needles", [c[1:] for c in CLI], ids=[c[0] for c in CLI])
def test_prepare_cli_prints_one_line(tmp_path, capsys, extra, needles):
    rc, lines = run(["data", "prepare", "mnist", "--data_dir", str(tmp_path / "data"), *extra(tmp_path)], capsys)
    assert rc == 2 and len(lines) == 1 and lines[0].startswith("ssm data"), (rc, lines)
    missing = [n for n in needles if n not in lines[0]]
    assert not missing, f"{lines[0]!r} lacks {missing}"


def test_prepare_cli_says_which_source_it_used(tmp_path, capsys):
    write_set(tmp_path / "mnist")
    assert main(["data", "prepare", "mnist", "--data_dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "idx files" in out and str(tmp_path / "mnist") in out


SETTINGS = [
    ("batch_size 0", dict(batch_size=0), ValueError, ["batch_size", "0"]),
    ("batch_size float", dict(batch_size=2.5), TypeError, ["batch_size", "int", "2.5"]),
    ("limit 0", dict(limit=0), ValueError, ["limit", "0"]),
    ("limit negative", dict(limit=-5), ValueError, ["limit", "-5"]),
    ("val_fraction 1", dict(val_fraction=1.0), ValueError, ["val_fraction", "[0, 1)", "1.0"]),
    ("source", dict(source="web"), ValueError, ["source", "web", "subset"]),
    ("num_workers", dict(num_workers=-1), ValueError, ["num_workers", "-1"]),
]


@pytest.mark.parametrize("kwargs,exc,needles", [c[1:] for c in SETTINGS], ids=[c[0] for c in SETTINGS])
def test_bad_settings(kwargs, exc, needles):
    with pytest.raises(exc) as info:
        MNISTDataModule(**kwargs)
    missing = [n for n in needles if n not in str(info.value)]
    assert not missing, f"{info.value} lacks {missing}"
