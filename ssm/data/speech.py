"""Google Speech Commands v0.02 (SC35, SC10): 1 s clips at 16 kHz as raw waveforms or MFCCs, and the 8 kHz
zero-shot protocol (keep every second sample, run every SSM layer with its step sizes doubled: `rate` = 2)."""
from __future__ import annotations

import hashlib
import re
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from .utils import ResumableLoader, atomic_save, data_dir, load_verified

SC35 = ("bed", "cat", "down", "five", "forward", "go", "house", "left", "marvin", "no", "on", "right", "sheila",
        "tree", "up", "visual", "yes", "backward", "bird", "dog", "eight", "follow", "four", "happy", "learn",
        "nine", "off", "one", "seven", "six", "stop", "three", "two", "wow", "zero")
SC10 = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
CLASS_SETS = {"sc35": SC35, "sc10": SC10}
SAMPLE_RATE = 16000  # every clip is at most 1 s at 16 kHz; shorter ones are zero-padded at the end
LIST_FILES = {"val": "validation_list.txt", "test": "testing_list.txt"}
NOISE_DIR = "_background_noise_"  # long noise recordings shipped with the release; never a class
DEFAULT_SOURCE = "speech_commands_v0.02"  # the official tarball's contents, under the data directory
MFCC_KWARGS = {"n_mfcc": 20, "log_mels": True, "melkwargs": {"n_fft": 200, "n_mels": 64}}
SPLITS = ("train", "val", "test")
HOW_TO_GET = ("download speech_commands_v0.02.tar.gz (http://download.tensorflow.org/data/speech_commands_v0.02."
              "tar.gz), extract it to <data_dir>/speech_commands_v0.02 (or pass --source DIR), or write an offline "
              "set in the same layout with `ssm data synth-speech --out DIR`; then `ssm data prepare speech-commands "
              "--source DIR`")
Classes = Union[str, Sequence[str]]


def class_names(classes: Classes) -> Tuple[str, ...]:
    """The words of a class set ("sc35", "sc10" or an explicit list), in label order."""
    if isinstance(classes, str):
        if classes not in CLASS_SETS:
            raise ValueError(f"classes must be one of {sorted(CLASS_SETS)} or a list of words, got {classes!r}")
        return CLASS_SETS[classes]
    words = tuple(classes)
    if not words or len(set(words)) != len(words) or not all(isinstance(w, str) and w for w in words):
        raise ValueError(f"classes as a list must hold distinct non-empty words, got {list(words)!r}")
    return words


def split_of(filename: str, val_percent: float = 10.0, test_percent: float = 10.0) -> str:
    """The release's split rule: SHA-1 of the speaker part of the name (before "_nohash_") mapped to a percentage."""
    speaker = re.sub(r"_nohash_.*$", "", Path(filename).name)
    buckets = 2 ** 27 - 1
    percent = (int(hashlib.sha1(speaker.encode()).hexdigest(), 16) % (buckets + 1)) * (100.0 / buckets)
    return "val" if percent < val_percent else "test" if percent < val_percent + test_percent else "train"


def read_wav(path: Path) -> torch.Tensor:
    """A 16 kHz mono WAV of at most 16000 samples -> int16 (n,); names the file when it is unreadable or off-format."""
    import soundfile as sf

    try:
        audio, sr = sf.read(str(path), dtype="int16", always_2d=True)
    except Exception as e:  # noqa: BLE001 - soundfile raises several types for broken files
        raise ValueError(f"{path} is not a readable WAV file ({e}); re-extract the release") from e
    if sr != SAMPLE_RATE or audio.shape[1] != 1 or not 0 < audio.shape[0] <= SAMPLE_RATE:
        raise ValueError(f"{path} must be mono {SAMPLE_RATE} Hz audio of 1 to {SAMPLE_RATE} samples, got "
                         f"{audio.shape[1]} channel(s) at {sr} Hz, {audio.shape[0]} samples")
    return torch.from_numpy(audio[:, 0].copy())


