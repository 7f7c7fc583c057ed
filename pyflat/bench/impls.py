"""The implementations timed side by side: pyflat (allocating, and into a
preallocated ``out=``), numpy, torch when it is installed, torchvision on the
image conversion cases when it is installed, and ``memcpy`` of the output's
bytes, the physical limit every other figure is a fraction of.

On a conversion case (:attr:`Case.convert`) pyflat is called with the
case's ``dtype``/``scale``/``offset``, and numpy, torch and torchvision run
what users write instead (the case's expressions).

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
from typing import Any, Callable, ContextManager, Iterator, Optional

import numpy as np

import pyflat
from .cases import Case, channels_last_view

__all__ = ["Impl", "default_impls", "import_torch", "import_torchvision",
           "ParallelMemcpy", "output_nbytes"]

Work = Callable[[], Any]


def _no_setting(threads: int) -> ContextManager[None]:
    return contextlib.nullcontext()


@dataclass(frozen=True)
class Impl:
    """One way of flattening, at a given number of threads.

    ``prepare(a, case, threads)`` returns the callable to time, whose result
    is the flattened (and, for a conversion case, converted) array (``None``
    for memcpy), or ``None`` when this implementation cannot take the input
    (``cannot`` says which inputs, for the report).  ``setting(threads)`` is entered around
    the timing (torch's process-wide thread count).  ``traced``: its
    allocations are visible to ``tracemalloc`` (numpy's are, torch's are
    not).  ``exact``: its result has pyflat's meaning bit for bit; a peer
    running its own expression on a conversion case is not (it may round
    differently in the last bits).
    """

    name: str
    threads: int
    prepare: Callable[[np.ndarray, Case, int], Optional[Work]]
    traced: bool = False
    setting: Callable[[int], ContextManager[None]] = _no_setting
    cannot: str = ""
    exact: bool = False

    @property
    def label(self) -> str:
        return f"{self.name} x{self.threads}"

    def work(self, a: np.ndarray, case: Case) -> Optional[Work]:
        return self.prepare(a, case, self.threads)


def output_nbytes(a: np.ndarray, case: Optional[Case] = None) -> int:
    """Bytes of the flattened output: as many elements as the input, of the
    case's result dtype (the input's without a case)."""
    return a.size * (case.result_dtype.itemsize if case else a.itemsize)


# -- pyflat ------------------------------------------------------------------

def _conversion_kwargs(case: Case) -> dict[str, Any]:
    """pyflat's conversion arguments for ``case`` ({} for a plain copy)."""
    return {} if case.convert is None else case.convert.kwargs()


def _pyflat(a: np.ndarray, case: Case, threads: int) -> Work:
    kwargs = _conversion_kwargs(case)
    return lambda: pyflat.batch_flatten(a, data_format=case.data_format, num_threads=threads,
                                        **kwargs)


def _pyflat_kernel(a: np.ndarray, case: Case, threads: int) -> Work:
    kwargs = _conversion_kwargs(case)
    out = np.empty((a.shape[0], math.prod(a.shape[1:])), case.result_dtype)
    out.reshape(-1).view(np.uint8).fill(0)  # touch the pages (any dtype): the kernel
    # alone is timed, not page faults
    return lambda: pyflat.batch_flatten(a, data_format=case.data_format, out=out,
                                        num_threads=threads, **kwargs)


# -- numpy -------------------------------------------------------------------

def _numpy(a: np.ndarray, case: Case, threads: int) -> Work:
    if case.convert is not None:
        convert = case.convert.numpy
        return lambda: convert(a)
    view = channels_last_view(a, case.data_format)
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


def import_torchvision() -> Any:
    """torchvision's ``transforms.v2.functional``, or ``None`` when
    torchvision is not installed."""
    try:
        from torchvision.transforms.v2 import functional
    except ImportError:
        return None
    return functional


def _torch_prepare(torch: Any) -> Callable[[np.ndarray, Case, int], Optional[Work]]:
    def prepare(a: np.ndarray, case: Case, threads: int) -> Optional[Work]:
        if any(stride < 0 for stride in a.strides):
            return None  # torch tensors cannot have negative strides
        if a.dtype.kind in "VSU":
            return None  # nor records or strings
        t = torch.from_numpy(a)
        if case.convert is not None and case.convert.torch is not None:
            convert = case.convert.torch
            return lambda: convert(torch, t).numpy()
        if case.data_format == "channels_first" and t.ndim > 2:
            t = t.movedim(1, -1)
        return lambda: torch.flatten(t, 1).contiguous().numpy()
    return prepare


def _torchvision_prepare(torch: Any, functional: Any
                         ) -> Callable[[np.ndarray, Case, int], Optional[Work]]:
    def prepare(a: np.ndarray, case: Case, threads: int) -> Optional[Work]:
        if case.convert is None or case.convert.torchvision is None:
            return None  # only image conversions
        convert, t = case.convert.torchvision, torch.from_numpy(a)
        return lambda: convert(torch, functional, t).numpy()
    return prepare


def _torch_setting(torch: Any) -> Callable[[int], ContextManager[None]]:
    @contextlib.contextmanager
    def setting(threads: int) -> Iterator[None]:
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
        pool = self.pool
        futures = [pool.submit(_libc_memcpy, *s) for s in rest] if pool else []
        _libc_memcpy(*first)  # the calling thread copies a slice too
        for future in futures:
            future.result()


def _memcpy(a: np.ndarray, case: Case, threads: int) -> Work:
    return ParallelMemcpy(output_nbytes(a, case), threads)


# -- the set timed ----------------------------------------------------------

def default_impls(threads: list[int], torch: Any = "import",
                  torchvision: Any = "import") -> list[Impl]:
    """The implementations timed, in report order.

    pyflat and memcpy run at every count in ``threads``; numpy has one
    thread; torch, when ``torch`` (a module, ``"import"`` to import it, or
    ``None``) is available, runs with 1 thread and with its default count;
    torchvision (its ``transforms.v2.functional``, ``"import"`` or ``None``;
    only with torch) with torch's default count, on image conversions.
    memcpy runs at 1 thread and at every count above, so every row has its
    denominator.
    """
    if torch == "import":
        torch = import_torch()
    if torchvision == "import":
        torchvision = import_torchvision() if torch is not None else None
    counts = sorted(set(threads))
    memcpy_counts = {1, *counts}
    impls = [Impl("pyflat", t, _pyflat, traced=True, exact=True) for t in counts]
    impls += [Impl("pyflat-kernel", t, _pyflat_kernel, traced=True, exact=True)
              for t in counts]
    impls.append(Impl("numpy", 1, _numpy, traced=True))
    if torch is not None:
        torch_counts = {1, torch.get_num_threads()}
        impls += [Impl("torch", t, _torch_prepare(torch), setting=_torch_setting(torch),
                       cannot="negative strides (torch tensors cannot have them)")
                  for t in sorted(torch_counts)]
        memcpy_counts |= torch_counts
        if torchvision is not None:
            impls.append(Impl("torchvision", torch.get_num_threads(),
                              _torchvision_prepare(torch, torchvision),
                              setting=_torch_setting(torch),
                              cannot="not an image conversion (ToDtype + Normalize)"))
    impls += [Impl("memcpy", t, _memcpy) for t in sorted(memcpy_counts)]
    return impls
