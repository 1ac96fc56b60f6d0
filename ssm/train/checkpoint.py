"""Reading checkpoints with errors that name the file: unreadable files, and weights of another model's size."""
from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Union

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

# hyper-parameters that do not change the weights' shapes: never the reason a checkpoint does not fit
TRAINING_ONLY = {"optimizer", "lr", "weight_decay", "betas", "rmsprop_alpha", "scheduler", "warmup_steps",
                 "min_lr_ratio", "plateau_factor", "plateau_patience", "dropout", "tie_dropout", "rate", "task",
                 "norm_momentum"}


def unreadable(path: Union[str, Path], error: BaseException) -> ValueError:
    """The error for a checkpoint file that torch.load cannot read."""
    if isinstance(error, pickle.UnpicklingError):
        reason = "its content is not a pickle"
    else:  # torch's first sentence, e.g. "PytorchStreamReader failed reading zip archive"
        reason = re.split(r"(?<=[a-z])[.:] ", " ".join(str(error).split()))[0][:100]
    return ValueError(f"checkpoint {path} is not a readable checkpoint (truncated, still being written, or not "
                      f"written by torch.save): {type(error).__name__}: {reason}")


def read_checkpoint(path: Union[str, Path]) -> Dict[str, Any]:
    """torch.load of a Lightning checkpoint on the CPU; FileNotFoundError/ValueError naming the file otherwise."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist" + (" (it is a directory)" if path.is_dir() else ""))
    try:
        ckpt = torch.load(str(path), map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001 - whatever torch.load fails with, the file is the problem
        raise unreadable(path, e) from e
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state_dict"), Mapping):
        raise ValueError(f"checkpoint {path} is not a readable checkpoint of a LightningModule: it holds "
                         f"{type(ckpt).__name__}" + (f" with keys {sorted(ckpt)[:6]}" if isinstance(ckpt, dict) else "")
                         + ", expected a dict with a 'state_dict'")
    return ckpt


def check_fits(module: torch.nn.Module, ckpt: Mapping[str, Any], path: Optional[Union[str, Path]] = None, *,
               hparams: Optional[Mapping[str, Any]] = None) -> None:
    """Raise ValueError unless the checkpoint's weights have the names and shapes of `module`'s, saying which
    model settings differ between the checkpoint's run and this one."""
    have = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in ckpt["state_dict"].items() if isinstance(v, torch.Tensor)}
    if have == got:
        return
    name = f"checkpoint {path}" if path else "the checkpoint"
    differ = _differences(ckpt.get("hyper_parameters") or {}, hparams or {})
    if differ:
        why = ("it was written by a model with " + ", ".join(f"model.{k}={a!r}" for k, a, _ in differ)
               + "; this run has " + ", ".join(f"model.{k}={b!r}" for k, _, b in differ))
    else:
        why = "the weights differ"
    first = next((k for k in have if k in got and have[k] != got[k]), None)
    if first is not None:
        detail = f"{first} is {got[first]} there and {have[first]} here"
    else:
        missing, extra = sorted(set(have) - set(got)), sorted(set(got) - set(have))
        detail = (f"missing {missing[:3]}" if missing else "") + (" and " if missing and extra else "") + \
                 (f"unexpected {extra[:3]}" if extra else "")
    raise ValueError(f"{name} does not fit this model: {why} ({detail}); use the settings it was trained with")


def _differences(old: Mapping[str, Any], new: Mapping[str, Any]):
    """(key, checkpoint value, current value) of the shape-relevant hyper-parameters that differ."""
    return [(k, old.get(k), new.get(k)) for k in sorted(set(old) | set(new))
            if k not in TRAINING_ONLY and old.get(k) != new.get(k)]


class CheckedCheckpointIO(TorchCheckpointIO):
    """Lightning's TorchCheckpointIO whose load fails with one sentence naming the file, not torch's unpickler."""

    def load_checkpoint(self, path: Any, *args: Any, **kwargs: Any) -> Dict[str, Any]:
        try:
            return super().load_checkpoint(path, *args, **kwargs)
        except FileNotFoundError as e:
            raise FileNotFoundError(f"checkpoint {path} does not exist") from e
        except Exception as e:  # noqa: BLE001 - unreadable file
            raise unreadable(path, e) from e