def read_lists(source: Path) -> Dict[str, set]:
    """{"val": {...}, "test": {...}} of "word/file.wav" entries from the release's list files."""
    lists = {}
    for split, name in LIST_FILES.items():
        path = source / name
        if not path.is_file():
            raise FileNotFoundError(f"expected the list file {path} of the Speech Commands release; {HOW_TO_GET}")
        lists[split] = {line.strip().replace("\\", "/") for line in path.read_text().splitlines() if line.strip()}
    both = lists["val"] & lists["test"]
    if both:
        raise ValueError(f"{sorted(both)[:3]} are listed in both {LIST_FILES['val']} and {LIST_FILES['test']}")
    return lists


def list_clips(source: Path, words: Sequence[str], lists: Dict[str, set]) -> List[Tuple[str, int, str]]:
    """(relative path, label, split) of every clip of `words` in `source`, sorted within each word."""
    clips = []
    for label, word in enumerate(words):
        folder = source / word
        if word == NOISE_DIR or not folder.is_dir():
            raise FileNotFoundError(f"expected the class folder {folder} ({len(words)} classes: {', '.join(words)}); "
                                    f"{HOW_TO_GET}")
        names = sorted(p.name for p in folder.glob("*.wav"))
        if not names:
            raise FileNotFoundError(f"class folder {folder} holds no .wav files; {HOW_TO_GET}")
        for name in names:
            rel = f"{word}/{name}"
            clips.append((rel, label, "val" if rel in lists["val"] else "test" if rel in lists["test"] else "train"))
    present = {rel for rel, _, _ in clips}
    for split, entries in lists.items():
        missing = sorted(e for e in entries if e.split("/")[0] in words and e not in present)
        if missing:
            raise FileNotFoundError(f"{source / LIST_FILES[split]} lists {len(missing)} file(s) that are missing, "
                                    f"e.g. {source / missing[0]}; {HOW_TO_GET}")
    return clips


def fingerprint(source: Path, words: Sequence[str], clips: Sequence[Tuple[str, int, str]]) -> str:
    """SHA-256 of the class list, the list files and every clip's path and size: names the cache of this source."""
    h = hashlib.sha256(("\n".join(words) + "\n").encode())
    for name in LIST_FILES.values():
        h.update((source / name).read_bytes())
    for rel, _, _ in clips:
        h.update(f"{rel} {(source / rel).stat().st_size}\n".encode())
    return h.hexdigest()


def checksum(data: Dict[str, torch.Tensor]) -> str:
    """SHA-256 of the tensors of a prepared split dict (keys in sorted order)."""
    h = hashlib.sha256()
    for key in sorted(k for k, v in data.items() if isinstance(v, torch.Tensor)):
        h.update(key.encode())
        h.update(data[key].contiguous().numpy().data)
    return h.hexdigest()


def resolve_source(source: Optional[str], root: Optional[str] = None) -> Path:
    """The release directory: `source` (relative paths: to the working directory if there, else to the data
    directory), default <data_dir>/speech_commands_v0.02."""
    if source is None:
        return data_dir(root) / DEFAULT_SOURCE
    path = Path(source).expanduser()
    return path if path.is_absolute() or path.exists() else data_dir(root) / path


def cache_path(source: Path, classes: Classes, root: Optional[str] = None) -> Tuple[Path, List]:
    """Where the prepared tensors of (source, classes) live, and the clips they hold."""
    words = class_names(classes)
    if not source.is_dir():
        raise FileNotFoundError(f"no Speech Commands release at {source}; {HOW_TO_GET}")
    clips = list_clips(source, words, read_lists(source))
    name = classes if isinstance(classes, str) else "words"
    return data_dir(root) / "speech_commands" / f"{name}-{fingerprint(source, words, clips)[:16]}.pt", clips


def decode(source: Path, clips: Sequence[Tuple[str, int, str]], jobs: Optional[int] = None) -> Dict[str, torch.Tensor]:
    """Read every clip into zero-padded int16 (n, 16000) tensors and int64 labels per split."""
    rows = {split: [i for i, c in enumerate(clips) if c[2] == split] for split in SPLITS}
    out: Dict[str, torch.Tensor] = {}
    slot = {}
    for split, idx in rows.items():
        out[f"{split}_x"] = torch.zeros(len(idx), SAMPLE_RATE, dtype=torch.int16)
        out[f"{split}_y"] = torch.tensor([clips[i][1] for i in idx], dtype=torch.int64)
        slot.update({i: (out[f"{split}_x"], row) for row, i in enumerate(idx)})

    def fill(i: int) -> None:
        x, row = slot[i]
        audio = read_wav(source / clips[i][0])
        x[row, : audio.shape[0]] = audio

    with ThreadPoolExecutor(jobs) as pool:  # soundfile releases the GIL while it decodes; each row is written once
        list(pool.map(fill, range(len(clips))))
    return out


