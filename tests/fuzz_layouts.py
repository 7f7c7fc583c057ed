"""Layout fuzzing: arbitrary (shape, strides, offset, itemsize) views of a
bounded byte buffer, copied by the kernel under every test switch and checked
against a pure-Python reference that walks the indices itself.

Used by ``test_fuzz_layouts.py`` (hypothesis) and runnable on its own for long
runs that print counts::

    python tests/fuzz_layouts.py --layouts 100000 --seed 1

The source buffer is allocated at exactly the bytes the view can touch, so an
address sanitizer build flags any read outside the view; the output sits
between guard bytes, so a stray write shows as a mismatch even without one.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import itertools
import sys
import time
from dataclasses import dataclass
from typing import Iterator, List, NamedTuple, Optional

import numpy as np

if __name__ == "__main__":  # run from a checkout without installing
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))

import pyflat  # noqa: E402
from pyflat import _kernel  # noqa: E402
from pyflat._pyflat import lib  # noqa: E402

GUARD = 64          # guard bytes on each side of the output
GUARD_BYTE = 0xA5
GUARDS = bytes([GUARD_BYTE]) * GUARD
UINT_SIZES = (1, 2, 4, 8)


@dataclass(frozen=True)
class Layout:
    """A view: element ``i`` starts at byte ``offset + sum(i[k] * strides[k])``
    of a buffer of ``buffer_size`` bytes, and has ``itemsize`` bytes."""

    shape: tuple
    strides: tuple
    offset: int
    itemsize: int
    buffer_size: int
    uint: bool = False  # numpy dtype: uN instead of VN (same bytes)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def dtype(self) -> np.dtype:
        if self.uint:
            return np.dtype(f"u{self.itemsize}")
        return np.dtype(("V", self.itemsize))


def byte_span(shape: tuple, strides: tuple, itemsize: int) -> tuple:
    """(lowest, one past highest) byte a view touches, relative to element 0."""
    if 0 in shape:
        return 0, 0
    low = sum(min(0, (n - 1) * s) for n, s in zip(shape, strides))
    high = sum(max(0, (n - 1) * s) for n, s in zip(shape, strides)) + itemsize
    return low, high


def fitted(shape, strides, itemsize: int, slack_before: int = 0,
           slack_after: int = 0, uint: bool = False) -> Layout:
    """The layout placed in the smallest buffer that holds it, plus slack."""
    shape, strides = tuple(int(n) for n in shape), tuple(int(s) for s in strides)
    low, high = byte_span(shape, strides, itemsize)
    offset = slack_before - low
    size = max(offset + high, offset + itemsize) + slack_after
    return Layout(shape, strides, offset, itemsize, size, uint)


def make_source(layout: Layout, rng: np.random.Generator) -> np.ndarray:
    """Random bytes, exactly ``buffer_size`` of them (a fresh allocation)."""
    return rng.integers(0, 256, layout.buffer_size, dtype=np.uint8)


def make_view(layout: Layout, buffer: np.ndarray) -> np.ndarray:
    """The read-only view ``layout`` describes, on the uint8 ``buffer``."""
    first = buffer[layout.offset:layout.offset + layout.itemsize].view(layout.dtype)
    return np.lib.stride_tricks.as_strided(first, layout.shape, layout.strides,
                                           writeable=False)


def strided_bytes(buffer: bytes, start: int, count: int, step: int) -> bytes:
    """``buffer[start + k * step]`` for ``k < count``."""
    if step == 0:
        return buffer[start:start + 1] * count
    stop = start + count * step
    return buffer[start:stop if stop >= 0 else None:step]


def reference_bytes(layout: Layout, buffer: bytes) -> bytes:
    """The view's elements in C order, by walking its indices (no numpy)."""
    shape, strides, e = layout.shape, layout.strides, layout.itemsize
    if 0 in shape:
        return b""
    if not shape:
        return buffer[layout.offset:layout.offset + e]
    *outer, inner = shape
    *outer_strides, inner_stride = strides
    row = inner * e
    out = bytearray(layout.size * e)
    position = 0
    for index in itertools.product(*(range(n) for n in outer)):
        start = layout.offset + sum(i * s for i, s in zip(index, outer_strides))
        if inner <= e:  # one slice per element
            offsets = [start + k * inner_stride for k in range(inner)]
            out[position:position + row] = b"".join(buffer[p:p + e] for p in offsets)
        else:  # one extended slice per byte of the element
            for j in range(e):
                out[position + j:position + row:e] = strided_bytes(
                    buffer, start + j, inner, inner_stride)
        position += row
    return bytes(out)


