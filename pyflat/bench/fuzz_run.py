"""Measure pyflat on fuzzed layouts (:mod:`.fuzz`) against each layout's
traffic limit and against numpy, side by side in one process.

Definitions
-----------
- For each layout four callables are timed in interleaved rounds (one timing
  of each per round, memcpy's at both ends of it; a timing is a loop of
  calls lasting ``min_seconds``, 2 ms, run twice and timed the second time,
  so that each callable is timed in the steady state of its own data in
  the caches, as memcpy's is when it follows itself: on outputs that fit
  in the last-level cache, the first few calls after the others' run up
  to 3x slower while the caches refill), after a warm-up; the best of
  ``repeat`` rounds (5; 3 with ``--quick``; ``--repeat R``), and of up to 3 x as many while
  the last round still bettered some best by more than 5% (load from
  elsewhere delays the result instead of skewing it):

  - **kernel**: pyflat's C kernel into a preallocated, touched ``out``
    (``_kernel.copy_into(view, out, num_threads=T, decline_simple_below=0)``:
    always the kernel, never numpy);
  - **memcpy**: libc ``memcpy`` of the output's bytes, split among the same
    ``T`` threads (calls from a Python thread pool; ctypes releases the GIL),
    between two buffers allocated and touched for the layout, as its output
    is; with ``T > 1`` also on one thread (**memcpy_1**), and the faster of
    the two is *memcpy seconds*, as in the catalog run (the fastest memcpy
    using at most ``T`` threads);
  - **numpy**: ``np.ascontiguousarray(view).reshape(n, -1)``, end to end;
  - **pyflat**: ``pyflat.batch_flatten(a, data_format=..., num_threads=T)``,
    end to end (allocating its result, as numpy does).

- Before timing, the kernel's and pyflat's results are compared byte for
  byte with numpy's; a difference stops the run with an error.
- **Traffic limit**: the time the memory traffic the layout must cause takes
  at memcpy's speed, ``memcpy seconds x (source lines x 64 + output bytes) /
  (2 x output bytes)``.  *Source lines* is the exact number of distinct
  64-byte lines (of the real addresses) the input's elements touch
  (:func:`source_lines`): a gather of every other float32 touches as many
  lines as its whole rows, a broadcast input next to none.
- **Fraction of the limit**: limit / seconds (1: memory speed).  min, p10 and
  median are over the layouts with outputs of 1 MB (2**20 bytes) or more;
  p10 is numpy's linearly interpolated 10th percentile.
- **Slower than numpy**: pyflat's end-to-end time over numpy's above 1
  (strict) or above 1.05 (beyond the 5% measurement noise allowed).
- The limit is measured on buffers of the output's size: outputs well
  under the last-level cache (32 MB on the project's 2-core EPYC) are
  copied by memcpy from cache, as are the kernel's when its source fits too.  Compare layouts of
  similar size; the machine may be shared, so compare figures measured side
  by side, not absolute times.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional

import numpy as np

import pyflat
from pyflat import _kernel

from .fuzz import FuzzLayout, flattened_view, itemsize_class, layouts
from .impls import _libc_memcpy
from .runner import WrongResult, _gc_paused, calls_per_repetition, seconds_per_call

__all__ = ["FuzzSettings", "FuzzResult", "source_lines", "ThreadedMemcpy", "measure",
           "measure_all", "IMPLS"]

LINE = 64
IMPLS = ("kernel", "memcpy", "numpy", "pyflat")  # and "memcpy_1" with threads > 1


@dataclass(frozen=True)
class FuzzSettings:
    """A fuzz run: layouts ``start .. start+count-1`` of ``seed`` with outputs
    of ``min_bytes`` to ``max_bytes``, measured on ``threads`` threads, best of
    ``repeat`` rounds, each timing lasting at least ``min_seconds``."""

    seed: int
    count: int
    threads: int
    min_bytes: int
    max_bytes: int
    repeat: int = 5
    min_seconds: float = 2e-3
    start: int = 0


@dataclass
class FuzzResult:
    """One layout's measurement.  ``seconds`` has a best time per name in
    :data:`IMPLS`; ``plan_kernel`` is the kernel ``pyflat.explain`` names,
    ``numpy_faster`` whether its plan hands the copy to numpy (kernels that
    have such a cost model)."""

    layout: FuzzLayout
    source_lines: int
    seconds: dict[str, float]
    plan_kernel: str
    explain_text: Optional[str] = field(default=None, repr=False)
    numpy_faster: bool = False  # explain(): the cost model lets numpy copy (safety net)

    @property
    def output_bytes(self) -> int:
        return self.layout.output_bytes

    @property
    def traffic(self) -> float:
        """(source lines x 64 + output bytes) / (2 x output bytes)."""
        return (self.source_lines * LINE + self.output_bytes) / (2 * self.output_bytes)

    @property
    def memcpy_seconds(self) -> float:
        """The fastest memcpy of the output's bytes on at most ``T`` threads."""
        return float(min(self.seconds["memcpy"], self.seconds.get("memcpy_1", math.inf)))

    @property
    def limit_seconds(self) -> float:
        return self.memcpy_seconds * self.traffic

    def fraction_of_limit(self, impl: str = "kernel") -> float:
        return self.limit_seconds / self.seconds[impl]

    def fraction_of_memcpy(self, impl: str = "kernel") -> float:
        return self.memcpy_seconds / self.seconds[impl]

    @property
    def speedup_vs_numpy(self) -> float:
        """numpy's time over pyflat's, end to end (above 1: pyflat is faster)."""
        return self.seconds["numpy"] / self.seconds["pyflat"]

    def as_dict(self) -> dict[str, Any]:
        lay = self.layout
        view_shape, view_strides = lay.view_strides()
        return {
            "index": lay.index, "seed": lay.seed, "kind": lay.kind,
            "description": lay.description, "dtype": str(lay.dtype),
            "dtype_descr": repr(lay.dtype.descr) if lay.dtype.fields else lay.dtype.str,
            "itemsize": lay.itemsize, "itemsize_class": itemsize_class(lay.itemsize),
            "shape": list(lay.shape), "strides": list(lay.strides),
            "data_format": lay.data_format, "order": list(lay.order),
            "steps": list(lay.steps), "starts": list(lay.starts),
            "broadcast_axis": lay.broadcast_axis, "view_shape": list(view_shape),
            "view_strides": list(view_strides), "offset": lay.offset,
            "buffer_bytes": lay.buffer_bytes, "output_bytes": self.output_bytes,
            "source_lines": self.source_lines, "traffic": self.traffic,
            "seconds": dict(self.seconds), "limit_seconds": self.limit_seconds,
            "fraction_of_limit": {"kernel": self.fraction_of_limit("kernel"),
                                  "pyflat": self.fraction_of_limit("pyflat"),
                                  "numpy": self.fraction_of_limit("numpy")},
            "fraction_of_memcpy": {"kernel": self.fraction_of_memcpy("kernel"),
                                   "pyflat": self.fraction_of_memcpy("pyflat"),
                                   "numpy": self.fraction_of_memcpy("numpy")},
            "speedup_vs_numpy": {"pyflat": self.speedup_vs_numpy,
                                 "kernel": self.seconds["numpy"] / self.seconds["kernel"]},
            "plan_kernel": self.plan_kernel, "numpy_faster": self.numpy_faster,
            "explain": self.explain_text,
        }