def load_prepared(path: Path) -> Dict[str, torch.Tensor]:
    """Load a prepared file and verify its shapes and checksum (ValueError on any mismatch)."""
    data = load_verified(path, {f"{s}_{k}": () for s in SPLITS for k in "xy"}, HOW_TO_GET)
    for s in SPLITS:
        x, y = data[f"{s}_x"], data[f"{s}_y"]
        if x.dim() != 2 or x.shape[1] != SAMPLE_RATE or x.dtype != torch.int16 or y.shape != (x.shape[0],):
            raise ValueError(f"prepared data at {path}: {s} must be int16 (n, {SAMPLE_RATE}) clips and (n,) labels, "
                             f"got {x.dtype} {tuple(x.shape)} and {tuple(y.shape)}; delete it and {HOW_TO_GET}")
    if data.get("checksum") != checksum(data):
        raise ValueError(f"prepared data at {path} fails its checksum; delete it and {HOW_TO_GET}")
    return data


def prepare_speech_commands(source: Optional[str] = None, root: Optional[str] = None, classes: Classes = "sc35",
                            jobs: Optional[int] = None, verify: bool = True) -> Path:
    """Verify the release at `source`, decode the clips of `classes` and cache them (reused while the source is
    unchanged and the cache passes its checksum; `verify=False` trusts an existing cache); returns the cache path."""
    src = resolve_source(source, root)
    out, clips = cache_path(src, classes, root)
    if out.exists():
        if not verify:
            return out
        try:
            load_prepared(out)
            return out
        except ValueError:
            pass  # corrupt cache: rebuild it below
    data = decode(src, clips, jobs)
    data.update(checksum=checksum(data), classes=list(class_names(classes)), source=str(src))
    atomic_save(data, out)
    return out


