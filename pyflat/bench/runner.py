"""Time every implementation on every case, side by side in one process.

For each case the input is built once, every implementation's result is
checked against numpy's (byte for byte) before it is timed, and the timing is
the best of several repetitions after a warm-up, taken in rounds of one
repetition of every implementation; every repetition is kept, for the spread.  The derived figures of a
case (fraction of memcpy, speedup over numpy and torch) come from rows
measured moments apart, so the noise of a shared machine mostly cancels.

On a conversion case, pyflat's rows must equal numpy's computation of
pyflat's meaning byte for byte (:func:`~.conversion.exact_result`); the
peers' own expressions round differently in the last bits and must be close
to it.  The memcpy rows copy the output's bytes; every other row moves the
input's bytes (read) plus the output's (written), so its GB/s over memcpy's
is its fraction of the traffic limit: memcpy's time for the output bytes x
(bytes read + written) / (2 x output bytes).
"""

from __future__ import annotations

import contextlib
import gc
import math
import time
import tracemalloc
import statistics
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable, Iterator, Optional, Sequence

import numpy as np

from .cases import Case, channels_last_view
from .conversion import close_enough, exact_result
from .impls import Impl, Work, output_nbytes

__all__ = ["CaseInfo", "Record", "Settings", "WrongResult", "run", "step_count",
           "peak_bytes"]


class WrongResult(AssertionError):
    """An implementation's result differs from numpy's."""


@dataclass(frozen=True)
class Settings:
    """How long to measure: ``repeat`` timed repetitions after a warm-up, each
    looping the call until it lasts ``min_seconds`` (for tiny inputs);
    ``quick``: the scaled-down sizes."""

    quick: bool = False
    repeat: int = 7
    min_seconds: float = 2e-3


@dataclass(frozen=True)
class CaseInfo:
    """A measured case's input, as built: ``zero_copy`` when pyflat returns a
    view of it instead of copying; ``skipped``: (label, why) of each
    implementation that cannot take it.  ``input_bytes``: the bytes of the
    elements read.  A conversion case has a ``conversion`` (in a few words)
    and ``expressions``: (implementation, what it runs) of pyflat and its
    peers."""

    name: str
    description: str
    dtype: str
    input_shape: tuple[int, ...]
    data_format: str
    output_bytes: int
    zero_copy: bool
    skipped: tuple[tuple[str, str], ...] = ()
    input_bytes: int = 0
    conversion: str = ""
    expressions: tuple[tuple[str, str], ...] = ()

    @property
    def traffic_bytes(self) -> int:
        """Bytes read + written by one flatten (2 x the output for a copy)."""
        return self.input_bytes + self.output_bytes


@dataclass
class Record:
    """One (case, implementation, threads) measurement.

    ``seconds`` is the best of the ``repeats`` (seconds per call of every
    timed repetition, in the order run).  ``bytes`` is what the call moves:
    the input read once and the output written once (2 x output bytes for a
    copy and for memcpy), so ``gbps`` is comparable with memcpy's and
    ``fraction_of_memcpy`` is the fraction of the traffic limit.
    ``peak_bytes`` is the peak traced allocation of one call (None where
    ``tracemalloc`` cannot see it).  ``speedup_vs_torch``: torch's time at
    its faster thread count over this row's.
    """

    case: str
    impl: str
    threads: int
    seconds: float
    bytes: int
    peak_bytes: Optional[int] = None
    fraction_of_memcpy: Optional[float] = None
    speedup_vs_numpy: Optional[float] = None
    repeats: list[float] = field(default_factory=list)
    speedup_vs_torch: Optional[float] = None

    @property
    def gbps(self) -> float:
        return self.bytes / self.seconds / 1e9

    def spread(self) -> dict[str, float]:
        """Seconds per call: the fastest, median and slowest repetition."""
        times = self.repeats or [self.seconds]
        return {"min": min(times), "median": statistics.median(times), "max": max(times)}

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "gbps": self.gbps, "seconds_spread": self.spread()}


def calls_per_repetition(work: Work, min_seconds: float) -> int:
    """Calls per timed repetition: enough to last ``min_seconds``, from the
    time of one call (which also serves as the warm-up)."""
    start = time.perf_counter()
    work()
    once = time.perf_counter() - start
    return max(1, math.ceil(min_seconds / once)) if once > 0 else 1000


