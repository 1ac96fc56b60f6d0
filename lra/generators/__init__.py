"""Synthetic data in the official release layouts: ListOps TSVs and Pathfinder images (the release cannot be
downloaded everywhere; the loaders read these files exactly as they read the release)."""

import multiprocessing as mp
from multiprocessing.pool import Pool


def process_pool(workers: int) -> Pool:
    """A pool of `workers` processes, forked where the platform can (no re-import of torch in every worker)."""
    return mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn").Pool(workers)
