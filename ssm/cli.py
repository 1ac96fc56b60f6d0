"""The `ssm` command: train, eval, data, robust, bench, doctor."""
from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import os
import platform
import sys

from typing import List, Optional

COMMANDS = {
    "train": "fit a model from a YAML config (no config: S4D on sequential MNIST), then test the best checkpoint",
    "eval": "validate and test a checkpoint: ssm eval --ckpt FILE [--config FILE] [--key value ...]",
    "data": "datasets: ssm data prepare NAME | generate NAME | where (ssm data --help lists them)",
    "robust": "accuracy under perturbations: ssm robust --ckpt FILE --perturb fourier,gaussian,pgd --levels 0,0.1 "
              "| ssm robust transfer --ckpt FILE",
    "bench": "benchmarks that print tables: ssm bench kernels [...]",
    "doctor": "versions, kernel backends per device and why others fail, data directory",
}


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the `ssm` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        if not argv:  # `ssm` alone runs the default job, like `ssm train`
            return _run("train", _train, [])
        print("usage: ssm {" + ",".join(COMMANDS) + "} ...\n\ncommands:")
        for name, text in COMMANDS.items():
            print(f"  {name:8s} {text}")
        return 0
    cmd, rest = argv[0], argv[1:]
    handlers = {"train": _train, "eval": _eval, "data": _data, "robust": _robust, "bench": _bench, "doctor": _doctor}
    if cmd not in handlers:
        print(f"ssm: unknown command {cmd!r}; choose one of {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    return _run(cmd, handlers[cmd], rest)


# What a user's mistake raises (a setting, a file, a value): one line on stderr and exit status 2 instead of a
# traceback. SSM_DEBUG=1 shows the traceback.
USER_ERRORS = (ValueError, TypeError, OSError)


def _run(cmd: str, handler, args: List[str]) -> int:
    try:
        return handler(args)
    except USER_ERRORS as e:
        if os.environ.get("SSM_DEBUG", "") not in ("", "0"):
            raise
        print(f"ssm {cmd}: error: {' '.join(str(e).split()) or type(e).__name__}", file=sys.stderr)
        return 2


def _train(args: List[str]) -> int:
    from .train.cli import train

    train(args)
    return 0


def _eval(args: List[str]) -> int:
    if args[:1] in (["-h"], ["--help"]):
        print("usage: ssm eval --ckpt FILE [--config FILE] [--key value ...]\n\nValidate and test a checkpoint with "
              "the config.yaml its run saved (or --config FILE); --key value overrides as in `ssm train --help`.")
        return 0
    from .train.cli import evaluate

    evaluate(args)
    return 0


def _robust(args: List[str]) -> int:
    from .robustness.cli import main as robust_main

    return robust_main(args)


# Modules that contribute `ssm data` subcommands: each has `add_data_commands(groups)` with groups = {"prepare":
# subparsers, "generate": subparsers, "top": subparsers}; every parser it adds sets `run=callable(namespace) -> int`.
DATA_COMMANDS = ("ssm.data.mnist", "ssm.data.speech", "ssm.data.synth_speech", "lra.cli")


def data_parser() -> argparse.ArgumentParser:
    """The `ssm data` parser with the subcommands of every module in DATA_COMMANDS."""
    p = argparse.ArgumentParser(prog="ssm data", description="prepare, generate and locate datasets")
    top = p.add_subparsers(dest="action", required=True, metavar="{prepare,generate,where,...}")
    groups = {
        "prepare": top.add_parser("prepare", help="verify a dataset's official files and write its cache")
        .add_subparsers(dest="name", required=True),
        "generate": top.add_parser("generate", help="write a synthetic dataset in an official release format")
        .add_subparsers(dest="name", required=True),
        "top": top,
    }
    where = top.add_parser("where", help="print the data directory")
    where.set_defaults(run=_where)
    for module in DATA_COMMANDS:
        importlib.import_module(module).add_data_commands(groups)
    return p


def _where(ns: argparse.Namespace) -> int:
    from .data.utils import data_dir

    print(data_dir())
    return 0


def _data(args: List[str]) -> int:
    ns = data_parser().parse_args(args)
    return int(ns.run(ns) or 0)


def _bench(args: List[str]) -> int:
    if not args or args[0] not in ("kernels",):
        print("usage: ssm bench kernels [options]  (`ssm bench kernels --help`; the scripts in benchmarks/ time the "
              "rest)", file=sys.stderr)
        return 2
    from .kernels import benchmark

    return int(benchmark.main(args[1:]) or 0)


def _version(module: str) -> str:
    try:
        mod = importlib.import_module(module)
    except Exception as e:  # noqa: BLE001 - report why it is missing
        return f"not installed ({type(e).__name__})"
    return str(getattr(mod, "__version__", "installed"))


def _doctor(args: List[str]) -> int:
    p = argparse.ArgumentParser(prog="ssm doctor", description="versions, kernel backends per device, data directory")
    p.add_argument("--reprobe", action="store_true", help="forget the cached backend probe verdicts and probe again")
    p.add_argument("--device", action="append", help="device to check (repeatable; default: cpu and every GPU)")
    a = p.parse_args(args)
    import torch

    from .data.utils import data_dir
    from .kernels import backend_report, dispatch, probe

    print(f"python      {platform.python_version()} ({sys.executable})")
    print(f"torch       {torch.__version__} (CUDA build {torch.version.cuda or 'none'}, "
          f"{torch.cuda.device_count()} CUDA device(s) visible)")
    for name in ("lightning", "pykeops", "triton", "torchaudio", "ssm"):
        try:  # the distribution's metadata: importing pykeops here would print its CUDA chatter
            version = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            version = _version(name)
        print(f"{name:11s} {version}")
    try:
        importlib.import_module("ssm._C")
        ext = "built"
    except Exception as e:  # noqa: BLE001
        ext = f"not available ({e})"
    print(f"ssm._C      {ext}")
    d = data_dir()
    print(f"data dir    {d} ({'exists' if d.exists() else 'missing'}; set $SSM_DATA or --data_dir to change)")
    dispatch.reset_cache(disk=a.reprobe)
    print(f"probe cache {probe.cache_file()} (set ${probe.CACHE_ENV} to move it; --reprobe to renew it)")
    print("\nkernel backends (crash-prone ones are probed in a child process):")
    for op, backend, device, status in backend_report(a.device):
        print(f"  {op:26s} {backend:7s} {device:7s} {status}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
