"""ssm: state-space and low-rank recurrent sequence models with fast custom kernels."""
from __future__ import annotations

import torch  # noqa: F401  (loaded first: the compiled ssm._C links against torch's shared libraries)

__version__ = "0.1.0"

from .layers.registry import CLASS_NAMES as _LAYERS  # noqa: E402  (class name -> registry name)


def __getattr__(name: str):
    """Lazy access to the layer classes (`ssm.S4D`, ...) and subpackages."""
    if name in _LAYERS:
        from .layers import get

        return get(_LAYERS[name])
    if name in ("kernels", "layers", "models", "hippo", "train", "data", "robustness"):
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'ssm' has no attribute {name!r}")


__all__ = list(_LAYERS) + ["__version__"]
