"""Random input layouts for the performance fuzzer (``pyflat bench --fuzz``)
and for tuning the kernel on layouts it has never seen.

:func:`draw` gives the *description* of layout ``index`` of seed ``seed``
(numbers only, no memory); :func:`layouts` yields the arrays as well, one at a
time.  Layout ``index`` of a seed is the same whatever ``count`` is asked for
(each draws from its own generator, ``numpy.random.default_rng([seed, index])``)::

    from pyflat.bench.fuzz import layouts
    for layout, a in layouts(seed=1, count=300):
        pyflat.batch_flatten(a, data_format=layout.data_format)

The distribution
----------------
Every layout is an input ``a`` passed to ``batch_flatten(a, data_format=...)``
whose flattened view is *not* C-contiguous (a copy is needed; a draw whose view
is contiguous is redrawn).  It is a view of a base buffer of random bytes:

- **dtype** (:data:`DTYPE_WEIGHTS`): 40% numeric, uniform over bool, int8,
  uint8, int16, uint16, float16, int32, uint32, float32, int64, float64,
  complex64, complex128; 15% ``V1``..``V32``; 15% ``S1``..``S32``; 10%
  ``U1``..``U8`` (4 to 32 bytes); 20% packed structured records of 2 to 4
  fields (u1, i2, f2, i4, f4, f8, S3, c8), at most 32 bytes.  So itemsizes 1
  to 32, odd ones included.
- **dimensions**: 2 to 6, uniform.  Each non-batch dimension is *tiny* (2 to
  4) with probability 0.3, small (5 to 16) 0.25, medium (17 to 128) 0.3,
  large (129 to 1024) 0.15; a batch size is drawn log-uniform from 2 to half
  the output's elements, the largest non-batch dimension is halved (down to
  1) while a sample is bigger than that leaves room for, and the batch
  dimension then makes the output ``output_bytes`` long.
- **output bytes**: log-uniform in ``[min_bytes, max_bytes]`` (1 to 64 MB by
  default), clipped into that range by the batch size.
- **kind** (:data:`KIND_WEIGHTS`), the memory order of the base buffer:
  ``sliced`` (C order: needs one of the slices below, forced on when none is
  drawn) 20%, ``fortran`` 15%, ``permuted`` (a random order with the batch
  axis outermost) 20%, ``batch_moved`` (a random order with the batch axis
  not outermost) 15%, ``channels_first`` (C order, ``data_format=
  "channels_first"``; for 2-d inputs this is a sliced 2-d input) 20%,
  ``broadcast`` (C order, one non-batch axis of stride 0) 10%.
- **on top of any kind**: each axis is sliced with probability 0.3, with a
  start offset of 0 to 3 elements and 0 to 3 elements left over at the end,
  and a step of 1 to 4 (1, 2, 3, 4 with weights 4:3:2:1); each axis is
  reversed with probability 0.12; ``data_format="channels_first"`` with
  probability 0.2 for inputs of 3 or more dimensions (always for that kind);
  a broadcast axis with probability 0.04.  Steps are cut back to 1, one axis
  at a time, while the base buffer is over 4x the output plus 1 MB.  The
  description writes an axis's slice of the base as ``start:-tail:step``, a
  trailing ``r`` when it is reversed, ``bcast`` when broadcast.

The base buffer holds pseudo-random bytes (unique 32-bit words, from the
seed), ``bool`` bytes masked to 0 or 1; its elements keep their natural
alignment (offsets are whole elements of contiguous axes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator, Optional

import numpy as np

from pyflat.api import DataFormat

from .cases import channels_last_view

__all__ = ["FuzzLayout", "draw", "layouts", "make_array", "flattened_view", "KINDS",
           "KIND_WEIGHTS", "DTYPE_WEIGHTS", "MIN_BYTES", "MAX_BYTES", "itemsize_class",
           "ITEMSIZE_CLASSES"]

MIN_BYTES, MAX_BYTES = 1 << 20, 64 << 20

KIND_WEIGHTS = {"sliced": 0.20, "fortran": 0.15, "permuted": 0.20, "batch_moved": 0.15,
                "channels_first": 0.20, "broadcast": 0.10}
KINDS = tuple(KIND_WEIGHTS)
DTYPE_WEIGHTS = {"numeric": 0.40, "void": 0.15, "bytes": 0.15, "unicode": 0.10,
                 "structured": 0.20}
NUMERIC = ("?", "i1", "u1", "i2", "u2", "f2", "i4", "u4", "f4", "i8", "f8", "c8", "c16")
FIELD_TYPES = ("u1", "i2", "f2", "i4", "f4", "f8", "S3", "c8")
DIM_CLASSES = ((0.30, 2, 4), (0.25, 5, 16), (0.30, 17, 128), (0.15, 129, 1024))
SLICE_P, REVERSE_P, CHANNELS_FIRST_P, BROADCAST_P = 0.30, 0.12, 0.20, 0.04
STEPS, STEP_WEIGHTS = (1, 2, 3, 4), (0.4, 0.3, 0.2, 0.1)
MAX_BUFFER_RATIO, BUFFER_SLACK = 4, 1 << 20
MAX_ATTEMPTS = 50


@dataclass(frozen=True)
class FuzzLayout:
    """One random input, as numbers: ``make_array`` builds it.

    The input has ``shape`` and byte ``strides``; its element ``i`` starts at
    byte ``offset + sum(i[k] * strides[k])`` of a base buffer of
    ``buffer_bytes``.  ``kind`` is the memory order drawn (one of
    :data:`KINDS`); ``description`` says in a line how it was made, and
    ``order``, ``steps``, ``starts`` and ``broadcast_axis`` in numbers.
    """

    seed: int
    index: int
    kind: str
    dtype: np.dtype
    shape: tuple[int, ...]
    strides: tuple[int, ...]
    offset: int
    buffer_bytes: int
    data_format: DataFormat
    description: str
    order: tuple[int, ...] = ()         # axes from outermost to innermost in the base buffer
    steps: tuple[int, ...] = ()         # per axis: the slice step, negative when reversed
    starts: tuple[int, ...] = ()        # per axis: elements skipped at the start of the slice
    broadcast_axis: Optional[int] = None

    @property
    def itemsize(self) -> int:
        return self.dtype.itemsize

    @property
    def output_bytes(self) -> int:
        return int(math.prod(self.shape)) * int(self.dtype.itemsize)

    def view_strides(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(shape, strides) of the view whose C order is the flattened order."""
        if self.data_format == "channels_first" and len(self.shape) > 2:
            order = (0, *range(2, len(self.shape)), 1)
            return (tuple(self.shape[k] for k in order), tuple(self.strides[k] for k in order))
        return self.shape, self.strides


