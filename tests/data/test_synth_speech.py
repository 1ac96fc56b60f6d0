"""The espeak-ng synthesiser writes a real Speech-Commands-format set that the loader reads unchanged."""
import json
import shutil

import numpy as np
import pytest
sf = pytest.importorskip("soundfile")

from ssm.cli import main
from ssm.data import synth_speech
from ssm.data.speech import SpeechCommandsDataModule, split_of

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                reason="espeak-ng is not installed (apt-get install -y espeak-ng)")


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "set"
    assert main(["data", "synth-speech", "--out", str(out), "--words", "yes", "no", "--per-word", "2",
                 "--seed", "3", "--jobs", "2"]) == 0
    return out


def test_layout_audio_and_lists(synth):
    wavs = sorted(synth.glob("*/*.wav"))
    clips = [p for p in wavs if p.parent.name != "_background_noise_"]
    assert sorted({p.parent.name for p in clips}) == ["no", "yes"] and len(clips) == 4
    for p in clips:
        x, sr = sf.read(p, dtype="int16")
        assert sr == 16000 and x.shape == (16000,)
        info = sf.info(p)
        assert info.channels == 1 and info.subtype == "PCM_16"
        loud = np.abs(x.astype(np.float64))
        # a word over quieter noise (SNR >= 5 dB): the loudest 10 ms stand well above the typical 10 ms
        frames = loud.reshape(-1, 160).mean(1)
        assert frames.max() > 2.5 * np.median(frames) and np.abs(x).max() > 0.25 * 32767
        assert p.name.split("_nohash_")[0] == synth_speech.speaker_id(
            next(c["voice"] for c in map(json.loads, (synth / "clips.jsonl").read_text().splitlines())
                 if c["word"] == p.parent.name and c["name"] == p.name))
    noise = [p for p in wavs if p.parent.name == "_background_noise_"]
    assert sorted(p.stem for p in noise) == sorted(synth_speech.NOISES)
    assert all(sf.info(p).frames == 10 * 16000 for p in noise)
    for split, name in (("val", "validation_list.txt"), ("test", "testing_list.txt")):
        listed = (synth / name).read_text().split()
        assert listed == sorted(f"{p.parent.name}/{p.name}" for p in clips if split_of(p.name) == split)


def test_loader_reads_it_unchanged(synth, tmp_path):
    dm = SpeechCommandsDataModule(source=str(synth), data_dir=str(tmp_path), classes=["yes", "no"], batch_size=2)
    dm.prepare_data()
    dm.setup()
    assert len(dm.train_set) + len(dm.val_set) + len(dm.test_set) == 4
    x, y = dm.train_set[0]
    assert x.shape == (16000, 1) and int(y) in (0, 1)


def test_same_seed_same_bytes_other_seed_other_audio(synth, tmp_path):
    again = synth_speech.synthesize(str(tmp_path / "again"), ["yes", "no"], per_word=2, seed=3, jobs=1)
    for p in sorted(synth.rglob("*.wav")):
        assert (again / p.relative_to(synth)).read_bytes() == p.read_bytes()
    other = synth_speech.synthesize(str(tmp_path / "other"), ["yes", "no"], per_word=2, seed=4, jobs=2)
    assert sorted(p.name for p in other.glob("yes/*.wav")) != sorted(p.name for p in synth.glob("yes/*.wav"))


def test_plan_spreads_voices_speeds_and_pitches():
    clips = synth_speech.plan(["go"], per_word=200, seed=0, voice_variants=["m1", "f2", "klatt"])
    assert len({c.voice for c in clips}) == 21  # 7 English voices x 3 variants
    speeds, pitches = [c.speed for c in clips], [c.pitch for c in clips]
    assert min(speeds) >= 120 and max(speeds) <= 210 and np.std(speeds) > 15
    assert min(pitches) >= 20 and max(pitches) <= 80 and np.std(pitches) > 10
    assert len({c.name for c in clips}) == 200  # <speaker>_nohash_<k> is unique per word


def test_refuses_to_overwrite_and_leaves_nothing_half_written(synth, tmp_path, monkeypatch):
    with pytest.raises(FileExistsError, match="already exists"):
        synth_speech.synthesize(str(synth), ["yes"], per_word=1)
    with pytest.raises(ValueError, match="words"):
        synth_speech.synthesize(str(tmp_path / "x"), ["Yes!"], per_word=1)
    speak = synth_speech.speak
    monkeypatch.setattr(synth_speech, "speak", lambda *a: (_ for _ in ()).throw(RuntimeError("espeak-ng failed")))
    with pytest.raises(RuntimeError, match="espeak-ng failed"):
        synth_speech.synthesize(str(tmp_path / "x"), ["yes"], per_word=2)
    assert not (tmp_path / "x").exists() and not list(tmp_path.glob(".x.partial-*"))
    monkeypatch.setattr(synth_speech, "ESPEAK", "false")  # a failing synthesiser is named in the error
    with pytest.raises(RuntimeError, match="false -v en-us"):
        speak("yes", "en-us", 150, 50)
