"""Pathfinder: the generator's geometry and image statistics, and the loader on the release layout."""
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lra import PathfinderDataModule, PathXDataModule, prepare_pathfinder
from lra.generators import pathfinder as gen
from lra.release import RELEASE_URL

from lra_helpers import leftovers

SPEC = gen.SPECS[32]


@pytest.fixture(scope="module")
def samples():
    return [gen.draw_sample(5, i, SPEC) for i in range(40)]


def test_markers_sit_on_snake_ends_and_define_the_label(samples):
    for s in samples:
        ends = [(snake[0, 0], snake[-1, 1]) for snake in s.snakes[:2]]
        for (snake, end), m in zip(s.marked, s.markers):
            np.testing.assert_allclose(m, ends[snake][end])
        same = s.marked[0][0] == s.marked[1][0]
        assert same == bool(s.label) and s.marked[0] != s.marked[1]
        assert np.linalg.norm(s.markers[0] - s.markers[1]) >= SPEC.seed_distance


def test_snakes_are_chains_of_dashes_with_gaps_and_bounded_turns(samples):
    limit = SPEC.continuity * np.pi / 4 + 1e-9
    for s in samples:
        assert [len(x) for x in s.snakes[:2]] == [14, 14] and len(s.snakes) <= 2 + SPEC.n_distractors
        assert all(len(x) == SPEC.distractor_length for x in s.snakes[2:])
        for snake in s.snakes:
            d = snake[:, 1] - snake[:, 0]
            np.testing.assert_allclose(np.linalg.norm(d, axis=1), SPEC.paddle_length)
            np.testing.assert_allclose(np.linalg.norm(snake[1:, 0] - snake[:-1, 1], axis=1), s.margin)
            angles = np.arctan2(d[:, 1], d[:, 0])
            turns = np.angle(np.exp(1j * np.diff(angles)))
            assert np.all(np.abs(turns) <= limit)
            assert snake.min() >= SPEC.border and snake.max() <= SPEC.window - SPEC.border


def test_image_statistics(samples):
    ink = round(255 * SPEC.contrast)
    for s in samples:
        img = s.image.astype(int)
        assert img.shape == (32, 32) and img.dtype == int
        assert 0.6 < (img == 0).mean() < 0.95  # mostly dark background
        for x, y in s.markers:  # the marker covers its own pixel fully
            assert img[int(y), int(x)] == 255
        far = np.ones_like(img, dtype=bool)  # away from the markers nothing is brighter than a dash
        yy, xx = np.mgrid[:32, :32] + 0.5
        for x, y in s.markers:
            far &= np.hypot(xx - x, yy - y) > SPEC.marker_radius + 1
        assert img[far].max() <= ink and img[far].max() > ink // 2
    means = [s.image.mean() for s in samples]
    pos = np.mean([m for m, s in zip(means, samples) if s.label])
    neg = np.mean([m for m, s in zip(means, samples) if not s.label])
    assert abs(pos - neg) < 0.1 * (pos + neg)  # the brightness does not give the label away


def test_labels_are_balanced_per_batch_and_output_does_not_depend_on_workers(tmp_path, monkeypatch):
    monkeypatch.setattr(gen, "BATCH", 10)
    a = gen.generate(str(tmp_path / "a"), 32, 20, seed=2, workers=1, block=3)
    b = gen.generate(str(tmp_path / "b"), 32, 20, seed=2, workers=2, block=4)
    for batch in ("0", "1"):
        lines = (a / "metadata" / f"{batch}.npy").read_text().splitlines()
        assert lines == (b / "metadata" / f"{batch}.npy").read_text().splitlines()
        assert sum(int(line.split()[3]) for line in lines) == 5 and len(lines) == 10
        assert lines[0].startswith(f"imgs/{batch} sample_0.png 0 ")
    for png in sorted((a / "imgs").rglob("*.png")):
        assert png.read_bytes() == (b / png.relative_to(a)).read_bytes()
    with pytest.raises(FileExistsError):
        gen.generate(str(tmp_path / "a"), 32, 2, seed=2, workers=1)


def test_loader_reads_the_pixels_split_and_normalises(release, data_dir):
    dm = PathfinderDataModule(data_dir=data_dir, source=release["pathfinder"], batch_size=4)
    dm.setup()
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (16, 2, 2)
    idx = np.concatenate([dm.train_set.index, dm.val_set.index, dm.test_set.index])
    assert sorted(idx.tolist()) == list(range(20))
    root = Path(release["pathfinder"]) / gen.LEVEL
    lines = (root / "metadata" / "0.npy").read_text().splitlines()
    x, y = dm.test_set[0]
    row = int(dm.test_set.index[0])
    path, label = lines[row].split()[:2], int(lines[row].split()[3])
    png = np.asarray(Image.open(root / path[0] / path[1]), dtype=np.float32).reshape(-1)
    np.testing.assert_allclose(x[0, :, 0].numpy(), (png / 255 - 0.5) / 0.5, atol=1e-6)
    assert y.tolist() == [label] and x.shape == (1, 1024, 1) and dm.vocab_size is None and dm.d_output == 2
    assert -1.0 <= float(x.min()) and float(x.max()) <= 1.0


def test_pathx_reads_128_pixel_images(release, data_dir):
    dm = PathXDataModule(data_dir=data_dir, source=release["pathx"], batch_size=2)
    dm.setup()
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (2, 16384, 1) and dm.d_input == 1 and dm.rate == 1.0


def copy_release(src: str, dest: Path) -> Path:
    import shutil

    shutil.copytree(src, dest)
    return dest


def test_bad_metadata_missing_and_broken_images_are_named(release, tmp_path):
    src = copy_release(release["pathfinder"], tmp_path / "pf")
    meta = src / gen.LEVEL / "metadata" / "0.npy"
    good = meta.read_text()
    meta.write_text(good + "imgs/0 sample_99.png 99 7\n")
    with pytest.raises(ValueError, match=rf"0.npy, line 21: .*{RELEASE_URL}"):
        prepare_pathfinder(str(src), str(tmp_path / "data"))
    meta.write_text(good)
    (src / gen.LEVEL / "imgs" / "0" / "sample_3.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(ValueError, match=r"sample_3.png: not a readable image"):
        prepare_pathfinder(str(src), str(tmp_path / "data"), workers=1)
    (src / gen.LEVEL / "imgs" / "0" / "sample_3.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"sample_3.png is listed in the metadata but missing"):
        prepare_pathfinder(str(src), str(tmp_path / "data"), workers=1)
    Image.new("L", (64, 64)).save(src / gen.LEVEL / "imgs" / "0" / "sample_3.png")
    with pytest.raises(ValueError, match=r"sample_3.png: image is 64x64, expected 32x32"):
        prepare_pathfinder(str(src), str(tmp_path / "data"), workers=1)
    assert not (tmp_path / "data" / "lra" / "pathfinder32").exists() and leftovers(tmp_path / "data") == []
    with pytest.raises(FileNotFoundError, match="metadata"):
        prepare_pathfinder(str(tmp_path), str(tmp_path / "data"))