ITEMSIZE_CLASSES = ("1", "2", "4", "8", "16-32", "odd")


def itemsize_class(itemsize: int) -> str:
    """"1", "2", "4", "8", "16-32" (powers of two) or "odd" (the rest)."""
    if itemsize in (1, 2, 4, 8):
        return str(itemsize)
    if itemsize in (16, 32):
        return "16-32"
    return "odd"


# -- drawing --------------------------------------------------------------------

def _choice(rng: np.random.Generator, weights: dict[str, float]) -> str:
    keys = list(weights)
    return str(keys[rng.choice(len(keys), p=np.array(list(weights.values())) / sum(weights.values()))])


def _dtype(rng: np.random.Generator) -> np.dtype:
    family = _choice(rng, DTYPE_WEIGHTS)
    if family == "numeric":
        return np.dtype(NUMERIC[rng.integers(len(NUMERIC))])
    if family == "void":
        return np.dtype(f"V{rng.integers(1, 33)}")
    if family == "bytes":
        return np.dtype(f"S{rng.integers(1, 33)}")
    if family == "unicode":
        return np.dtype(f"U{rng.integers(1, 9)}")
    while True:  # packed records, up to 32 bytes
        count = int(rng.integers(2, 5))
        fields = [(f"f{k}", FIELD_TYPES[rng.integers(len(FIELD_TYPES))]) for k in range(count)]
        dtype = np.dtype(fields)
        if dtype.itemsize <= 32:
            return dtype


def _dim(rng: np.random.Generator) -> int:
    p = np.array([c[0] for c in DIM_CLASSES])
    _, low, high = DIM_CLASSES[rng.choice(len(DIM_CLASSES), p=p / p.sum())]
    return int(rng.integers(low, high + 1))


