"""The implementations timed side by side: pyflat (allocating, and into a
preallocated ``out=``), numpy, torch when it is installed, and ``memcpy`` of
the same number of bytes, the physical limit every other figure is a fraction
of.

Each :class:`Impl` turns an input into a zero-argument callable that does the
work once, so the timing loop measures nothing but the work; the setup
(allocating ``out``, converting to a tensor) happens before.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, ContextManager, Optional

import numpy as np

import pyflat

from .cases import channels_last_view

__all__ = ["Impl", "default_impls", "import_torch", "ParallelMemcpy"]

Work = Callable[[], Any]


def _no_setting(threads: int) -> ContextManager:
    return contextlib.nullcontext()


@dataclass(frozen=True)
class Impl:
    """One way of flattening, at a given number of threads.

    ``prepare(a, data_format, threads)`` returns the callable to time, whose
    result is the flattened array (``None`` for memcpy), or ``None`` when this
    implementation cannot take the input.  ``setting(threads)`` is entered
    around the timing (torch's process-wide thread count).  ``traced``: its
    allocations are visible to ``tracemalloc`` (numpy's are, torch's are not).
    """

    name: str
    threads: int
    prepare: Callable[[np.ndarray, str, int], Optional[Work]]
    traced: bool = False
    setting: Callable[[int], ContextManager] = _no_setting

    @property
    def label(self) -> str:
        return f"{self.name} x{self.threads}"

    def work(self, a: np.ndarray, data_format: str) -> Optional[Work]:
        return self.prepare(a, data_format, self.threads)


def output_nbytes(a: np.ndarray) -> int:
    """Bytes of the flattened output (the same as of the input)."""
    return a.size * a.itemsize


# -- pyflat ------------------------------------------------------------------

def _pyflat(a: np.ndarray, data_format: str, threads: int) -> Work:
    return lambda: pyflat.batch_flatten(a, data_format=data_format, num_threads=threads)


def _pyflat_kernel(a: np.ndarray, data_format: str, threads: int) -> Work:
    out = np.empty((a.shape[0], math.prod(a.shape[1:])), a.dtype)
    out.reshape(-1).view(np.uint8).fill(0)  # touch the pages (any dtype): the kernel
    # alone is timed, not page faults
    return lambda: pyflat.batch_flatten(a, data_format=data_format, out=out,
                                        num_threads=threads)


# -- numpy -------------------------------------------------------------------

def _numpy(a: np.ndarray, data_format: str, threads: int) -> Work:
    view = channels_last_view(a, data_format)
    n = a.shape[0]
    return lambda: np.ascontiguousarray(view).reshape(n, -1)


# -- torch -------------------------------------------------------------------

def import_torch() -> Any:
    """The torch module, or ``None`` when it is not installed."""
    try:
        import torch
    except ImportError:
        return None
    return torch


def _torch_prepare(torch: Any) -> Callable[[np.ndarray, str, int], Optional[Work]]:
    def prepare(a: np.ndarray, data_format: str, threads: int) -> Optional[Work]:
        if any(stride < 0 for stride in a.strides):
            return None  # torch tensors cannot have negative strides
        if a.dtype.kind in "VSU":
            return None  # nor records or strings
        t = torch.from_numpy(a)
        if data_format == "channels_first" and t.ndim > 2:
            t = t.movedim(1, -1)
        return lambda: torch.flatten(t, 1).contiguous().numpy()
    return prepare


def _torch_setting(torch: Any) -> Callable[[int], ContextManager]:
    @contextlib.contextmanager
    def setting(threads: int):
        before = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            yield
        finally:
            torch.set_num_threads(before)
    return setting


# -- memcpy ------------------------------------------------------------------

_libc_memcpy = ctypes.CDLL(None).memcpy
_libc_memcpy.argtypes = (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)
_libc_memcpy.restype = ctypes.c_void_p


class ParallelMemcpy:
    """``memcpy`` of ``nbytes`` between two preallocated, already touched
    buffers, split into ``threads`` equal slices copied at once.

    ctypes releases the GIL around foreign calls, so the slices run in
    parallel.  The pool is made once, so a call costs one submit per thread;
    its idle workers exit when the object is dropped.
    """

    def __init__(self, nbytes: int, threads: int) -> None:
        self.src = np.ones(nbytes, np.uint8)
        self.dst = np.zeros(nbytes, np.uint8)
        self.dst.fill(1)
        bounds = [nbytes * i // threads for i in range(threads + 1)]
        src, dst = self.src.ctypes.data, self.dst.ctypes.data
        self.slices = [(dst + lo, src + lo, hi - lo) for lo, hi in zip(bounds, bounds[1:])]
        self.pool = ThreadPoolExecutor(threads - 1) if threads > 1 else None

    def __call__(self) -> None:
        first, *rest = self.slices
        futures = [self.pool.submit(_libc_memcpy, *s) for s in rest]
        _libc_memcpy(*first)  # the calling thread copies a slice too
        for future in futures:
            future.result()


def _memcpy(a: np.ndarray, data_format: str, threads: int) -> Work:
    return ParallelMemcpy(output_nbytes(a), threads)


# -- the set timed ----------------------------------------------------------

def default_impls(threads: list[int], torch: Any = "import") -> list[Impl]:
    """The implementations timed, in report order.

    pyflat and memcpy run at every count in ``threads``; numpy has one
    thread; torch, when ``torch`` (a module, ``"import"`` to import it, or
    ``None``) is available, runs with 1 thread and with its default count.
    memcpy runs at 1 thread and at every count above, so every row has its
    denominator.
    """
    if torch == "import":
        torch = import_torch()
    counts = sorted(set(threads))
    memcpy_counts = {1, *counts}
    impls = [Impl("pyflat", t, _pyflat, traced=True) for t in counts]
    impls += [Impl("pyflat-kernel", t, _pyflat_kernel, traced=True) for t in counts]
    impls.append(Impl("numpy", 1, _numpy, traced=True))
    if torch is not None:
        torch_counts = {1, torch.get_num_threads()}
        impls += [Impl("torch", t, _torch_prepare(torch), setting=_torch_setting(torch))
                  for t in sorted(torch_counts)]
        memcpy_counts |= torch_counts
    impls += [Impl("memcpy", t, _memcpy) for t in sorted(memcpy_counts)]
    return impls