def mfcc(x: torch.Tensor, chunk: int = 512) -> torch.Tensor:
    """int16 clips (n, 16000) -> MFCCs (n, 161, 20) (20 coefficients of 64 log-mels, 200-sample windows)."""
    import torchaudio

    with warnings.catch_warnings():  # 64 mel bands over 101 FFT bins leave some bands empty: expected here
        warnings.filterwarnings("ignore", message=".*mel filterbank has all zero values.*")
        transform = torchaudio.transforms.MFCC(sample_rate=SAMPLE_RATE, **MFCC_KWARGS)
        parts = [transform(x[i: i + chunk].float() / 32768.0).transpose(1, 2) for i in range(0, x.shape[0], chunk)]
    return torch.cat(parts) if parts else torch.zeros(0, SAMPLE_RATE // 100 + 1, MFCC_KWARGS["n_mfcc"])


def moments(x: torch.Tensor, scale: float = 1.0, chunk: int = 1024) -> Tuple[float, float]:
    """Mean and standard deviation of all entries of x * scale, accumulated in float64 chunks."""
    if x.numel() == 0:
        raise ValueError("the training split is empty: standardisation needs training clips")
    s = sq = 0.0
    for i in range(0, x.shape[0], chunk):
        part = x[i: i + chunk].double() * scale
        s, sq = s + part.sum().item(), sq + part.square().sum().item()
    mean = s / x.numel()
    return mean, max(sq / x.numel() - mean ** 2, 1e-24) ** 0.5


class Waveforms(Dataset):
    """int16 clips (n, 16000) -> ((x / 32768 - mean) / std)[::step] as (16000 / step, 1) floats, and the label."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, mean: float, std: float, step: int = 1):
        self.x, self.y, self.mean, self.std, self.step = x, y, mean, std, step

    def __len__(self) -> int:
        return self.x.shape[0]

    def __getitem__(self, i: int) -> Tuple[torch.Tensor, torch.Tensor]:
        x = self.x[i, :: self.step].float().div_(32768.0)
        return x.sub_(self.mean).div_(self.std).unsqueeze(-1), self.y[i]


class SpeechCommandsDataModule(L.LightningDataModule):
    """Speech Commands as standardised (B, 16000, 1) waveforms (or (B, 161, 20) MFCCs) and labels, split by the
    release's list files; `sample_rate=8000` keeps x[:, ::2] and sets `rate` = 2 for zero-shot evaluation."""

    vocab_size = None

    def __init__(self, source: Optional[str] = None, data_dir: Optional[str] = None,
                 classes: Union[str, List[str]] = "sc35", features: str = "raw", sample_rate: int = SAMPLE_RATE,
                 batch_size: int = 16, num_workers: int = 0, seed: int = 42, jobs: Optional[int] = None):
        super().__init__()
        self.save_hyperparameters()
        self.words = class_names(classes)
        if features not in ("raw", "mfcc"):
            raise ValueError(f"features must be one of ['raw', 'mfcc'], got {features!r}")
        if not isinstance(sample_rate, int) or sample_rate < 1 or SAMPLE_RATE % sample_rate:
            raise ValueError(f"sample_rate must be an int dividing {SAMPLE_RATE} (16000, 8000, ...), got {sample_rate!r}")
        if features == "mfcc" and sample_rate != SAMPLE_RATE:
            raise ValueError(f"sample_rate={sample_rate} (resampled zero-shot evaluation) applies to features='raw'; "
                             f"MFCCs are computed at {SAMPLE_RATE} Hz")
        self.source, self.root, self.classes, self.features = source, data_dir, classes, features
        self.sample_rate, self.batch_size, self.num_workers, self.seed, self.jobs = (
            sample_rate, batch_size, num_workers, seed, jobs)
        self.d_input = 1 if features == "raw" else MFCC_KWARGS["n_mfcc"]
        self.d_output = len(self.words)
        self.rate = SAMPLE_RATE / sample_rate  # step-size multiplier for every SSM layer (2.0 at 8 kHz)

    def prepare_data(self) -> None:
        prepare_speech_commands(self.source, self.root, self.classes, self.jobs, verify=False)

    def setup(self, stage: Optional[str] = None) -> None:
        path = prepare_speech_commands(self.source, self.root, self.classes, self.jobs, verify=False)
        try:
            data = load_prepared(path)
        except ValueError:  # corrupt cache: rebuild from the source once
            path.unlink()
            data = load_prepared(prepare_speech_commands(self.source, self.root, self.classes, self.jobs))
        if self.features == "raw":  # statistics of the 16 kHz training clips, shared by every resolution
            self.mean, self.std = moments(data["train_x"], 1.0 / 32768.0)
            step = SAMPLE_RATE // self.sample_rate
            sets = [Waveforms(data[f"{s}_x"], data[f"{s}_y"], self.mean, self.std, step) for s in SPLITS]
        else:
            feats = [mfcc(data[f"{s}_x"]) for s in SPLITS]
            self.mean, self.std = moments(feats[0])
            sets = [TensorDataset((f - self.mean) / self.std, data[f"{s}_y"]) for f, s in zip(feats, SPLITS)]
        self.train_set, self.val_set, self.test_set = sets

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set)

    def _loader(self, ds: Dataset, shuffle: bool = False) -> DataLoader:
        return ResumableLoader(ds, self.batch_size, shuffle=shuffle, seed=self.seed, num_workers=self.num_workers,
                               persistent_workers=self.num_workers > 0)


def add_data_commands(groups: dict) -> None:
    """`ssm data prepare speech-commands --source DIR [--classes sc35|sc10]`."""
    prep = groups["prepare"].add_parser("speech-commands", help="Speech Commands v0.02 (or a set in its layout)")
    prep.add_argument("--source", default=None, help=f"the extracted release (default <data_dir>/{DEFAULT_SOURCE})")
    prep.add_argument("--classes", default="sc35", help="sc35 | sc10 | comma-separated words")
    prep.add_argument("--data_dir", default=None, help="where the cache goes (default: $SSM_DATA, else ~/.cache/ssm)")
    prep.add_argument("--jobs", type=int, default=None, help="decoding threads")
    prep.set_defaults(run=_prepare_command)


def _prepare_command(ns) -> int:
    classes = ns.classes if ns.classes in CLASS_SETS else [w for w in ns.classes.split(",") if w]
    print(f"prepared speech-commands: {prepare_speech_commands(ns.source, ns.data_dir, classes, ns.jobs)}")
    return 0
