"""How many threads should pyflat use in forked workers?  (DataLoader workers,
multiprocessing pools: several processes flattening at once.)

W forked workers each flatten the same channels_first float32 batch
(the Keras Flatten of an NCHW batch: a threaded transpose) R times, with T
pyflat threads each; the figure is the wall time until every worker is done,
from a common start.  Rounds alternate the thread counts, so a burst of load
from elsewhere slows both.  The default policy (1 thread in a forked child)
was chosen from this:

    python bench/bench_fork.py [--workers 1,2] [--threads 1,2] [--rounds 7]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import time
from typing import Any

import numpy as np

import pyflat

SHAPE = (128, 64, 32, 32)  # 32 MiB of float32 per batch
REPEAT = 10                # flattens per worker per measurement


def _worker(a: np.ndarray, threads: int, start: Any, done: Any) -> None:
    pyflat.set_num_threads(threads)
    start.wait()
    for _ in range(REPEAT):
        pyflat.batch_flatten(a, data_format="channels_first")
    done.put(time.perf_counter())


def measure(a: np.ndarray, workers: int, threads: int) -> float:
    """Seconds from the common start until the last worker is done."""
    context = multiprocessing.get_context("fork")
    start, done = context.Event(), context.Queue()
    processes = [context.Process(target=_worker, args=(a, threads, start, done))
                 for _ in range(workers)]
    for p in processes:
        p.start()
    time.sleep(0.2)  # every worker is forked and waiting
    t0 = time.perf_counter()
    start.set()
    ends = [done.get(timeout=300) for _ in processes]
    for p in processes:
        p.join()
    return max(ends) - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workers", default="1,2")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--rounds", type=int, default=7)
    args = p.parse_args()
    a = np.random.default_rng(0).random(SHAPE, dtype=np.float32)
    gib = REPEAT * a.nbytes / 2**30
    print(f"{os.cpu_count()} CPUs, {pyflat.get_num_threads()} pyflat threads by default "
          f"in the parent, load average {os.getloadavg()[0]:.2f}; "
          f"each worker flattens {REPEAT} x {a.nbytes / 2**20:.0f} MiB")
    for workers in map(int, args.workers.split(",")):
        counts = list(map(int, args.threads.split(",")))
        times: dict[int, list[float]] = {t: [] for t in counts}
        for _ in range(args.rounds):
            for t in counts:
                times[t].append(measure(a, workers, t))
        for t in counts:
            median = statistics.median(times[t])
            print(f"{workers} worker(s) x {t} thread(s): median {median:.3f} s "
                  f"(min {min(times[t]):.3f}, max {max(times[t]):.3f}), "
                  f"{workers * gib / median:.2f} GiB/s flattened in all")


if __name__ == "__main__":
    main()
