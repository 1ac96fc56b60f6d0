"""Tiny data sets in the release formats, written once per test session."""
import pytest

from lra import synthetic
from lra.generators import listops, pathfinder


@pytest.fixture(scope="session")
def release(tmp_path_factory) -> dict:
    """Source folders of every task, as the release lays them out (generated or random stand-ins)."""
    root = tmp_path_factory.mktemp("release")
    return {
        "listops": str(listops.generate(str(root / "listops-1000"), 12, 4, 4, seed=0, workers=1)["train"].parent),
        "text": str(synthetic.write_imdb(root, (6, 4), mean_len=300)),
        "retrieval": str(synthetic.write_aan(root, (12, 4, 4), mean_len=300)),
        "image": str(synthetic.write_cifar(root, 4)),
        "pathfinder": str(pathfinder.generate(str(root / "pathfinder32"), 32, 20, seed=0, workers=1).parent),
        "pathx": str(pathfinder.generate(str(root / "pathfinder128"), 128, 10, seed=0, workers=1).parent),
    }


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("ssm_data"))