def seconds_per_call(work: Work, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        work()
    return (time.perf_counter() - start) / calls


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """As timeit does: a garbage collection is not the call's cost."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def peak_bytes(work: Work) -> int:
    """The peak memory ``tracemalloc`` sees allocated during one call."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _same_bytes(result: Any, reference: np.ndarray) -> bool:
    result = np.asarray(result)
    return (result.shape == reference.shape and result.dtype == reference.dtype
            and result.flags.c_contiguous
            and np.array_equal(result.reshape(-1).view(np.uint8),
                               reference.reshape(-1).view(np.uint8)))


def is_right(result: Any, reference: np.ndarray, case: Case, impl: Impl) -> bool:
    """``result`` is ``reference``'s bytes; or, for a peer running its own
    expression on a conversion case, close to it."""
    if case.convert is None or impl.exact:
        return _same_bytes(result, reference)
    return close_enough(np.asarray(result), reference)


def _case_info(case: Case, a: np.ndarray) -> CaseInfo:
    view = channels_last_view(a, case.data_format)
    expressions: tuple[tuple[str, str], ...] = ()
    if case.convert is not None:
        c = case.convert
        expressions = (("pyflat", c.pyflat_text(case.data_format)), ("numpy", c.numpy_text),
                       ("torch", c.torch_text), ("torchvision", c.torchvision_text))
    return CaseInfo(case.name, case.description, str(a.dtype), a.shape, case.data_format,
                    output_nbytes(a, case),
                    bool(view.flags.c_contiguous) and case.convert is None,
                    input_bytes=output_nbytes(a),
                    conversion=case.convert.describe(a.dtype) if case.convert else "",
                    expressions=tuple((impl, text) for impl, text in expressions if text))


def _measure_case(case: Case, impls: Sequence[Impl], settings: Settings,
                  progress: Callable[[str], None]) -> tuple[CaseInfo, list[Record]]:
    a = case.make(quick=settings.quick)
    info = _case_info(case, a)
    reference = exact_result(np.ascontiguousarray(channels_last_view(a, case.data_format)),
                             case.convert)

    timed = []  # (impl, work, calls per repetition)
    for impl in impls:
        progress(f"{case.name}: {impl.label}")
        work = impl.work(a, case)
        if work is None:  # it cannot take this input
            info = replace(info, skipped=(*info.skipped, (impl.label, impl.cannot)))
            continue
        with impl.setting(impl.threads):
            result = work()
            if result is not None and not is_right(result, reference, case, impl):
                raise WrongResult(f"{impl.label} gave a wrong result for case {case.name}")
            del result
            timed.append((impl, work, calls_per_repetition(work, settings.min_seconds)))

    # Rounds of one repetition of every implementation: a burst of load from
    # elsewhere on the machine slows one round of all, not all of one.
    repeats: list[list[float]] = [[] for _ in timed]
    for round_ in range(settings.repeat):
        progress(f"{case.name}: round {round_ + 1} of {settings.repeat}")
        with _gc_paused():
            for k, (impl, work, calls) in enumerate(timed):
                with impl.setting(impl.threads):
                    repeats[k].append(seconds_per_call(work, calls))

    records = [Record(case.name, impl.name, impl.threads, min(times),
                      2 * info.output_bytes if impl.name == "memcpy" else info.traffic_bytes,
                      peak_bytes(work) if impl.traced else None, repeats=times)
               for (impl, work, _), times in zip(timed, repeats)]
    _derive(records)
    return info, records


def _derive(records: list[Record]) -> None:
    """Fill in each record's fraction of memcpy (of the traffic limit) and
    speedups over numpy and over torch at its faster thread count.

    The memcpy a row is compared with is the fastest using at most as many
    threads as the row: what the same resources could do at best.
    """
    memcpy = {r.threads: r.gbps for r in records if r.impl == "memcpy"}
    numpy_seconds = next((r.seconds for r in records if r.impl == "numpy"), None)
    torch_seconds = min((r.seconds for r in records if r.impl == "torch"), default=None)
    for r in records:
        limits = [gbps for threads, gbps in memcpy.items() if threads <= r.threads]
        if limits:
            r.fraction_of_memcpy = r.gbps / max(limits)
        if numpy_seconds is not None:
            r.speedup_vs_numpy = numpy_seconds / r.seconds
        if torch_seconds is not None:
            r.speedup_vs_torch = torch_seconds / r.seconds


def step_count(cases: Sequence[Case], impls: Sequence[Impl], settings: Settings) -> int:
    """Steps of :func:`run`: per case, a check of each implementation, then
    the timed rounds."""
    return len(cases) * (len(impls) + settings.repeat)


def run(cases: Sequence[Case], impls: Sequence[Impl], settings: Settings = Settings(),
        progress: Optional[Callable[[str], None]] = None
        ) -> tuple[list[CaseInfo], list[Record]]:
    """Measure every implementation on every case, a case at a time.

    Returns the cases as built and one record per (case, implementation,
    threads); an implementation that cannot take a case (torch and negative
    strides, pyflat without the conversion API on a conversion case) has no
    record there.  ``progress(label)`` is called before each step
    (:func:`step_count` of them).  Raises :class:`WrongResult` when an
    implementation's output differs from numpy's (on a conversion case:
    pyflat's from its exact meaning, a peer's by more than rounding).
    """
    progress = progress or (lambda label: None)
    infos: list[CaseInfo] = []
    records: list[Record] = []
    for case in cases:
        info, case_records = _measure_case(case, impls, settings, progress)
        infos.append(info)
        records += case_records
    return infos, records
