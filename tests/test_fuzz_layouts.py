"""Fuzzing the kernel over arbitrary (shape, strides, offset, itemsize) views
of a bounded buffer, against a pure-Python reference (``fuzz_layouts``).

The default budget is short; for a long run set ``PYFLAT_FUZZ_EXAMPLES``
(e.g. 100000), or use ``python tests/fuzz_layouts.py`` which prints counts.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from fuzz_layouts import (ITEMSIZES, UINT_SIZES, Layout, check_layout, fitted, kernel_of,
                          make_view, natural_strides, random_large_layout, reference_bytes,
                          settings_to_run)

EXAMPLES = int(os.environ.get("PYFLAT_FUZZ_EXAMPLES", "300"))
LARGE_EXAMPLES = max(EXAMPLES // 100, 3)
SETTINGS = settings_to_run()


def budget(max_examples: int) -> settings:
    return settings(max_examples=max_examples, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@st.composite
def layouts(draw, max_elements: int = 2048) -> Layout:
    """Any layout that fits a buffer: strides of any sign and size, zero,
    overlapping, not multiples of the itemsize; any itemsize; odd offsets;
    or the strides of a sliced and permuted C-order array."""
    e = draw(st.sampled_from(sorted(set(ITEMSIZES))))
    ndim = draw(st.integers(0, 6))
    shape = draw(st.lists(st.integers(0, 9), min_size=ndim, max_size=ndim)
                 .filter(lambda s: np.prod(s, dtype=np.int64) <= max_elements))
    stride = st.one_of(st.sampled_from([0, e, -e, 2 * e]), st.integers(-4 * e - 8, 4 * e + 8),
                       st.integers(-(1 << 12), 1 << 12))
    strides = draw(st.lists(stride, min_size=ndim, max_size=ndim))
    if draw(st.booleans()):  # or those of a sliced, permuted C-order array
        strides = natural_strides(np.random.default_rng(draw(st.integers(0, 2**32 - 1))),
                                  shape, e)
    slack = st.integers(0, 70)
    uint = e in UINT_SIZES and draw(st.booleans())
    return fitted(shape, strides, e, draw(slack), draw(slack), uint)


def assert_no_mismatch(layout: Layout, seed: int) -> None:
    found = check_layout(layout, np.random.default_rng(seed), SETTINGS)
    assert not found, "\n".join(map(str, found))


@budget(EXAMPLES)
@given(layout=layouts(), seed=st.integers(0, 2**32 - 1))
def test_kernel_matches_reference(layout, seed):
    assert_no_mismatch(layout, seed)


@budget(LARGE_EXAMPLES)
@given(seed=st.integers(0, 2**32 - 1))
def test_large_layouts_on_several_threads(seed):
    """Outputs of 2-6 MiB: the kernel splits them among threads."""
    rng = np.random.default_rng(seed)
    layout = random_large_layout(rng)
    assume(kernel_of(layout, SETTINGS[-1])[1] > 1)  # about 1 in 100 plans has one unit
    assert_no_mismatch(layout, seed)


@budget(200)
@given(layout=layouts(max_elements=512), seed=st.integers(0, 2**32 - 1))
def test_reference_agrees_with_numpy(layout, seed):
    """The reference itself, checked once against numpy's copy."""
    buffer = np.random.default_rng(seed).integers(0, 256, layout.buffer_size, dtype=np.uint8)
    view = make_view(layout, buffer)
    assert reference_bytes(layout, buffer.tobytes()) == np.ascontiguousarray(view).tobytes()


@pytest.mark.parametrize("setting", SETTINGS, ids=str)
def test_every_setting_sees_every_kernel(setting):
    """Each switch setting runs every kernel on a fixed set of layouts
    (so the fuzzing above is not blind to one of them)."""
    cases = {
        "memcpy": fitted((5, 40), (40 * 8 + 8, 8), 8),
        "gather": fitted((4, 29), (200, -6), 3),
        "transpose": fitted((33, 17), (4, 33 * 4), 4),
        "reverse": fitted((6, 41), (200, -4), 4),
        "block": fitted((4, 9), (40, -6), 3),  # short strided rows
        "tiny transposes": fitted((50, 4, 3), (36, 3, 12), 3),
    }
    for kernel, layout in cases.items():
        assert kernel_of(layout, setting)[0] == kernel.replace("tiny transposes", "block")
        found = check_layout(layout, np.random.default_rng(0), [setting])
        assert not found, "\n".join(map(str, found))
