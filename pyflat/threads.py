"""How many threads the kernel uses: the process-wide default and its sources.

The default is, in order: ``set_num_threads(n)``, the environment variable
``PYFLAT_NUM_THREADS``, the CPUs this process may run on.  Small copies stay on
one thread whatever the setting (the kernel's plan decides; see ``explain``).
"""

from __future__ import annotations

import atexit
import os
import warnings
from typing import Any

from ._pyflat import lib

ENV_VAR = "PYFLAT_NUM_THREADS"
MAX_THREADS = lib.PF_MAX_THREADS  # the kernel's own bound


def available_cpus() -> int:
    """CPUs this process may use (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _check_count(n: Any, name: str) -> int:
    if isinstance(n, bool) or not hasattr(n, "__index__"):
        raise TypeError(f"{name}: expected a positive integer, got {n!r}")
    try:
        n = n.__index__()
    except TypeError:  # e.g. np.array([2]), whose __index__ refuses
        raise TypeError(f"{name}: expected a positive integer, got {n!r}") from None
    if not 1 <= n <= MAX_THREADS:
        raise ValueError(f"{name}: expected an integer from 1 to {MAX_THREADS}, got {n}")
    return n


def set_num_threads(n: int) -> None:
    """Set the default number of threads for every later call."""
    lib.pf_set_default_threads(_check_count(n, "n"))


def get_num_threads() -> int:
    """The default number of threads."""
    return lib.pf_get_default_threads()


def resolve_num_threads(num_threads: Any) -> int:
    """A call's ``num_threads=`` as the kernel takes it (0: the default)."""
    if num_threads is None:
        return 0
    return _check_count(num_threads, "num_threads")


def _default_from_environment() -> int:
    value = os.environ.get(ENV_VAR, "").strip()
    if value:
        try:
            return _check_count(int(value), ENV_VAR)
        except (TypeError, ValueError):
            warnings.warn(f"{ENV_VAR}={value!r} is not an integer from 1 to "
                          f"{MAX_THREADS}; using the CPU count", RuntimeWarning,
                          stacklevel=2)
    return min(available_cpus(), MAX_THREADS)


lib.pf_set_default_threads(_default_from_environment())
atexit.register(lib.pf_pool_shutdown)
