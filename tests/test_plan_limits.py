"""The planner at the edges of int64: extreme shapes, strides and item sizes.

Every size the C code forms must be checked (issue 12, item 16): a layout
whose sizes or source offsets do not fit in int64 is refused with
PF_ERR_OVERFLOW, anything else is planned without signed overflow.  The
plans are made, not run (nothing here is backed by memory).  CI runs this
file against an -O0 build with -fsanitize=address,undefined, where UBSan
aborts on any signed overflow (.ci/run).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyflat._pyflat import ffi, lib

INT64_MAX = 2**63 - 1
INT64_MIN = -2**63


def plan(shape, strides, itemsize, threads=0):
    p = ffi.new("pf_plan *")
    status = lib.pf_plan_make(p, len(shape), list(shape), list(strides), itemsize, threads)
    return status, p


def fits(shape, strides, itemsize) -> bool:
    """Whether the sizes the planner must form fit in int64 (Python ints)."""
    if 0 in shape:
        return True
    nbytes = itemsize
    for n in shape:
        nbytes *= n
    span = itemsize + sum(n * abs(s) for n, s in zip(shape, strides) if n != 1)
    return nbytes <= INT64_MAX and span <= INT64_MAX


def check_sane(p, shape, itemsize):
    nbytes = itemsize
    for n in shape:
        nbytes *= n
    assert p.nbytes == nbytes
    assert p.units >= 1
    assert 1 <= p.num_threads <= max(p.units, 1)
    assert p.kernel in (lib.PF_KERNEL_MEMCPY, lib.PF_KERNEL_GATHER, lib.PF_KERNEL_TRANSPOSE,
                        lib.PF_KERNEL_REVERSE, lib.PF_KERNEL_BLOCK)
    assert p.row_chunk >= 1 and p.col_chunk >= 1


@pytest.mark.parametrize("shape, strides, itemsize", [
    ((2**62, 4), (4, 1), 1),                 # nbytes = 2**64
    ((2**40, 3), (3 * 2**22, 2**22), 2**22),  # nbytes = 3 * 2**62
    ((2, 3), (2**62, 1), 1),                  # 2 * 2**62 source bytes
    ((3, 5), (INT64_MIN, 1), 1),              # |INT64_MIN| does not exist
    ((2, 2), (INT64_MAX, 1), 1),
    ((2**32, 2**32), (1, 2**32), 1),          # 2**64 elements
    ((1, 1, 2**63 - 1), (0, 0, 1), 2),        # nbytes 2**64 - 2
])
def test_overflow_refused(shape, strides, itemsize):
    status, _ = plan(shape, strides, itemsize)
    assert status == lib.PF_ERR_OVERFLOW


@pytest.mark.parametrize("threads", [0, 1, 2, 256])
@pytest.mark.parametrize("shape, strides, itemsize", [
    ((2**31, 2**31), (1, 2**31), 1),             # a 4 EiB transpose, planned only
    ((2**31, 2**31), (2**31, 1), 1),             # rows of 2 GiB: pieces of rows
    ((2**30, 3), (-12, 4), 4),                   # long, short rows
    ((1, 5), (INT64_MIN, 1), 1),                 # a size-1 axis: its stride is unused
    ((2, 2), (2**41, 2**40), 2**40),             # huge items
    ((2**20, 2**20), (8, 2**23), 8),
    ((3, 2**40), (0, -5), 5),
    ((2,) * 62, tuple((-1) ** d * 2 ** (d % 40) for d in range(62)), 1),  # 62 axes
    ((2**61 - 1, 2), (2, 1), 2),                 # nbytes 2**63 - 4
])
def test_extreme_but_valid(shape, strides, itemsize, threads):
    assert fits(shape, strides, itemsize)
    status, p = plan(shape, strides, itemsize, threads)
    assert status == lib.PF_OK, ffi.string(lib.pf_strerror(status))
    check_sane(p, shape, itemsize)


sides = st.one_of(st.integers(0, 5), st.integers(1, 2**20), st.integers(1, 2**62))
strides_ = st.one_of(st.integers(-64, 64), st.integers(-2**40, 2**40),
                     st.integers(INT64_MIN, INT64_MAX))


@settings(max_examples=500, deadline=None)
@given(data=st.data(), ndim=st.integers(1, 8),
       itemsize=st.one_of(st.integers(1, 40), st.integers(1, 2**40)),
       threads=st.sampled_from([0, 1, 3]))
def test_any_extreme_layout(data, ndim, itemsize, threads):
    shape = data.draw(st.lists(sides, min_size=ndim, max_size=ndim))
    strides = data.draw(st.lists(strides_, min_size=ndim, max_size=ndim))
    status, p = plan(shape, strides, itemsize, threads)
    if fits(shape, strides, itemsize):
        assert status == lib.PF_OK
        if 0 not in shape:
            check_sane(p, shape, itemsize)
    else:
        assert status == lib.PF_ERR_OVERFLOW
