"""Leaks: a long run of calls mixing views, copies, ``out=``, plans and errors
must not grow the resident set size (RSS) by 1 MB or more.

10^5 calls in the default run (a leak of 10 bytes a call would show); the
10^6-call run is marked slow.  Both start after a warm-up of 10^5 calls: RSS
steps up about 1 MB once early on (a loop of bare ``x.__array_interface__``
reads does it too), then stays flat.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
from typing import Callable, Iterator, List

import numpy as np
import pytest

import pyflat
from pyflat import api
from pyflat._pyflat import lib

LIMIT = 1 << 20  # bytes of RSS growth allowed
WARM_UP = 100_000  # calls before measuring


def _malloc_trim() -> Callable[[int], int]:
    """glibc's malloc_trim, or a no-op where there is none."""
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return lambda pad: 0


malloc_trim = _malloc_trim()


def rss() -> int:
    """Resident set size of this process, in bytes (Linux), once free memory
    has gone back to the OS: else where the allocator keeps its free pages
    (which depends on the tests run before) moves RSS by megabytes."""
    gc.collect()
    malloc_trim(0)
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def mixed_calls() -> List[Callable[[], object]]:
    """One of each kind of call; the errors are caught here."""
    x = np.arange(8 * 3 * 16 * 32, dtype=np.float32).reshape(8, 3, 16, 32)  # 48 KiB
    strided = np.arange(512 * 512, dtype=np.uint8).reshape(512, 512)[::2, ::3]
    tiny = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    obj = np.array([[1, "a"], [None, 2.0]], dtype=object).T
    out = np.empty((8, 3 * 16 * 32), np.float32)
    wrong_out = np.empty((8, 3 * 16 * 32 - 1), np.float32)
    layer = pyflat.Flatten("channels_first")

    def error(call: Callable[[], object], kind: type) -> Callable[[], object]:
        def run() -> None:
            try:
                call()
            except kind:
                return
            raise AssertionError(f"{call} did not raise {kind}")
        return run

    return [
        lambda: pyflat.batch_flatten(x),                                     # view
        lambda: pyflat.batch_flatten(x, data_format="channels_first"),       # 2 threads
        lambda: pyflat.flatten(strided, copy=True),                          # gather
        lambda: pyflat.batch_flatten(x, data_format="channels_first", out=out),
        lambda: pyflat.ascontiguousarray(strided.T, num_threads=2),         # transpose
        lambda: pyflat.batch_flatten(tiny, data_format="channels_first"),    # numpy copies
        lambda: pyflat.batch_flatten(obj),                                   # object dtype
        lambda: layer(x),
        lambda: pyflat.explain(x, data_format="channels_first"),            # C plan
        error(lambda: pyflat.batch_flatten(x, out=wrong_out), ValueError),
        error(lambda: pyflat.batch_flatten(x, num_threads=0), ValueError),
        error(lambda: pyflat.flatten(x, 7), np.exceptions.AxisError),
        error(lambda: pyflat.batch_flatten([[1], [2, 3]]), ValueError),
        error(lambda: pyflat.batch_flatten(x, copy=False, data_format="channels_first"),
              ValueError),
    ]


@contextlib.contextmanager
def small_copies_threaded() -> Iterator[None]:
    """Send every copy through the C kernel (no numpy shortcut for small or
    simple ones) and let copies of 4 KiB per thread use the pool (the kernel's
    test switch), so that the kernel and its threads are part of the mix."""
    old = lib.pf_force_min_bytes_per_thread(4096)
    old_small, old_simple = api.SMALL_COPY_BYTES, api.SIMPLE_COPY_BYTES
    api.SMALL_COPY_BYTES = api.SIMPLE_COPY_BYTES = 0
    try:
        yield
    finally:
        lib.pf_force_min_bytes_per_thread(old)
        api.SMALL_COPY_BYTES, api.SIMPLE_COPY_BYTES = old_small, old_simple


def rss_growth(n_calls: int) -> int:
    """RSS after ``n_calls`` mixed calls minus RSS before them (after a
    warm-up that lets allocator pools and caches reach their size)."""
    calls = mixed_calls()

    def run(n: int) -> None:
        for _ in range(n // len(calls)):
            for call in calls:
                call()

    with small_copies_threaded():
        run(WARM_UP)
        before = rss()
        run(n_calls)
        return rss() - before


def test_rss_after_100k_calls():
    growth = rss_growth(100_000)
    assert growth < LIMIT, f"RSS grew by {growth} bytes over 10^5 calls"


@pytest.mark.slow
def test_rss_after_a_million_calls():
    growth = rss_growth(1_000_000)
    assert growth < LIMIT, f"RSS grew by {growth} bytes over 10^6 calls"


def test_a_leak_would_show():
    """The measurement sees a leak of 16 bytes a call: keeping one small
    array per call for 10^5 calls grows RSS past the limit."""
    kept = []
    before = rss()
    for _ in range(100_000):
        kept.append(np.empty(16, np.uint8))
    assert rss() - before >= LIMIT
