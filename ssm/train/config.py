"""Checks of a run's configuration before anything is built: config files, `model.layer_kwargs` against the layer's
constructor, and jsonargparse's errors as one line (setting, expected, received)."""
from __future__ import annotations

import functools
import inspect
import re
from argparse import ArgumentError
from pathlib import Path
from typing import Any, Dict, List, Sequence

import yaml
from jsonargparse import ArgumentParser, Namespace

from ..layers import get
from ..models.checks import check_layer_kwargs


def config_files(args: Sequence[str]) -> List[str]:
    """The values of every `--config FILE` / `--config=FILE` in `args`."""
    out = []
    for i, a in enumerate(args):
        if a == "--config" and i + 1 < len(args):
            out.append(args[i + 1])
        elif a.startswith("--config="):
            out.append(a.split("=", 1)[1])
    return out


def check_config_file(path: str) -> None:
    """Raise FileNotFoundError/ValueError unless `path` is a YAML file holding a mapping of settings."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"--config {path} does not exist" + (" (it is a directory)" if p.is_dir() else ""))
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ValueError(f"--config {path} is not valid YAML{where}: {getattr(e, 'problem', None) or e}") from e
    except UnicodeDecodeError as e:
        raise ValueError(f"--config {path} is not a text (YAML) file: {e}") from e
    if data is None:
        raise ValueError(f"--config {path} is empty; expected a YAML mapping of settings (model:, data:, trainer:)")
    if not isinstance(data, dict):
        raise ValueError(f"--config {path} must hold a YAML mapping of settings (model:, data:, trainer:), "
                         f"got a {type(data).__name__}")


def flat_keys(path: str) -> List[str]:
    """The dotted keys of the YAML mapping in `path` (a: {b: 1} -> ["a", "a.b"])."""
    def walk(node: Any, prefix: str) -> List[str]:
        if not isinstance(node, dict):
            return []
        return [k for key, value in node.items() for k in [prefix + str(key)] + walk(value, prefix + f"{key}.")]
    return walk(yaml.safe_load(Path(path).read_text()), "")


def innermost(error: BaseException) -> BaseException:
    """The constructor's own error inside jsonargparse's "Does not validate against any of the Union subtypes"."""
    while "Does not validate against any" in str(error):
        inner = error.__cause__ or error.__context__
        if not isinstance(inner, (ValueError, TypeError)):
            break
        error = inner
    return error


def setting_prefix(error: BaseException) -> str:
    """"model.", "model.layer_kwargs." or "data.init_args." when `error` was raised by the constructor of the model,
    its layer or the data module about one of its own arguments (the message starts with the argument's name)."""
    import lightning as L

    from ..layers import SequenceLayer

    owners = ((SequenceLayer, "model.layer_kwargs."), (L.LightningDataModule, "data.init_args."),
              (L.LightningModule, "model."))
    first, prefix = str(error).split(" ", 1)[0], ""
    tb = error.__traceback__
    while tb is not None:  # the innermost owner wins
        obj = tb.tb_frame.f_locals.get("self")
        for cls, name in owners:
            if isinstance(obj, cls) and first in inspect.signature(type(obj).__init__).parameters:
                prefix = name
                break
        tb = tb.tb_next
    return prefix


@functools.lru_cache(maxsize=None)
def _layer_parser(layer: str) -> ArgumentParser:
    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(get(layer), skip={"d_model"})
    return parser


def check_layer_config(layer: str, kwargs: Any, name: str = "model.layer_kwargs") -> Dict[str, Any]:
    """`kwargs` with values converted to the layer's annotated types; TypeError naming the key, the layer and the
    valid keys for an unknown key, and naming the key, the expected type and the value for a wrong type."""
    kwargs = check_layer_kwargs(layer, kwargs, name)
    out = dict(kwargs)
    for key, value in kwargs.items():
        try:
            parsed = _layer_parser(layer).parse_object({key: value})[key]
        except ArgumentError as e:
            expected = _expected(str(e))
            raise TypeError(f"{name}.{key}: expected {expected} for layer {layer!r}, got {value!r} "
                            f"({type(value).__name__})") from e
        if not isinstance(parsed, Namespace):  # a class given by class_path stays as written
            out[key] = parsed
    return out


def _type_name(text: str) -> str:
    """"<class 'int'>" -> "int", "typing.Dict[str, typing.Any]" -> "dict", Literal[...] -> "one of ..."."""
    text = re.sub(r"<class '(?:[\w.]+\.)?(\w+)'>", r"\1", text.strip()).replace("typing.", "")
    lit = re.fullmatch(r"Literal\[(.*)\]", text)
    if lit:
        return f"one of {lit.group(1)}"
    if text.startswith(("Dict", "dict", "Mapping")):
        return "a dict"
    return {"NoneType": "None"}.get(text, text)


def _expected(message: str) -> str:
    """The expected type(s) in (the innermost part of) a jsonargparse error message."""
    sub = re.search(r"Subtypes: \[(.*?)\]\n", message)
    exp = re.search(r"Expected a (.+?)(?:\. Got value: .*)?$", message, flags=re.M)
    if sub and (not exp or sub.start() < exp.start()):
        return " or ".join(_type_name(t) for t in re.split(r",\s*(?![^\[]*\])", sub.group(1)))
    return _type_name(exp.group(1)) if exp else "another value"


def one_line(error: ArgumentError) -> str:
    """A jsonargparse parse error as one line: the setting, what was expected and what was received."""
    msg = str(error)
    keys = list(re.finditer(r'Parser key "([^"]+)"', msg))
    if not keys:
        text = " ".join(msg.split())
        if text.startswith("unrecognized arguments"):
            text += " (`ssm train --help` lists the settings)"
        return text
    nested = ".init_args." if "class_path" in msg else "."
    path = keys[0].group(1) + "".join(nested + k.group(1) for k in keys[1:])
    inner = msg[keys[-1].end():]  # the innermost key's part says what was wrong with it
    got = re.search(r"Got value: (.*)$", inner, flags=re.M) or re.search(r"Given value: (.*)$", inner, flags=re.M)
    if "Expected a" in inner and got:
        return f"{path}: expected {_expected(inner)}, got {got.group(1)!r}"
    detail = [line.strip(" -:") for line in inner.splitlines() if line.strip(" -:")]
    reason = next((d for d in detail if not d.startswith(("Does not validate", "Subtypes", "Errors", "Given value",
                                                          "Expected a", "Problem with"))), "")
    return f"{path}: {reason or ' '.join(inner.split())}" + (f" (got {got.group(1)!r})" if got else "")
