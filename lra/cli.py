"""`ssm data prepare lra-<task>` and `ssm data generate lra-listops | lra-pathfinder` (listed in ssm/cli.py)."""
from __future__ import annotations

import argparse
import time
from typing import Callable


def add_data_commands(groups: dict) -> None:
    """Add the LRA subcommands to the `ssm data` parser groups ("prepare", "generate")."""
    prep = groups["prepare"]
    for name, what in (("listops", "ListOps: DIR holds basic_{train,val,test}.tsv (listops-1000/)"),
                       ("text", "Text (IMDB characters): DIR is the aclImdb/ folder"),
                       ("retrieval", "Retrieval (AAN): DIR holds new_aan_pairs.{train,eval,test}.tsv (tsv_data/)"),
                       ("image", "Image (grayscale CIFAR-10): DIR is cifar-10-batches-py/"),
                       ("pathfinder", "Pathfinder: DIR is pathfinderS/ (holding curv_contour_length_14/)"),
                       ("pathx", "Path-X: DIR is pathfinder128/ (holding curv_contour_length_14/)")):
        p = prep.add_parser(f"lra-{name}", help=f"Long Range Arena {what}")
        p.add_argument("--source", required=True, help="folder of the release (or of generated data)")
        p.add_argument("--data_dir", default=None, help="where the cache goes (default: $SSM_DATA, else ~/.cache/ssm)")
        if name == "pathfinder":
            p.add_argument("--resolution", type=int, default=32, choices=[32, 64, 128, 256])
        p.set_defaults(run=_prepare(name))
    gen = groups["generate"]
    g = gen.add_parser("lra-listops", help="synthetic ListOps in the release's TSV format")
    g.add_argument("--out", required=True, help="folder for basic_{train,val,test}.tsv")
    g.add_argument("--train", type=int, default=96000)
    g.add_argument("--val", type=int, default=2000)
    g.add_argument("--test", type=int, default=2000)
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--workers", type=int, default=None, help="processes (default: CPU count); output is the same")
    g.set_defaults(run=_generate_listops)
    g = gen.add_parser("lra-pathfinder", help="synthetic Pathfinder images in the release layout")
    g.add_argument("--size", type=int, required=True, choices=[32, 64, 128])
    g.add_argument("--out", required=True, help="folder that receives curv_contour_length_14/")
    g.add_argument("--n", type=int, required=True, help="number of images")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--workers", type=int, default=None, help="processes (default: CPU count); output is the same")
    g.set_defaults(run=_generate_pathfinder)


def _prepare(name: str) -> Callable[[argparse.Namespace], int]:
    def run(ns: argparse.Namespace) -> int:
        import lra

        start = time.perf_counter()
        if name == "listops":
            path = lra.prepare_listops(ns.source, ns.data_dir)
        elif name == "text":
            path = lra.prepare_text(ns.source, ns.data_dir)
        elif name == "retrieval":
            path = lra.prepare_retrieval(ns.source, ns.data_dir)
        elif name == "image":
            path = lra.prepare_image(ns.source, ns.data_dir)
        else:
            path = lra.prepare_pathfinder(ns.source, ns.data_dir, resolution=getattr(ns, "resolution", 128))
        print(f"prepared lra-{name}: {path} ({time.perf_counter() - start:.1f} s)")
        return 0

    return run


def _generate_listops(ns: argparse.Namespace) -> int:
    from .generators.listops import generate

    start = time.perf_counter()
    paths = generate(ns.out, ns.train, ns.val, ns.test, seed=ns.seed, workers=ns.workers)
    print(f"wrote {', '.join(str(p) for p in paths.values())} ({time.perf_counter() - start:.1f} s)")
    return 0


def _generate_pathfinder(ns: argparse.Namespace) -> int:
    from .generators.pathfinder import generate

    start = time.perf_counter()
    path = generate(ns.out, ns.size, ns.n, seed=ns.seed, workers=ns.workers)
    print(f"wrote {ns.n} images to {path} ({time.perf_counter() - start:.1f} s)")
    return 0
