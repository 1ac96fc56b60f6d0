"""torch.library registration of Python backend primitives (keops, triton), for torch.compile.

A decorated primitive runs as plain Python in eager mode (a custom op costs tens of microseconds per call);
while torch.compile traces, it is the opaque op ssm::<name> whose fake implementation gives the output shapes.
"""
from __future__ import annotations

import functools
from typing import Callable

import torch


def primitive(name: str, fake: Callable) -> Callable[[Callable], Callable]:
    """Register the decorated function (type-annotated) as torch.ops.ssm.<name> with `fake`; see the module doc."""

    def wrap(fn: Callable) -> Callable:
        op = torch.library.custom_op(f"ssm::{name}", fn, mutates_args=())
        op.register_fake(fake)

        @functools.wraps(fn)
        def call(*args):
            return op(*args) if torch.compiler.is_compiling() else fn(*args)

        call.op = op
        return call

    return wrap
