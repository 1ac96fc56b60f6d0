"""Models composed of registry layers: the residual backbone and its heads."""
from .backbone import ResidualBlock, SequenceModel, pool
from .retrieval import RetrievalModel

__all__ = ["ResidualBlock", "RetrievalModel", "SequenceModel", "pool"]
