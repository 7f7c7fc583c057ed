"""pyflat.dask against dask's own reshape, on a two-process LocalCluster.

    python bench/bench_dask.py [--batch 1024] [--image 3 64 64] [--repeat 3]

For each input chunking and data format it times, from ``persist()`` to the
last block in worker memory, the flatten alone (best of ``--repeat``, each on a
fresh random input generated and persisted on the workers beforehand, so no
run finds blocks a previous one copied over):

* ``pyflat.dask``: ``pyflat.dask.batch_flatten(x, data_format=...)``;
* ``dask reshape``: ``x.reshape(n, -1)``, or for channels_first
  ``x.transpose(0, 2, 3, 1).reshape(n, -1)``;
* ``dask reshape + rechunk``: the same, then ``.rechunk({1: -1})``, which gives
  the rows whole as pyflat.dask does (only shown where the layouts differ).

"moved" is the bytes sent from one worker to another while computing: the sum
of ``total`` over each worker's ``transfer_outgoing_log`` entries requested by
another worker (the log is cleared before each run; sizes are dask's
``sizeof``, before compression).

Last, the same data as one in-memory numpy array: plain ``pyflat.batch_flatten``
(``copy=True``) in this process, against the whole Dask round trip
(``da.from_array`` -> cluster -> ``compute()``).  Timings on a shared machine
are noisy: compare the ratios within one run.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from pathlib import Path

import dask.array as da
import numpy as np
from distributed import Client, LocalCluster, wait

# Benchmark this checkout's pyflat, installed or not (the spawned workers
# inherit sys.path, so they import the same one).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pyflat  # noqa: E402
import pyflat.dask as pfd  # noqa: E402


def dask_reshape(x: da.Array, data_format: str) -> da.Array:
    if data_format == "channels_first":
        x = x.transpose(0, *range(2, x.ndim), 1)
    return x.reshape(x.shape[0], -1)


METHODS = {
    "pyflat.dask": lambda x, fmt: pfd.batch_flatten(x, data_format=fmt),
    "dask reshape": dask_reshape,
    "dask reshape + rechunk": lambda x, fmt: dask_reshape(x, fmt).rechunk({1: -1}),
}


def _clear_log(dask_worker) -> None:
    dask_worker.transfer_outgoing_log.clear()


def moved_between_workers(client: Client) -> int:
    workers = set(client.scheduler_info()["workers"])
    logs = client.run(lambda dask_worker: [(e["who"], e["total"])
                                           for e in dask_worker.transfer_outgoing_log])
    return sum(total for log in logs.values() for who, total in log if who in workers)


def time_persist(client: Client, make_input, build, repeat: int) -> tuple[float, int, da.Array]:
    """Best wall time of ``repeat`` persists of ``build(x)``, each on a fresh
    ``x = make_input()`` already in worker memory (a rerun on the same input
    would find the blocks it fetched the first time still there), the bytes
    moved between workers by the last run, and its array."""
    best = math.inf
    for _ in range(repeat):
        x = make_input().persist()
        wait(x)
        y = build(x)
        client.run(_clear_log)
        start = time.perf_counter()
        result = y.persist()
        wait(result)
        best = min(best, time.perf_counter() - start)
        moved = moved_between_workers(client)
        del x, result
    return best, moved, y


def best_time(function, repeat: int) -> float:
    best = math.inf
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        best = min(best, time.perf_counter() - start)
    return best


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--image", type=int, nargs=3, default=[3, 64, 64],
                        metavar=("C", "H", "W"), help="one sample, channels first")
    parser.add_argument("--batch-chunk", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    c, h, w = args.image
    n, rows = args.batch, args.batch_chunk
    shapes = {"channels_first": (n, c, h, w), "channels_last": (n, h, w, c)}
    # Whole samples per block, or each sample split over several blocks.
    chunkings = {
        "channels_first": {"batch": (rows, c, h, w), "features": (rows, 1, h // 2, w)},
        "channels_last": {"batch": (rows, h, w, c), "features": (rows, h // 2, w, 1)},
    }
    mib = n * c * h * w * 4 / 2**20
    print(f"float32 input {n}x{c}x{h}x{w} ({mib:.0f} MiB), batch chunks of {rows}, "
          f"LocalCluster: 2 worker processes x 1 thread, best of {args.repeat}\n")

    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                      dashboard_address=None, host="127.0.0.1") as cluster, \
            Client(cluster) as client:
        print(f"{'data_format':15} {'chunked by':10} {'method':24} {'time':>8} "
              f"{'vs pyflat':>9} {'moved':>10} {'out blocks':>10}")
        for fmt, shape in shapes.items():
            for chunked_by, chunks in chunkings[fmt].items():
                def make_input(shape=shape, chunks=chunks):
                    return da.random.random(shape, chunks=chunks).astype(np.float32)
                reference = None
                for method, build in METHODS.items():
                    if (method.endswith("rechunk")
                            and len(dask_reshape(make_input(), fmt).chunks[1]) == 1):
                        continue  # dask's reshape already gives whole rows here
                    seconds, moved, y = time_persist(
                        client, make_input, lambda x: build(x, fmt), args.repeat)
                    reference = reference or seconds
                    print(f"{fmt:15} {chunked_by:10} {method:24} {seconds * 1e3:6.0f}ms "
                          f"{seconds / reference:8.2f}x {moved / 2**20:7.1f}MiB "
                          f"{y.numblocks[0] * y.numblocks[1]:10}")

        a = np.random.default_rng(0).random(shapes["channels_first"], dtype=np.float32)
        # Shipping the array inside the graph is the cost being measured.
        warnings.filterwarnings("ignore", "Sending large graph")
        plain = best_time(lambda: pyflat.batch_flatten(a, data_format="channels_first",
                                                       copy=True), args.repeat)
        round_trip = best_time(lambda: pfd.batch_flatten(
            da.from_array(a, chunks=chunkings["channels_first"]["batch"]),
            data_format="channels_first").compute(), args.repeat)
    print(f"\nin memory, channels_first: plain pyflat.batch_flatten {plain * 1e3:.0f}ms, "
          f"Dask round trip (from_array -> cluster -> compute) {round_trip * 1e3:.0f}ms "
          f"({round_trip / plain:.0f}x slower)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
