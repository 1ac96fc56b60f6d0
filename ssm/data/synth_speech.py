"""An offline spoken-word set in the Speech Commands v0.02 layout, synthesised with espeak-ng.

Each "speaker" is an English espeak-ng voice with a voice variant (e.g. en-gb-scotland+f3); each clip draws its
speed and pitch, is resampled to 16 kHz, trimmed, placed at a random offset in a 1 s window and mixed with a
segment of one of the generated background noises at a random SNR. Files are named <speaker>_nohash_<k>.wav, and
the validation/testing lists follow the release's hash of the speaker part, so no speaker spans two splits.
Everything is drawn from one seed before any audio is made: the output is the same for any number of jobs.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

from .speech import LIST_FILES, NOISE_DIR, SAMPLE_RATE, SC35, split_of

ESPEAK = "espeak-ng"
LANGUAGES = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029")
NOISES = ("white_noise", "pink_noise", "brown_noise", "hum")
NOISE_SECONDS = 10
SPEED = (120, 210)  # words per minute
PITCH = (20, 80)  # espeak-ng's 0..99 scale
SNR_DB = (5.0, 30.0)
PEAK = (0.3, 0.9)  # peak level of the mixed clip, as a fraction of full scale
INSTALL = "install espeak-ng (Debian/Ubuntu: `apt-get install -y espeak-ng`; macOS: `brew install espeak-ng`)"


@dataclass(frozen=True)
class Clip:
    """One planned utterance: where it goes and every random draw that shapes it."""

    word: str
    name: str
    voice: str
    speed: int
    pitch: int
    offset: float  # where the word starts in the free part of the 1 s window, in [0, 1]
    noise: str
    noise_start: int
    snr_db: float
    peak: float


def espeak_version() -> str:
    """`espeak-ng --version`, or FileNotFoundError saying how to install it."""
    if shutil.which(ESPEAK) is None:
        raise FileNotFoundError(f"{ESPEAK} is not on PATH; {INSTALL}")
    return subprocess.run([ESPEAK, "--version"], capture_output=True, text=True, check=True).stdout.strip()


def variants() -> List[str]:
    """The voice variants espeak-ng ships (`espeak-ng --voices=variant`), sorted, names without spaces."""
    espeak_version()
    out = subprocess.run([ESPEAK, "--voices=variant"], capture_output=True, text=True, check=True).stdout
    names = {line[line.index("!v/") + 3:].strip() for line in out.splitlines() if "!v/" in line}
    return sorted(n for n in names if n and " " not in n)  # "Mr serious": espeak-ng cannot select it by name


def languages() -> List[str]:
    """The English voices of LANGUAGES that this espeak-ng has (an unknown voice would silently fall back)."""
    espeak_version()
    out = subprocess.run([ESPEAK, "--voices=en"], capture_output=True, text=True, check=True).stdout
    have = {line.split()[1] for line in out.splitlines()[1:] if len(line.split()) > 1}
    found = [lang for lang in LANGUAGES if lang in have]
    if not found:
        raise RuntimeError(f"{ESPEAK} lists none of the English voices {list(LANGUAGES)}; reinstall it ({INSTALL})")
    return found


def speaker_id(voice: str) -> str:
    """An 8-hex-digit speaker name for a voice such as "en-us+m3" (the release's speakers look the same)."""
    return hashlib.sha1(voice.encode()).hexdigest()[:8]


def plan(words: Sequence[str], per_word: int, seed: int, voice_variants: Sequence[str],
         langs: Sequence[str] = LANGUAGES) -> List[Clip]:
    """All clips and their random draws, from one generator seeded by `seed`."""
    rng = np.random.default_rng(seed)
    voices = [f"{lang}+{v}" for lang in langs for v in voice_variants]
    clips, count = [], {}
    for word in words:
        for _ in range(per_word):
            voice = voices[rng.integers(len(voices))]
            k = count[(word, voice)] = count.get((word, voice), -1) + 1
            clips.append(Clip(
                word=word, name=f"{speaker_id(voice)}_nohash_{k}.wav", voice=voice,
                speed=int(rng.integers(SPEED[0], SPEED[1] + 1)), pitch=int(rng.integers(PITCH[0], PITCH[1] + 1)),
                offset=float(rng.random()), noise=NOISES[rng.integers(len(NOISES))],
                noise_start=int(rng.integers(0, (NOISE_SECONDS - 1) * SAMPLE_RATE)),
                snr_db=float(rng.uniform(*SNR_DB)), peak=float(rng.uniform(*PEAK))))
    return clips


def noise(kind: str, seed: int, seconds: int = NOISE_SECONDS) -> np.ndarray:
    """A unit-RMS background noise at 16 kHz: white, pink (1/f), brown (1/f^2) or mains hum with hiss."""
    rng = np.random.default_rng([seed, NOISES.index(kind)])
    n = seconds * SAMPLE_RATE
    white = rng.standard_normal(n)
    if kind == "white_noise":
        x = white
    elif kind in ("pink_noise", "brown_noise"):
        f = np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE)
        shape = 1.0 / np.maximum(f, 20.0) ** (0.5 if kind == "pink_noise" else 1.0)
        x = np.fft.irfft(np.fft.rfft(white) * shape, n)
    elif kind == "hum":
        t = np.arange(n) / SAMPLE_RATE
        x = sum(np.sin(2 * np.pi * 50 * h * t + rng.uniform(0, 2 * np.pi)) / h for h in (1, 2, 3, 5)) + 0.1 * white
    else:
        raise ValueError(f"kind must be one of {list(NOISES)}, got {kind!r}")
    return (x / np.sqrt(np.mean(x ** 2))).astype(np.float32)


