"""fork() after the thread pool has run: children of ``os.fork()`` and
multiprocessing pools ("fork", "forkserver") get exact results, and nothing
hangs (every wait has a deadline, so a hang fails the test)."""

from __future__ import annotations

import functools
import multiprocessing
import os
import signal
import threading
import time

import numpy as np
import pytest

import pyflat
from pyflat._pyflat import lib

DEADLINE = 60.0  # seconds; a healthy child needs well under one
NUM_THREADS = 2

# Python 3.12+ warns that fork() in a threaded process may deadlock: that is
# exactly what these tests check does not happen.
pytestmark = pytest.mark.filterwarnings("ignore:.*fork.*:DeprecationWarning")


def images(seed: int = 0) -> np.ndarray:
    """4 MiB of NCHW uint32: channels_first flattening is a threaded transpose."""
    return np.random.default_rng(seed).integers(0, 2**32, (16, 64, 32, 32), dtype=np.uint32)


def expected_of(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.moveaxis(a, 1, -1)).reshape(len(a), -1)


flatten_channels_first = functools.partial(pyflat.batch_flatten, data_format="channels_first",
                                           num_threads=NUM_THREADS)


@pytest.fixture
def warm_pool():
    """The pool has workers: the state fork() has to cope with."""
    a = images()
    assert pyflat.explain(a, data_format="channels_first",
                          num_threads=NUM_THREADS).num_threads == NUM_THREADS
    assert np.array_equal(flatten_channels_first(a), expected_of(a))
    assert lib.pf_pool_size() >= NUM_THREADS - 1


def wait_child(pid: int, deadline: float = DEADLINE) -> int:
    """The child's exit status; kills it and fails if it outlives the deadline."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    pytest.fail(f"forked child {pid} hung for {deadline} s")


def fork_and_check(a: np.ndarray) -> int:
    """Fork; the child flattens ``a`` on several threads and exits 0 if exact."""
    expected = expected_of(a)
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        code = 1
        try:
            code = 0 if np.array_equal(flatten_channels_first(a), expected) else 3
        finally:
            os._exit(code)
    return wait_child(pid)


@pytest.mark.usefixtures("warm_pool")
def test_os_fork_child():
    assert fork_and_check(images(1)) == 0


@pytest.mark.usefixtures("warm_pool")
def test_os_fork_grandchild():
    """A child that used the pool forks again."""
    a, expected = images(2), expected_of(images(2))
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            ok = np.array_equal(flatten_channels_first(a), expected)
            code = fork_and_check(a) if ok else 3
        finally:
            os._exit(code)
    assert wait_child(pid) == 0


@pytest.mark.usefixtures("warm_pool")
def test_os_fork_while_another_thread_copies():
    """fork() while the pool is mid-job in another thread: the atfork
    handlers must leave the child a usable pool."""
    a = images(3)
    expected = expected_of(a)
    stop = threading.Event()
    failures = []

    def busy() -> None:
        while not stop.is_set():
            if not np.array_equal(flatten_channels_first(a), expected):
                failures.append("parent thread: wrong result")

    thread = threading.Thread(target=busy)
    thread.start()
    try:
        codes = [fork_and_check(a) for _ in range(10)]
    finally:
        stop.set()
        thread.join(DEADLINE)
    assert not thread.is_alive(), "parent thread hung"
    assert codes == [0] * 10
    assert not failures


@pytest.mark.usefixtures("warm_pool")
@pytest.mark.parametrize("method", ["fork", "forkserver"])
def test_multiprocessing_pool(method):
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"start method {method!r} not available on this platform")
    inputs = [images(seed) for seed in range(4, 10)]
    context = multiprocessing.get_context(method)
    with context.Pool(3) as pool:
        try:
            results = pool.map_async(flatten_channels_first, inputs).get(DEADLINE)
        except multiprocessing.TimeoutError:
            pool.terminate()
            pytest.fail(f"{method} pool hung for {DEADLINE} s")
    for a, result in zip(inputs, results):
        assert np.array_equal(result, expected_of(a))
    # The parent's pool still works afterwards.
    assert np.array_equal(flatten_channels_first(inputs[0]), expected_of(inputs[0]))
