"""Hypothesis strategies for arbitrary array layouts: every dtype family, 1 to 6
dims, sliced with steps (negative too), transposed, broadcast, at odd byte
offsets, read-only.  The values are random bytes, so comparisons of raw bytes
catch any misplaced byte."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

DTYPES = [
    np.dtype(np.bool_), np.dtype(np.int8), np.dtype(np.uint8), np.dtype(np.int16),
    np.dtype(np.uint16), np.dtype(np.int32), np.dtype(np.uint32), np.dtype(np.int64),
    np.dtype(np.uint64), np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64),
    np.dtype(np.longdouble), np.dtype(np.complex64), np.dtype(np.complex128),
    np.dtype("datetime64[ns]"), np.dtype("timedelta64[s]"), np.dtype("S7"), np.dtype("U3"),
    np.dtype("V5"), np.dtype("V12"), np.dtype(">i4"), np.dtype(">f8"), np.dtype("<c16"),
    np.dtype([("a", "<i4"), ("b", "u1")]),            # packed, itemsize 5
    np.dtype([("x", ">f2"), ("y", "S1")]),            # itemsize 3
    np.dtype([("p", "<f8", (2,)), ("q", "<u2")]),     # itemsize 18
]


def random_array(rng: np.random.Generator, shape: tuple, dtype: np.dtype,
                 byte_offset: int) -> np.ndarray:
    """A C-contiguous array of random bytes starting ``byte_offset`` bytes into
    its buffer (so an odd offset makes it unaligned)."""
    nbytes = int(np.prod(shape)) * dtype.itemsize
    raw = rng.integers(0, 256, nbytes + byte_offset, dtype=np.uint8)
    if dtype == np.bool_:
        raw &= 1  # only 0 and 1 are booleans
    return np.ndarray(shape, dtype=dtype, buffer=raw, offset=byte_offset)


@st.composite
def layouts(draw, min_dims: int = 1, max_dims: int = 6, max_side: int = 7,
            dtypes=DTYPES) -> np.ndarray:
    """A view of random bytes with an arbitrary layout."""
    dtype = draw(st.sampled_from(dtypes))
    ndim = draw(st.integers(min_dims, max_dims))
    base_shape = tuple(draw(st.lists(st.integers(0, max_side), min_size=ndim,
                                     max_size=ndim)))
    offset = draw(st.sampled_from([0, 0, 1, 3]))
    seed = draw(st.integers(0, 2**32 - 1))
    a = random_array(np.random.default_rng(seed), base_shape, dtype, offset)

    # Slices with steps, negative too.
    index = []
    for side in base_shape:
        step = draw(st.sampled_from([1, 1, 2, 3, -1, -2]))
        start = draw(st.integers(0, max(side - 1, 0))) if side and draw(st.booleans()) else None
        index.append(slice(start, None, step))
    a = a[tuple(index)]
    # A permutation of the axes.
    a = a.transpose(draw(st.permutations(range(ndim))))
    # Broadcast one size-1 axis (stride 0).
    if ndim and draw(st.booleans()):
        axis = draw(st.integers(0, ndim - 1))
        if a.shape[axis] == 1:
            shape = list(a.shape)
            shape[axis] = draw(st.integers(2, 4))
            a = np.broadcast_to(a, shape)
    if draw(st.booleans()):
        a = a.view()
        a.flags.writeable = False
    return a