def speak(word: str, voice: str, speed: int, pitch: int) -> np.ndarray:
    """espeak-ng's rendering of `word`, resampled to 16 kHz with torchaudio: float32 (n,)."""
    import soundfile as sf
    import torch
    import torchaudio

    run = subprocess.run([ESPEAK, "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", word],
                         capture_output=True, check=False)
    if run.returncode != 0 or not run.stdout:
        raise RuntimeError(f"{ESPEAK} -v {voice} failed on {word!r}: {run.stderr.decode(errors='replace').strip()}")
    audio, sr = sf.read(io.BytesIO(run.stdout), dtype="float32", always_2d=True)
    x = torch.from_numpy(audio[:, 0].copy())
    return torchaudio.functional.resample(x, sr, SAMPLE_RATE).numpy()


def trim(x: np.ndarray, threshold: float = 0.02) -> np.ndarray:
    """Drop leading and trailing samples quieter than `threshold` x the peak, keep at most 1 s."""
    loud = np.flatnonzero(np.abs(x) > threshold * max(np.abs(x).max(), 1e-9))
    if loud.size == 0:
        return x[:SAMPLE_RATE]
    return x[loud[0]: loud[-1] + 1][:SAMPLE_RATE]


def render(clip: Clip, noises: Dict[str, np.ndarray]) -> np.ndarray:
    """The 1 s int16 waveform of a planned clip: speech at its offset plus noise at its SNR, scaled to its peak."""
    speech = trim(speak(clip.word, clip.voice, clip.speed, clip.pitch))
    x = np.zeros(SAMPLE_RATE, dtype=np.float32)
    start = int(clip.offset * (SAMPLE_RATE - speech.shape[0]))
    x[start: start + speech.shape[0]] = speech
    rms = np.sqrt(np.mean(speech ** 2)) + 1e-9
    x += noises[clip.noise][clip.noise_start: clip.noise_start + SAMPLE_RATE] * rms * 10 ** (-clip.snr_db / 20)
    x *= clip.peak / max(np.abs(x).max(), 1e-9)
    return np.round(x * 32767).astype(np.int16)


def write_wav(path: Path, x: np.ndarray) -> None:
    """Write 16 kHz mono PCM-16 `x` to `path`."""
    import soundfile as sf

    sf.write(str(path), x, SAMPLE_RATE, subtype="PCM_16")


def synthesize(out: str, words: Sequence[str] = SC35, per_word: int = 100, seed: int = 0,
               jobs: Optional[int] = None) -> Path:
    """Write the set to `out` (which must not exist): built in a sibling temporary folder, then renamed."""
    words = list(words)
    if not words or len(set(words)) != len(words) or any(not w.isalpha() or not w.islower() for w in words):
        raise ValueError(f"words must be distinct lowercase words, got {words!r}")
    if not isinstance(per_word, int) or per_word < 1:
        raise ValueError(f"per_word must be a positive int, got {per_word!r}")
    target = Path(out).expanduser()
    if target.exists():
        raise FileExistsError(f"--out {target} already exists; remove it or choose another folder")
    version, voice_variants, langs = espeak_version(), variants(), languages()
    clips = plan(words, per_word, seed, voice_variants, langs)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.partial-"))
    try:
        noises = {kind: noise(kind, seed) for kind in NOISES}
        (tmp / NOISE_DIR).mkdir()
        for kind, x in noises.items():
            write_wav(tmp / NOISE_DIR / f"{kind}.wav", np.round(x / np.abs(x).max() * 0.5 * 32767).astype(np.int16))
        for word in words:
            (tmp / word).mkdir()
        with ThreadPoolExecutor(jobs or os.cpu_count()) as pool:  # espeak-ng runs as subprocesses
            list(pool.map(lambda c: write_wav(tmp / c.word / c.name, render(c, noises)), clips))
        splits = {c: split_of(c.name) for c in clips}
        for split, name in LIST_FILES.items():
            lines = sorted(f"{c.word}/{c.name}" for c in clips if splits[c] == split)
            (tmp / name).write_text("".join(line + "\n" for line in lines))
        info = {"generator": "ssm data synth-speech", "espeak_ng": version, "seed": seed, "per_word": per_word,
                "words": words, "languages": langs, "variants": voice_variants,
                "clips": {s: sum(v == s for v in splits.values()) for s in ("train", "val", "test")}}
        (tmp / "synth_info.json").write_text(json.dumps(info, indent=1) + "\n")
        (tmp / "clips.jsonl").write_text("".join(json.dumps(asdict(c)) + "\n" for c in clips))
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return target


def add_data_commands(groups: dict) -> None:
    """`ssm data synth-speech --out DIR [--words W ...] [--per-word N] [--seed S] [--jobs J]`."""
    p = groups["top"].add_parser("synth-speech", help="write an offline Speech-Commands-format set with espeak-ng")
    p.add_argument("--out", required=True, help="folder to create (must not exist)")
    p.add_argument("--words", nargs="+", default=list(SC35), help="words to speak (default: the 35 SC35 words)")
    p.add_argument("--per-word", type=int, default=100, dest="per_word", help="clips per word (default 100)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=None, help="parallel espeak-ng processes (default: CPU count)")
    p.set_defaults(run=lambda ns: print(f"wrote {synthesize(ns.out, ns.words, ns.per_word, ns.seed, ns.jobs)}"))
