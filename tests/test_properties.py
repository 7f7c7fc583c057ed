"""Property tests: every public function against numpy, over random layouts,
dtypes and kernel variants, comparing raw bytes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pyflat
from layouts import layouts
from variants import VARIANTS, forced

variants = st.sampled_from(VARIANTS)
data_formats = st.sampled_from(["channels_last", "channels_first"])
copies = st.sampled_from([None, True, False])


def reference_batch_flatten(a: np.ndarray, data_format: str) -> np.ndarray:
    if data_format == "channels_first" and a.ndim > 2:
        a = np.moveaxis(a, 1, -1)
    return np.reshape(a, (len(a), int(np.prod(a.shape[1:]))))


def assert_same(result: np.ndarray, expected: np.ndarray) -> None:
    assert type(result) is np.ndarray
    assert result.flags.c_contiguous
    assert result.dtype == expected.dtype
    assert result.shape == expected.shape
    assert result.tobytes() == expected.tobytes()


def check_copy_rule(result: np.ndarray, a: np.ndarray, copy) -> None:
    """copy=True never shares; a view is only ever returned for copy=None/False."""
    if copy is True and result.size:
        assert not np.shares_memory(result, a)


@settings(max_examples=400, deadline=None)
@given(a=layouts(), data_format=data_formats, copy=copies, variant=variants)
def test_batch_flatten(a, data_format, copy, variant):
    expected = reference_batch_flatten(a, data_format)
    with forced(variant):
        try:
            result = pyflat.batch_flatten(a, data_format=data_format, copy=copy,
                                          num_threads=variant.num_threads)
        except ValueError:
            # copy=False may refuse, and only when a view is impossible.
            assert copy is False
            view = np.moveaxis(a, 1, -1) if data_format == "channels_first" and a.ndim > 2 else a
            assert not view.flags.c_contiguous
            return
    assert_same(result, expected)
    check_copy_rule(result, a, copy)
    if copy is False and result.size:
        assert np.shares_memory(result, a)


@settings(max_examples=300, deadline=None)
@given(a=layouts(), data_format=data_formats, variant=variants, data=st.data())
def test_batch_flatten_into_out(a, data_format, variant, data):
    expected = reference_batch_flatten(a, data_format)
    out = np.empty(expected.shape, expected.dtype)
    with forced(variant):
        result = pyflat.batch_flatten(a, data_format=data_format, out=out,
                                      num_threads=variant.num_threads)
    assert result is out
    assert_same(out, expected)


@settings(max_examples=300, deadline=None)
@given(a=layouts(max_dims=5), variant=variants, data=st.data())
def test_flatten_every_dim_pair(a, variant, data):
    ndim = a.ndim
    start = data.draw(st.integers(-ndim, ndim - 1), label="start_dim")
    end = data.draw(st.integers(start % ndim, ndim - 1), label="end_dim")
    if data.draw(st.booleans()):
        end -= ndim  # the same dim, counted from the end
    s, e = start % ndim, end % ndim
    expected_shape = a.shape[:s] + (int(np.prod(a.shape[s:e + 1])),) + a.shape[e + 1:]
    expected = np.reshape(a, expected_shape)
    use_out = data.draw(st.booleans(), label="use_out")
    out = np.empty(expected_shape, a.dtype) if use_out else None
    with forced(variant):
        result = pyflat.flatten(a, start, end, out=out, num_threads=variant.num_threads)
    assert_same(result, expected)
    if use_out:
        assert result is out


@settings(max_examples=200, deadline=None)
@given(a=layouts(), variant=variants)
def test_ascontiguousarray(a, variant):
    expected = np.ascontiguousarray(a)
    with forced(variant):
        result = pyflat.ascontiguousarray(a, num_threads=variant.num_threads)
    assert_same(result, expected)
    if a.flags.c_contiguous:
        assert result is a or np.shares_memory(result, a) or a.size == 0


@settings(max_examples=30, deadline=None)
@given(a=layouts(min_dims=2, max_dims=4, max_side=90,
                 dtypes=[np.dtype(t) for t in ("u1", "u2", "f4", "f8", "c16", "V3")]),
       data_format=data_formats, variant=variants)
def test_larger_layouts(a, data_format, variant):
    """Sides up to 90: several tiles and several thread units per copy."""
    expected = reference_batch_flatten(a, data_format)
    with forced(variant):
        result = pyflat.batch_flatten(a, data_format=data_format, copy=True,
                                      num_threads=variant.num_threads)
    assert_same(result, expected)


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
@pytest.mark.parametrize("case", ["nchw", "fortran", "sliced", "uint8_cf", "reversed"])
def test_megabyte_inputs_every_variant(case, variant):
    """Inputs of several MB, so the thread split and streaming run for real."""
    rng = np.random.default_rng(1)
    a, data_format = {
        "nchw": (rng.random((16, 32, 33, 35), np.float32), "channels_first"),
        "fortran": (np.asfortranarray(rng.random((700, 900))), "channels_last"),
        "sliced": (rng.random((16, 64, 50, 40), np.float32)[:, :, ::2, ::3], "channels_last"),
        "uint8_cf": (rng.integers(0, 256, (9, 3, 301, 299), dtype=np.uint8), "channels_first"),
        "reversed": (rng.random((64, 256, 100), np.float32)[:, ::-1, ::-1], "channels_last"),
    }[case]
    with forced(variant):
        result = pyflat.batch_flatten(a, data_format=data_format,
                                      num_threads=variant.num_threads)
    assert_same(result, reference_batch_flatten(a, data_format))
