"""Long Range Arena: loaders of the official release formats as LightningDataModules, and generators.

Tasks: ListOps, Text (IMDB, characters), Retrieval (AAN, two documents), Image (grayscale CIFAR-10),
Pathfinder (32 x 32) and Path-X (128 x 128). `ssm data prepare lra-<task> --source DIR` turns release files
into cached arrays; `ssm data generate lra-listops | lra-pathfinder` writes synthetic data in the same layout.
The data modules are imported on first use, so the generators' worker processes do not load torch.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ListOpsDataModule": "listops", "prepare_listops": "listops",
    "TextDataModule": "text", "prepare_text": "text",
    "RetrievalDataModule": "retrieval", "prepare_retrieval": "retrieval",
    "ImageDataModule": "image", "prepare_image": "image",
    "PathfinderDataModule": "pathfinder", "PathXDataModule": "pathfinder", "prepare_pathfinder": "pathfinder",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'lra' has no attribute {name!r}")
