"""Helpers shared by the LRA tests."""
from pathlib import Path


def leftovers(path: Path) -> list:
    """Temporary files or folders a failed preparation could have left behind."""
    return [p.name for p in Path(path).rglob(".*") if ".tmp" in p.name or ".old-" in p.name]