def _shape(rng: np.random.Generator, ndim: int, itemsize: int,
           min_bytes: int, max_bytes: int) -> tuple[int, ...]:
    target = math.exp(rng.uniform(math.log(min_bytes), math.log(max_bytes)))
    elements = max(2, int(target // itemsize))
    # The batch: log-uniform from 2 to half the elements; the sample gets the rest.
    budget = elements / math.exp(rng.uniform(math.log(2), math.log(max(2, elements / 2))))
    rest = [_dim(rng) for _ in range(ndim - 1)]
    while math.prod(rest) > max(budget, 1) and max(rest) > 1:
        k = rest.index(max(rest))
        rest[k] = max(1, rest[k] // 2)
    per_sample = math.prod(rest) * itemsize
    low = math.ceil(min_bytes / per_sample)
    high = max(low, max_bytes // per_sample)
    batch = min(max(round(elements / math.prod(rest)), low), high)
    return (batch, *rest)


def _order(rng: np.random.Generator, kind: str, ndim: int) -> list[int]:
    """Axes of the input from outermost to innermost in memory."""
    if kind == "fortran":
        return list(range(ndim))[::-1]
    if kind == "permuted":
        return [0, *(int(k) + 1 for k in rng.permutation(ndim - 1))]
    if kind == "batch_moved":
        order = [int(k) for k in rng.permutation(ndim)]
        if order[0] == 0:
            order.pop(0)
            order.insert(1 + int(rng.integers(ndim - 1)), 0)
        return order
    return list(range(ndim))


def _contiguous(shape: tuple[int, ...], strides: tuple[int, ...], itemsize: int) -> bool:
    expected = itemsize
    for n, s in zip(reversed(shape), reversed(strides)):
        if n != 1 and s != expected:
            return False
        expected *= n
    return True


def _attempt(rng: np.random.Generator, seed: int, index: int, min_bytes: int,
             max_bytes: int) -> Optional[FuzzLayout]:
    kind = _choice(rng, KIND_WEIGHTS)
    dtype = _dtype(rng)
    ndim = int(rng.integers(2, 7))
    shape = _shape(rng, ndim, dtype.itemsize, min_bytes, max_bytes)
    order = _order(rng, kind, ndim)

    steps = [int(rng.choice(STEPS, p=STEP_WEIGHTS)) if rng.random() < SLICE_P else 1
             for _ in range(ndim)]
    sliced = [steps[k] > 1 or rng.random() < SLICE_P for k in range(ndim)]
    starts = [int(rng.integers(0, 4)) if sliced[k] else 0 for k in range(ndim)]
    tails = [int(rng.integers(0, 4)) if sliced[k] else 0 for k in range(ndim)]
    reversed_ = [rng.random() < REVERSE_P for _ in range(ndim)]
    broadcast = [False] * ndim
    if kind == "broadcast" or rng.random() < BROADCAST_P:
        broadcast[1 + int(rng.integers(ndim - 1))] = True
    data_format: DataFormat = "channels_first" if (
        kind == "channels_first" or (ndim > 2 and rng.random() < CHANNELS_FIRST_P)
    ) else "channels_last"
    if kind == "sliced" and not any(starts) and not any(tails) and steps == [1] * ndim \
            and not any(reversed_):
        k = 1 + int(rng.integers(ndim - 1))  # C order needs a slice to need a copy
        tails[k] = 1 + int(rng.integers(3))
        sliced[k] = True

    def extents() -> list[int]:
        return [1 if broadcast[k] else starts[k] + (shape[k] - 1) * steps[k] + 1 + tails[k]
                for k in range(ndim)]

    output = math.prod(shape) * dtype.itemsize
    while math.prod(extents()) * dtype.itemsize > MAX_BUFFER_RATIO * output + BUFFER_SLACK:
        stepped = [k for k in range(ndim) if steps[k] > 1]
        if not stepped:
            return None  # offsets alone on tiny axes: draw again
        steps[stepped[int(rng.integers(len(stepped)))]] = 1

    extent = extents()
    base_strides = [0] * ndim
    stride = dtype.itemsize
    for k in reversed(order):  # innermost first
        base_strides[k] = stride
        stride *= extent[k]
    buffer_bytes = stride
    offset, strides = 0, []
    for k in range(ndim):
        if broadcast[k]:
            strides.append(0)
            continue
        first = starts[k] + ((shape[k] - 1) * steps[k] if reversed_[k] else 0)
        offset += first * base_strides[k]
        strides.append(base_strides[k] * steps[k] * (-1 if reversed_[k] else 1))

    layout = FuzzLayout(seed, index, kind, dtype, tuple(shape), tuple(strides), offset,
                        buffer_bytes, data_format, "")
    view_shape, view_strides = layout.view_strides()
    if _contiguous(view_shape, view_strides, dtype.itemsize):
        return None
    parts = [f"{_dtype_name(dtype)} {tuple(shape)}"]
    if kind != "sliced" and order != list(range(ndim)):
        parts.append(f"memory order {tuple(order)}")
    if any(sliced) or any(reversed_):
        parts.append("slices [" + ", ".join(
            _slice_text(starts[k], tails[k], steps[k], reversed_[k], broadcast[k])
            for k in range(ndim)) + "]")
    if any(broadcast):
        parts.append(f"broadcast axis {broadcast.index(True)}")
    if data_format == "channels_first":
        parts.append("channels_first")
    description = f"{kind}: " + ", ".join(parts)
    return FuzzLayout(seed, index, kind, dtype, tuple(shape), tuple(strides), offset,
                      buffer_bytes, data_format, description, tuple(order),
                      tuple(-s if r else s for s, r in zip(steps, reversed_)), tuple(starts),
                      broadcast.index(True) if any(broadcast) else None)


def _dtype_name(dtype: np.dtype) -> str:
    if dtype.fields:
        fields = [dtype.fields[name][0] for name in dtype.names or ()]
        return "{" + ",".join(field.str.lstrip("<>|=") for field in fields) + "}"
    return dtype.str.lstrip("<>|=") if dtype.kind in "VSU" else dtype.name


def _slice_text(start: int, tail: int, step: int, reverse: bool, broadcast: bool) -> str:
    if broadcast:
        return "bcast"
    text = ":" if not start and not tail and step == 1 else \
        f"{start or ''}:{-tail if tail else ''}" + (f":{step}" if step > 1 else "")
    return text + ("r" if reverse else "")


def draw(seed: int, index: int, min_bytes: int = MIN_BYTES,
         max_bytes: int = MAX_BYTES) -> FuzzLayout:
    """Layout ``index`` of ``seed``: the same numbers on every call."""
    if not 0 < min_bytes <= max_bytes:
        raise ValueError(f"min_bytes, max_bytes: expected 0 < min_bytes <= max_bytes, "
                         f"got {min_bytes}, {max_bytes}")
    rng = np.random.default_rng([seed, index])
    for _ in range(MAX_ATTEMPTS):
        layout = _attempt(rng, seed, index, min_bytes, max_bytes)
        if layout is not None:
            return layout
    raise RuntimeError(f"no layout drawn for seed {seed}, index {index}")  # pragma: no cover


# -- building -----------------------------------------------------------------------

FILL_CHUNK = 1 << 22  # words per chunk of the fill


def _fill(buffer: np.ndarray, salt: int) -> None:
    """Pseudo-random bytes: 32-bit words ``(k + salt) * 2654435761``, unique
    within 2**32 words, written a chunk at a time (no big temporary)."""
    words = buffer[:buffer.size // 4 * 4].view(np.uint32)
    for start in range(0, words.size, FILL_CHUNK):
        chunk = words[start:start + FILL_CHUNK]
        k = np.arange(start, start + chunk.size, dtype=np.uint64) + np.uint64(salt)
        # k mod 2**32 (astype wraps): salts near 2**32 must not overflow
        np.multiply(k.astype(np.uint32), np.uint32(2654435761), out=chunk)
    buffer[words.size * 4:] = 0x5A


def make_array(layout: FuzzLayout) -> np.ndarray:
    """The input ``layout`` describes, on a new base buffer of pseudo-random
    bytes (read-only when an axis is broadcast, as ``np.broadcast_to`` gives)."""
    base = np.empty(max(layout.buffer_bytes, layout.itemsize), np.uint8)
    _fill(base, (layout.seed * 7919 + layout.index * 104729) & 0xFFFFFFFF)
    if layout.dtype == np.bool_:
        np.bitwise_and(base, 1, out=base)
    first = base[layout.offset:layout.offset + layout.itemsize].view(layout.dtype)
    return np.lib.stride_tricks.as_strided(first, layout.shape, layout.strides,
                                           writeable=0 not in layout.strides)


def layouts(seed: int, count: int, min_bytes: int = MIN_BYTES, max_bytes: int = MAX_BYTES,
            start: int = 0) -> Iterator[tuple[FuzzLayout, np.ndarray]]:
    """Layouts ``start`` to ``start + count - 1`` of ``seed`` and their
    arrays, built one at a time (drop each before taking the next to keep
    one base buffer alive)."""
    for index in range(start, start + count):
        layout = draw(seed, index, min_bytes, max_bytes)
        yield layout, make_array(layout)


def flattened_view(layout: FuzzLayout, a: np.ndarray) -> np.ndarray:
    """The view of ``a`` whose C order is the flattened output."""
    return channels_last_view(a, layout.data_format)
