"""16 Python threads calling pyflat at once, each asking for several kernel
threads: every result exact, no deadlock.

The hammering runs in a child process with a deadline, so a deadlock fails
the test instead of stalling the run.  By hand::

    python tests/test_concurrency.py --seconds 60
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np
import pytest

if __name__ == "__main__":  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pyflat  # noqa: E402

CALLERS = 16
NUM_THREADS = 4


def workloads() -> List[Tuple[np.ndarray, str, np.ndarray]]:
    """(input, data_format, expected result as bytes): large ones that the
    kernel splits among threads, with every kernel, and a small one."""
    rng = np.random.default_rng(7)
    images = rng.integers(0, 2**32, (8, 64, 32, 32), dtype=np.uint32)       # 2 MiB
    pixels = rng.integers(0, 256, (16, 3, 200, 224), dtype=np.uint8)        # 2.1 MB
    wide = rng.integers(0, 2**16, (6, 512, 1024), dtype=np.uint16)[:, ::-2]  # 3 MiB out
    rows = rng.integers(0, 2**63, (4096, 160), dtype=np.uint64)[::2, 16:]   # 2.3 MB, runs
    small = rng.integers(0, 2**8, (4, 3, 5, 7), dtype=np.uint8)
    cases = [(images, "channels_first"), (pixels, "channels_first"), (wide, "channels_last"),
             (rows, "channels_last"), (small, "channels_first")]
    result = []
    for a, data_format in cases:
        view = np.moveaxis(a, 1, -1) if data_format == "channels_first" else a
        expected = np.ascontiguousarray(view).reshape(len(a), -1)
        result.append((a, data_format, expected))
    return result


def hammer(seconds: float, callers: int = CALLERS,
           num_threads: int = NUM_THREADS) -> Tuple[int, List[str]]:
    """``callers`` threads call batch_flatten for ``seconds``, all starting
    together; returns (calls made, what went wrong)."""
    cases = workloads()
    start = threading.Barrier(callers)
    lock = threading.Lock()
    counts = [0] * callers
    problems: List[str] = []

    def caller(me: int) -> None:
        start.wait()
        deadline = time.monotonic() + seconds
        k = me
        try:
            while time.monotonic() < deadline:
                a, data_format, expected = cases[k % len(cases)]
                out = np.empty_like(expected) if k % 3 == 0 else None
                result = pyflat.batch_flatten(a, data_format=data_format, out=out,
                                              num_threads=num_threads)
                if not np.array_equal(result, expected):
                    with lock:
                        problems.append(f"caller {me}: wrong result for case {k % len(cases)}")
                counts[me] += 1
                k += 1
        except BaseException as exc:  # reported, not lost in a thread
            with lock:
                problems.append(f"caller {me}: {exc!r}")

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(callers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts), problems


def run_in_child(seconds: float) -> Tuple[int, List[str]]:
    """``hammer(seconds)`` in a fresh interpreter; a hang past the deadline
    fails with the child's output."""
    root = str(Path(pyflat.__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (root, os.environ.get("PYTHONPATH")) if p))
    try:
        child = subprocess.run([sys.executable, __file__, "--seconds", str(seconds)],
                               env=env, capture_output=True, text=True,
                               timeout=seconds + 60)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"deadlock: {CALLERS} callers still running {seconds + 60:.0f} s "
                    f"after starting a {seconds} s run\n{exc.stdout or ''}{exc.stderr or ''}")
    assert child.returncode == 0, child.stdout + child.stderr
    lines = child.stdout.splitlines()
    calls = int(lines[0].split()[1])
    return calls, lines[1:]


def test_workloads_use_several_threads():
    """Otherwise this file would not test the pool at all."""
    threaded = [pyflat.explain(a, data_format=f, num_threads=NUM_THREADS).num_threads
                for a, f, _ in workloads()]
    assert sum(n > 1 for n in threaded) >= 4, threaded


def test_threads_in_process():
    calls, problems = hammer(1.0)
    assert not problems, problems
    assert calls >= CALLERS


def test_sixteen_callers_short():
    calls, problems = run_in_child(3.0)
    assert not problems, problems
    assert calls >= CALLERS


@pytest.mark.slow
def test_sixteen_callers_one_minute():
    calls, problems = run_in_child(60.0)
    assert not problems, problems
    assert calls >= CALLERS


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="16 threads calling pyflat at once")
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args(argv)
    calls, problems = hammer(args.seconds)
    print(f"calls {calls} problems {len(problems)} callers {CALLERS} "
          f"num_threads {NUM_THREADS} seconds {args.seconds}")
    for problem in problems:
        print(problem)
    return 0


if __name__ == "__main__":
    sys.exit(main())