class Setting(NamedTuple):
    """The kernel's test switches for one run."""

    simd: int
    streaming: int
    num_threads: int
    tiny_threads: bool  # let copies of any size use several threads

    def __str__(self) -> str:
        simd = _kernel.simd_name(self.simd)
        return (f"simd={simd} streaming={self.streaming} "
                f"num_threads={self.num_threads}{' tiny-threads' if self.tiny_threads else ''}")


def can_force_tiny_threads() -> bool:
    """Whether this kernel build has the switch that lets small copies use
    several threads (without it only outputs >= 256 KiB per thread do)."""
    return hasattr(lib, "pf_force_min_bytes_per_thread")


def settings_to_run(num_threads: int = 3) -> List[Setting]:
    """Every SIMD level x streaming on/off x one thread / several."""
    tiny = can_force_tiny_threads()
    return [Setting(simd, streaming, threads, tiny and threads > 1)
            for simd in (lib.PF_SIMD_NONE, lib.PF_SIMD_SSE2, lib.PF_SIMD_AVX2, lib.PF_SIMD_AVX512)
            for streaming in (0, 1)
            for threads in (1, num_threads)]


@contextlib.contextmanager
def forced(setting: Setting) -> Iterator[None]:
    old_simd = lib.pf_force_simd(setting.simd)
    old_streaming = lib.pf_force_streaming(setting.streaming)
    if can_force_tiny_threads():
        old_bytes = lib.pf_force_min_bytes_per_thread(1 if setting.tiny_threads else -1)
    try:
        yield
    finally:
        lib.pf_force_simd(old_simd)
        lib.pf_force_streaming(old_streaming)
        if can_force_tiny_threads():
            lib.pf_force_min_bytes_per_thread(old_bytes)


def kernel_output(view: np.ndarray, setting: Setting) -> tuple:
    """The kernel's copy of ``view`` under ``setting`` (called through the
    binding: the public functions hand tiny copies to numpy): (bytes written
    to the output, whether the guard bytes around it survived)."""
    nbytes = view.size * view.dtype.itemsize
    guarded = np.full(nbytes + 2 * GUARD, GUARD_BYTE, dtype=np.uint8)
    out = guarded[GUARD:GUARD + nbytes].view(view.dtype)
    with forced(setting):
        _kernel.copy_into(view, out, setting.num_threads)
    intact = guarded[:GUARD].tobytes() == guarded[GUARD + nbytes:].tobytes() == GUARDS
    return out.tobytes(), intact


@dataclass
class Mismatch:
    layout: Layout
    setting: Setting
    what: str

    def __str__(self) -> str:
        lay = self.layout
        return (f"{self.what}: shape={lay.shape} strides={lay.strides} offset={lay.offset} "
                f"itemsize={lay.itemsize} buffer={lay.buffer_size} [{self.setting}]")


def check_layout(layout: Layout, rng: np.random.Generator,
                 settings: List[Setting]) -> List[Mismatch]:
    """Run ``layout`` under each setting; the ways it went wrong."""
    buffer = make_source(layout, rng)
    before = buffer.tobytes()
    expected = reference_bytes(layout, before)
    view = make_view(layout, buffer)
    found = []
    for setting in settings:
        got, intact = kernel_output(view, setting)
        if got != expected:
            found.append(Mismatch(layout, setting, "wrong output"))
        if not intact:
            found.append(Mismatch(layout, setting, "wrote outside out"))
    # The public path, which may also return a view or let numpy copy.
    if pyflat.flatten(view, num_threads=settings[-1].num_threads).tobytes() != expected:
        found.append(Mismatch(layout, settings[-1], "pyflat.flatten differs"))
    if buffer.tobytes() != before:
        found.append(Mismatch(layout, settings[0], "source modified"))
    return found


# -- random layouts for the standalone runner --------------------------------

ITEMSIZES = (1, 1, 2, 3, 4, 4, 5, 7, 8, 8, 12, 16, 16, 24, 32, 64)
SIDES = (0, 1, 2, 3, 4, 5, 7, 8, 9, 16, 33)
SIDE_WEIGHTS = np.array([1, 8, 8, 8, 8, 6, 6, 4, 3, 3, 1]) / 56


def random_slack(rng: np.random.Generator) -> int:
    """Spare bytes beside the view: often none, so overruns hit the edge."""
    return int(rng.choice([0, 0, 1, rng.integers(2, 64)]))


