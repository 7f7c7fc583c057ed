"""Time every implementation on every case, side by side in one process.

For each case the input is built once, every implementation's result is
checked against numpy's (byte for byte) before it is timed, and the timing is
the best of several repetitions after a warm-up, taken in rounds of one
repetition of every implementation; every repetition is kept, for the spread.  The derived figures of a
case (fraction of memcpy, speedup over numpy) come from rows measured
moments apart, so the noise of a shared machine mostly cancels.
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
    implementation that cannot take it."""

    name: str
    description: str
    dtype: str
    input_shape: tuple[int, ...]
    data_format: str
    output_bytes: int
    zero_copy: bool
    skipped: tuple[tuple[str, str], ...] = ()


@dataclass
class Record:
    """One (case, implementation, threads) measurement.

    ``seconds`` is the best of the ``repeats`` (seconds per call of every
    timed repetition, in the order run).  ``bytes`` is what the copy moves:
    the output read once and written once (2 x output bytes), so ``gbps`` is
    comparable with memcpy's.  ``peak_bytes`` is the peak traced allocation
    of one call (None where ``tracemalloc`` cannot see it).
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


def _measure_case(case: Case, impls: Sequence[Impl], settings: Settings,
                  progress: Callable[[str], None]) -> tuple[CaseInfo, list[Record]]:
    a = case.make(quick=settings.quick)
    view = channels_last_view(a, case.data_format)
    info = CaseInfo(case.name, case.description, str(a.dtype), a.shape, case.data_format,
                    output_nbytes(a), bool(view.flags.c_contiguous))
    reference = np.ascontiguousarray(view).reshape(a.shape[0], -1)

    timed = []  # (impl, work, calls per repetition)
    for impl in impls:
        progress(f"{case.name}: {impl.label}")
        work = impl.work(a, case.data_format)
        if work is None:  # it cannot take this input
            info = replace(info, skipped=(*info.skipped, (impl.label, impl.cannot)))
            continue
        with impl.setting(impl.threads):
            result = work()
            if result is not None and not _same_bytes(result, reference):
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

    records = [Record(case.name, impl.name, impl.threads, min(times), 2 * info.output_bytes,
                      peak_bytes(work) if impl.traced else None, repeats=times)
               for (impl, work, _), times in zip(timed, repeats)]
    _derive(records)
    return info, records


def _derive(records: list[Record]) -> None:
    """Fill in each record's fraction of memcpy and speedup over numpy.

    The memcpy a row is compared with is the fastest using at most as many
    threads as the row: what the same resources could do at best.
    """
    memcpy = {r.threads: r.gbps for r in records if r.impl == "memcpy"}
    numpy_seconds = next((r.seconds for r in records if r.impl == "numpy"), None)
    for r in records:
        limits = [gbps for threads, gbps in memcpy.items() if threads <= r.threads]
        if limits:
            r.fraction_of_memcpy = r.gbps / max(limits)
        if numpy_seconds is not None:
            r.speedup_vs_numpy = numpy_seconds / r.seconds


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
    strides) has no record there.  ``progress(label)`` is called before each
    step (:func:`step_count` of them).  Raises
    :class:`WrongResult` when an implementation's output differs from numpy's.
    """
    progress = progress or (lambda label: None)
    infos: list[CaseInfo] = []
    records: list[Record] = []
    for case in cases:
        info, case_records = _measure_case(case, impls, settings, progress)
        infos.append(info)
        records += case_records
    return infos, records
