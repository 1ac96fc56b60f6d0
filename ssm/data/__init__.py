"""LightningDataModules and the `prepare` steps that turn official releases into cached tensors."""
from .mnist import MNISTDataModule, prepare_mnist

__all__ = ["MNISTDataModule", "prepare_mnist"]