def random_layout(rng: np.random.Generator, max_elements: int = 4096) -> Layout:
    """A small layout: half arbitrary byte strides (zero, negative, overlapping,
    not multiples of the itemsize), half sliced and permuted C-order arrays."""
    e = int(rng.choice(ITEMSIZES))
    ndim = int(rng.choice([0, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 5, 6]))
    shape = [int(rng.choice(SIDES, p=SIDE_WEIGHTS)) for _ in range(ndim)]
    while np.prod(shape, dtype=np.int64) > max_elements:
        shape[int(np.argmax(shape))] //= 2
    if rng.random() < 0.5:
        strides = [int(rng.choice([0, e, -e, 2 * e, rng.integers(-3 * e - 8, 3 * e + 9)]))
                   for _ in shape]
    else:
        strides = natural_strides(rng, shape, e)
    return fitted(shape, strides, e, random_slack(rng), random_slack(rng),
                  uint=e in UINT_SIZES and bool(rng.random() < 0.5))


def natural_strides(rng: np.random.Generator, shape: list, e: int) -> list:
    """Strides of ``shape`` as a view of a C-contiguous array: axes permuted,
    stepped by 1, 2, 3, -1 or -2, maybe with padding between rows."""
    steps = [int(rng.choice([1, 1, 1, 2, 3, -1, -2])) for _ in shape]
    order = rng.permutation(len(shape))
    strides = [0] * len(shape)
    stride = e * int(rng.choice([1, 1, 1, 2]))
    for axis in order[::-1]:  # last of ``order`` varies fastest in memory
        strides[axis] = stride * steps[axis]
        stride *= max(shape[axis], 1) * abs(steps[axis]) + int(rng.choice([0, 0, 0, 1]))
    return strides


def random_large_layout(rng: np.random.Generator) -> Layout:
    """2 to 6 MiB of output, rows of >= 512 elements (the reference walks the
    outer axes in Python), so that the kernel splits it among threads."""
    e = int(rng.choice([1, 2, 4, 8, 3, 16]))
    target = int(rng.integers(2 << 20, 6 << 20)) // e
    inner = int(rng.integers(512, 4096))
    outer_count = max(target // inner, 2)
    outer = [outer_count] if rng.random() < 0.5 else [max(outer_count // 4, 1), 4]
    shape = outer + [inner]
    if rng.random() < 0.5:
        strides = natural_strides(rng, shape, e)
    else:  # a C-order array with its axes permuted: transposes
        strides = permuted_strides(shape, list(rng.permutation(len(shape))), e)
    return fitted(shape, strides, e, int(rng.integers(0, 8)), 0)


def permuted_strides(shape: list, order: list, e: int) -> list:
    """Strides of a C-contiguous array whose axes, in memory order, are ``order``."""
    strides = [0] * len(shape)
    stride = e
    for axis in order[::-1]:
        strides[axis] = stride
        stride *= shape[axis]
    return strides


def kernel_of(layout: Layout, setting: Setting) -> tuple:
    """(kernel name, threads) of the plan ``setting`` gives ``layout``."""
    view = make_view(layout, np.zeros(layout.buffer_size, np.uint8))
    with forced(setting):
        plan = _kernel.make_plan(view, setting.num_threads)
    return _kernel.kernel_name(plan.kernel), plan.num_threads


def run(n_layouts: int, n_large: int, seed: int, show: int = 10) -> int:
    rng = np.random.default_rng(seed)
    settings = settings_to_run()
    kernels: collections.Counter = collections.Counter()
    mismatches: List[Mismatch] = []
    multi_threaded = checks = 0
    started = time.perf_counter()
    for i in range(n_layouts + n_large):
        layout = random_layout(rng) if i < n_layouts else random_large_layout(rng)
        kernel, threads = kernel_of(layout, settings[-1])
        kernels[kernel] += 1
        multi_threaded += threads > 1
        mismatches += check_layout(layout, rng, settings)
        checks += len(settings)
    elapsed = time.perf_counter() - started
    print(f"layouts: {n_layouts + n_large} ({n_layouts} small, {n_large} of 2-6 MiB), "
          f"seed {seed}, {elapsed:.0f} s")
    print(f"settings per layout: {len(settings)} "
          f"(simd none/sse2/avx2/avx512vbmi x streaming 0/1 x num_threads 1/3"
          f"{', small copies forced onto threads' if can_force_tiny_threads() else ''})")
    print(f"kernel runs: {checks}")
    print("plans by kernel: " + ", ".join(f"{k} {n}" for k, n in sorted(kernels.items())))
    print(f"layouts whose num_threads=3 plan used several threads: {multi_threaded}")
    print(f"mismatches: {len(mismatches)}")
    for mismatch in mismatches[:show]:
        print(f"  {mismatch}")
    return 1 if mismatches else 0


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layouts", type=int, default=100_000, help="small layouts")
    parser.add_argument("--large", type=int, default=100, help="layouts of 2-6 MiB")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    return run(args.layouts, args.large, args.seed)


if __name__ == "__main__":
    sys.exit(main())
