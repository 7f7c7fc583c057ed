"""``pyflat demo``: flatten a few real strided arrays and time pyflat next to
numpy in one process (a short run; ``pyflat bench`` is the full benchmark)."""

from __future__ import annotations

import argparse
import time
from typing import Callable, Optional, Sequence

import numpy as np

from .api import batch_flatten


def _best_seconds(fn: Callable[[], object], repeat: int = 5) -> float:
    fn()  # warm-up: page faults, caches
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _cases():
    rng = np.random.default_rng(0)
    yield ("float32 NCHW -> channels_last", rng.random((64, 64, 28, 28), np.float32),
           "channels_first")
    yield ("uint8 images NCHW -> channels_last",
           rng.integers(0, 255, (32, 3, 224, 224), dtype=np.uint8), "channels_first")
    yield ("float64 Fortran-ordered matrix", np.asfortranarray(rng.random((2048, 2048))),
           "channels_last")
    yield ("float32 every other pixel", rng.random((64, 64, 56, 56), np.float32)[:, :, ::2, ::2],
           "channels_last")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="pyflat demo", description=__doc__)
    parser.parse_args(argv)
    print(f"{'case':38} {'MB':>7} {'numpy ms':>9} {'pyflat ms':>9} {'speedup':>8}  same")
    for name, a, data_format in _cases():
        view = np.moveaxis(a, 1, -1) if data_format == "channels_first" else a
        reference = lambda: np.ascontiguousarray(view).reshape(len(a), -1)  # noqa: E731
        ours = lambda: batch_flatten(a, data_format=data_format)  # noqa: E731
        t_numpy, t_ours = _best_seconds(reference), _best_seconds(ours)
        same = np.array_equal(reference(), ours())
        print(f"{name:38} {a.nbytes / 1e6:7.1f} {t_numpy * 1e3:9.2f} {t_ours * 1e3:9.2f} "
              f"{t_numpy / t_ours:7.1f}x  {'yes' if same else 'NO'}")
        if not same:
            return 1
    return 0
