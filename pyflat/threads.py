"""How many threads the kernel uses: the process-wide default and its sources.

The default is, in order: ``set_num_threads(n)`` (or threadpoolctl's
``threadpool_limits(n)``), the environment variable ``PYFLAT_NUM_THREADS``,
then 1 in a worker process (a forked child, or a multiprocessing child of any
start method), else the CPUs this process may use (affinity mask and cgroup
quota, see :mod:`pyflat.cpus`).  Small copies stay on one thread whatever the
setting (the kernel's plan decides; see ``explain``).

Why 1 in workers: a process that forks workers (a DataLoader, a
multiprocessing pool) already runs one copy per worker, so T threads each
would put workers x T threads on the CPUs; torch's DataLoader drops its own
workers to 1 thread for the same reason.  Measured with
``bench/bench_fork.py``: see the README, "Threads".
"""

from __future__ import annotations

import atexit
import os
import sys
import warnings
from types import ModuleType
from typing import Any, Optional

from ._after_import import call_after_import
from ._pyflat import lib
from .cpus import available_cpus

__all__ = ["set_num_threads", "get_num_threads", "resolve_num_threads",
           "default_num_threads", "available_cpus", "MAX_THREADS", "ENV_VAR"]

ENV_VAR = "PYFLAT_NUM_THREADS"
MAX_THREADS: int = lib.PF_MAX_THREADS  # the kernel's own bound


def _check_count(n: Any, name: str) -> int:
    if isinstance(n, bool) or not hasattr(n, "__index__"):
        raise TypeError(f"{name}: expected a positive integer, got {n!r}")
    try:
        n = n.__index__()
    except TypeError:  # e.g. np.array([2]), whose __index__ refuses
        raise TypeError(f"{name}: expected a positive integer, got {n!r}") from None
    if not 1 <= n <= MAX_THREADS:
        raise ValueError(f"{name}: expected an integer from 1 to {MAX_THREADS}, got {n}")
    return int(n)


def set_num_threads(n: int) -> None:
    """Set the default number of threads for every later call."""
    lib.pf_set_default_threads(_check_count(n, "n"))


def get_num_threads() -> int:
    """The default number of threads."""
    return int(lib.pf_get_default_threads())


def resolve_num_threads(num_threads: Any) -> int:
    """A call's ``num_threads=`` as the kernel takes it (0: the default)."""
    if num_threads is None:
        return 0
    return _check_count(num_threads, "num_threads")


def _from_environment() -> Optional[int]:
    value = os.environ.get(ENV_VAR, "").strip()
    if not value:
        return None
    try:
        return _check_count(int(value), ENV_VAR)
    except (TypeError, ValueError):
        warnings.warn(f"{ENV_VAR}={value!r} is not an integer from 1 to {MAX_THREADS}; "
                      "ignored", RuntimeWarning, stacklevel=3)
        return None


def default_num_threads(worker: bool) -> int:
    """The default before any ``set_num_threads``: ``PYFLAT_NUM_THREADS``, else
    1 in a ``worker`` process, else the CPUs available."""
    from_environment = _from_environment()
    if from_environment is not None:
        return from_environment
    return 1 if worker else min(available_cpus(), MAX_THREADS)


def _in_multiprocessing_child() -> bool:
    """A child started by multiprocessing (spawn, forkserver): it imports
    multiprocessing before anything else, so this needs no import."""
    multiprocessing = sys.modules.get("multiprocessing")
    return multiprocessing is not None and multiprocessing.parent_process() is not None


def _after_fork_in_child() -> None:
    lib.pf_set_default_threads(default_num_threads(worker=True))


def _register_with_threadpoolctl(threadpoolctl: ModuleType) -> None:
    if not hasattr(threadpoolctl, "register"):
        return  # threadpoolctl < 3.0 takes no controllers from other libraries
    from ._threadpoolctl import register_controller
    register_controller()


lib.pf_set_default_threads(default_num_threads(worker=_in_multiprocessing_child()))
os.register_at_fork(after_in_child=_after_fork_in_child)
call_after_import("threadpoolctl", _register_with_threadpoolctl)
atexit.register(lib.pf_pool_shutdown)