# -- the traffic a layout must cause ---------------------------------------------

def source_lines(a: np.ndarray) -> int:
    """The exact number of distinct 64-byte lines (of real addresses) that the
    elements of ``a`` touch.

    Marks, in a byte map laid over the span of ``a``'s memory with the same
    alignment to 64, the first and last byte of every element (an element of
    at most 64 bytes lies in at most two lines, the ones holding those bytes;
    when no element can straddle a line, only the first byte), then counts
    the lines with a mark.  Costs one strided write of 1 or 2 bytes per element
    and one pass over the span; for elements over 64 bytes it marks every
    byte.
    """
    if a.size == 0:
        return 0
    itemsize = a.dtype.itemsize
    address = a.__array_interface__["data"][0]
    low = sum(min(0, (n - 1) * s) for n, s in zip(a.shape, a.strides))
    high = sum(max(0, (n - 1) * s) for n, s in zip(a.shape, a.strides)) + itemsize
    first_line = (address + low) // LINE
    last_line = (address + high - 1) // LINE
    marks = np.zeros((last_line - first_line + 1) * LINE, np.uint8)
    start = address - first_line * LINE  # element 0 in the map
    aligned = (LINE % itemsize == 0 and address % itemsize == 0
               and all(s % itemsize == 0 for s in a.strides))
    if itemsize > LINE:
        probes, probe_stride = itemsize, 1
    elif aligned or itemsize == 1:
        probes, probe_stride = 1, 0
    else:
        probes, probe_stride = 2, itemsize - 1
    view = np.lib.stride_tricks.as_strided(marks[start:], a.shape + (probes,),
                                           a.strides + (probe_stride,))
    view[...] = 1
    words = marks.view(np.uint64).reshape(-1, LINE // 8)
    return int(np.count_nonzero(np.bitwise_or.reduce(words, axis=1)))


# -- memcpy of the same bytes, on the same threads ------------------------------

class ThreadedMemcpy:
    """``memcpy`` split among up to ``threads`` threads (the calling one and a
    pool made once for a run); :meth:`work` gives the callable copying one
    buffer into another in equal slices."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self.pool = ThreadPoolExecutor(threads - 1) if threads > 1 else None

    def work(self, src: np.ndarray, dst: np.ndarray,
             threads: Optional[int] = None) -> Callable[[], None]:
        """The copy of contiguous ``src`` into ``dst`` (as many bytes) on
        ``threads`` (at most the pool's; default all)."""
        if src.nbytes != dst.nbytes or not (src.flags.c_contiguous and dst.flags.c_contiguous):
            raise ValueError("src, dst: expected contiguous buffers of as many bytes")
        threads = self.threads if threads is None else threads
        if not 1 <= threads <= self.threads:
            raise ValueError(f"threads: expected 1 to {self.threads}, got {threads}")
        nbytes = src.nbytes
        bounds = [nbytes * i // threads for i in range(threads + 1)]
        s, d = src.ctypes.data, dst.ctypes.data
        first, *rest = [(d + lo, s + lo, hi - lo) for lo, hi in zip(bounds, bounds[1:])]
        pool = self.pool

        def copy() -> None:
            futures = [pool.submit(_libc_memcpy, *r) for r in rest] if pool else []
            _libc_memcpy(*first)  # the calling thread copies a slice too
            for future in futures:
                future.result()
        return copy

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()


# -- one layout -------------------------------------------------------------------

def _same_bytes(result: np.ndarray, reference: np.ndarray) -> bool:
    return (result.shape == reference.shape and result.dtype == reference.dtype
            and result.flags.c_contiguous
            and np.array_equal(result.reshape(-1).view(np.uint8),
                               reference.reshape(-1).view(np.uint8)))


def kernel_copy(view: np.ndarray, out: np.ndarray, threads: int) -> None:
    """pyflat's C kernel, forced (never handing the copy to numpy)."""
    if not _kernel.copy_into(view, out, num_threads=threads, decline_simple_below=0):
        raise RuntimeError("the kernel declined a copy it was told to make")


def measure(layout: FuzzLayout, a: np.ndarray, settings: FuzzSettings,
            memcpy: ThreadedMemcpy) -> FuzzResult:
    """Verify, then time, pyflat on one layout (see the module docstring).

    Raises :class:`~pyflat.bench.runner.WrongResult` when the kernel's or
    pyflat's bytes differ from numpy's.
    """
    threads, fmt = settings.threads, layout.data_format
    view = flattened_view(layout, a)
    n = a.shape[0]
    reference = np.ascontiguousarray(view).reshape(n, -1)
    out = np.empty_like(reference)
    out.reshape(-1).view(np.uint8).fill(1)  # touch the pages: time the kernel, not page faults
    kernel_copy(view, out, threads)
    if not _same_bytes(out, reference):
        raise WrongResult(f"the kernel gave a wrong result on fuzz layout "
                          f"{layout.seed}/{layout.index}: {layout.description}")
    result = pyflat.batch_flatten(a, data_format=fmt, num_threads=threads)
    if not _same_bytes(result, reference):
        raise WrongResult(f"pyflat.batch_flatten gave a wrong result on fuzz layout "
                          f"{layout.seed}/{layout.index}: {layout.description}")
    del result, reference
    # memcpy's buffers are as fresh as the kernel's output, allocated and
    # touched now like it: a pair kept for a whole run was seen copying at
    # half its speed through every round of some layouts.
    src = np.ones(layout.output_bytes, np.uint8)
    dst = np.empty(layout.output_bytes, np.uint8)
    dst.fill(1)

    works = {
        "kernel": lambda: kernel_copy(view, out, threads),
        "memcpy": memcpy.work(src, dst),
        **({"memcpy_1": memcpy.work(src, dst, 1)} if threads > 1 else {}),
        "numpy": lambda: np.ascontiguousarray(view).reshape(n, -1),
        "pyflat": lambda: pyflat.batch_flatten(a, data_format=fmt, num_threads=threads),
    }
    best = best_times(works, settings.repeat, settings.min_seconds)
    plan = pyflat.explain(a, data_format=fmt, num_threads=threads)
    return FuzzResult(layout, source_lines(a), best, plan.kernel,
                      numpy_faster=bool(getattr(plan, "numpy_faster", False)))


MORE_ROUNDS = 3    # at most repeat x this many rounds
IMPROVEMENT = 0.05  # another round while the last one bettered a best by more than this


def best_times(works: Mapping[str, Callable[[], object]], repeat: int,
               min_seconds: float) -> dict[str, float]:
    """The best seconds per call of each callable, over rounds of one timing
    of each (after as long untimed), the memcpy ones at both ends of a round
    (the denominator of every figure, and cheap); at least ``repeat`` rounds, and more (up to
    ``MORE_ROUNDS x repeat``) while a round still improves some best by more
    than ``IMPROVEMENT``: a burst of load from elsewhere delays the result
    instead of skewing it."""
    calls = {name: calls_per_repetition(work, min_seconds) for name, work in works.items()}
    memcpys = [name for name in works if name.startswith("memcpy")]
    order = memcpys + [name for name in works if name not in memcpys] + memcpys
    best = dict.fromkeys(works, math.inf)
    for round_ in range(MORE_ROUNDS * repeat):
        improved = False
        with _gc_paused():
            for name in order:
                seconds_per_call(works[name], calls[name])  # the steady state
                seconds = seconds_per_call(works[name], calls[name])
                improved |= seconds < best[name] * (1 - IMPROVEMENT)
                best[name] = min(best[name], seconds)
        if round_ + 1 >= repeat and not improved:
            break
    return best


def explain_text(layout: FuzzLayout, a: np.ndarray, threads: int) -> str:
    """``pyflat.explain``'s text for the layout."""
    return str(pyflat.explain(a, data_format=layout.data_format, num_threads=threads))


def measure_all(settings: FuzzSettings,
                progress: Optional[Callable[[FuzzResult], None]] = None) -> list[FuzzResult]:
    """Every layout of the run, measured one at a time; ``progress(result)``
    after each."""
    memcpy = ThreadedMemcpy(settings.threads)
    results = []
    try:
        for layout, a in layouts(settings.seed, settings.count, settings.min_bytes,
                                 settings.max_bytes, settings.start):
            result = measure(layout, a, settings, memcpy)
            results.append(result)
            del a
            if progress is not None:
                progress(result)
    finally:
        memcpy.close()
    return results
