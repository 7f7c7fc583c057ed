"""iter_flatten: lazy, numpy's values for every batch, and with
reuse_output=True one output array reused while the shape and dtype repeat."""

import math
import types

import numpy as np
import pytest

import pyflat
from pyflat import iter_flatten


def reference(a, data_format="channels_last"):
    if data_format == "channels_first" and a.ndim > 2:
        a = np.moveaxis(a, 1, -1)
    return np.ascontiguousarray(a).reshape(a.shape[0], math.prod(a.shape[1:]))


def batches(n=5, shape=(8, 3, 4, 5), last=3, dtype=np.float32):
    rng = np.random.default_rng(0)
    for i in range(n):
        size = last if i == n - 1 else shape[0]
        yield rng.random((size,) + shape[1:]).astype(dtype)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("reuse_output", [False, True])
def test_values_match_numpy(data_format, reuse_output):
    inputs = list(batches())
    results = iter_flatten(iter(inputs), data_format=data_format, reuse_output=reuse_output)
    for a, got in zip(inputs, results):
        # compare before asking for the next: with reuse it gets overwritten
        assert got.flags.c_contiguous and got.dtype == a.dtype
        assert got.tobytes() == reference(a, data_format).tobytes()


def test_is_a_lazy_generator():
    seen = []

    def source():
        for a in batches(3):
            seen.append(len(seen))
            yield a

    results = iter_flatten(source())
    assert isinstance(results, types.GeneratorType)
    assert seen == []
    next(results)
    assert seen == [0]


def test_reuse_output_reuses_one_array_while_shape_and_dtype_repeat():
    inputs = list(batches(n=4, last=3)) + [np.ones((3, 3, 4, 5), np.float64)]
    results = iter_flatten(inputs, data_format="channels_first", reuse_output=True)
    first = next(results)
    first_values = first.copy()
    second = next(results)
    assert second is first  # the same array...
    assert not np.array_equal(first_values, second)  # ...holding the new values
    assert next(results) is first
    smaller = next(results)  # the last, smaller batch: a new array
    assert smaller is not first and smaller.shape == (3, 60)
    assert smaller.tobytes() == reference(inputs[3], "channels_first").tobytes()
    other_dtype = next(results)
    assert other_dtype is not smaller and other_dtype.dtype == np.float64
    assert np.array_equal(other_dtype, np.ones((3, 60)))


def test_reuse_output_never_writes_into_a_batch():
    a = np.arange(24.0).reshape(4, 6)  # flat already: without reuse, a view
    b = np.zeros((4, 6))
    assert np.shares_memory(next(iter_flatten([a])), a)
    results = iter_flatten([a, b], reuse_output=True)
    first = next(results)
    assert not np.shares_memory(first, a)
    next(results)
    assert np.array_equal(a, np.arange(24.0).reshape(4, 6))


def test_without_reuse_results_are_independent():
    results = list(iter_flatten(batches(3, last=8), data_format="channels_first"))
    assert len({id(r) for r in results}) == 3
    for a, got in zip(batches(3, last=8), results):
        assert got.tobytes() == reference(a, "channels_first").tobytes()


def test_any_iterable_of_array_likes():
    got = list(iter_flatten(([[1, 2], [3, 4]], (5, 6, 7), np.zeros((2, 2, 2)))))
    assert [g.shape for g in got] == [(2, 2), (3, 1), (2, 4)]
    assert got[0].tolist() == [[1, 2], [3, 4]]
    assert list(iter_flatten([])) == []


def test_bad_arguments_fail_at_the_call():
    with pytest.raises(TypeError, match="batches: expected an iterable of arrays, got int"):
        iter_flatten(3)
    with pytest.raises(ValueError, match="data_format: expected"):
        iter_flatten([], data_format="NHWC")
    with pytest.raises(TypeError, match="reuse_output: expected True or False"):
        iter_flatten([], reuse_output="yes")


def test_bad_batches_are_named_by_index():
    results = iter_flatten([np.zeros((2, 2)), np.float32(1.0)])
    next(results)
    with pytest.raises(ValueError, match=r"batches\[1\]: expected at least 1 dimension"):
        next(results)
    with pytest.raises(ValueError, match=r"batches\[0\]: cannot be converted"):
        next(iter_flatten([[[1, 2], [3]]]))


def test_exported():
    assert pyflat.iter_flatten is iter_flatten
    assert "iter_flatten" in pyflat.__all__


# --- conversion (issue 14) ------------------------------------------------------

@pytest.mark.parametrize("reuse_output", [False, True])
def test_converts_each_batch_as_batch_flatten_does(reuse_output):
    rng = np.random.default_rng(14)
    images = [rng.integers(0, 256, (n, 3, 4, 5), dtype=np.uint8) for n in (8, 8, 3)]
    kwargs = dict(dtype=np.float32, scale=[1 / 0.229, 1 / 0.224, 1 / 0.225],
                  offset=[-0.485 / 0.229, -0.456 / 0.224, -0.406 / 0.225])
    results = []
    for result in iter_flatten(images, data_format="channels_first",
                               reuse_output=reuse_output, **kwargs):
        assert result.dtype == np.float32
        results.append(result.copy())
    for image, result in zip(images, results):
        want = np.moveaxis(image, 1, -1).astype(np.float32)
        want = want * np.asarray(kwargs["scale"], np.float32) + np.asarray(kwargs["offset"],
                                                                            np.float32)
        assert result.tobytes() == want.reshape(len(image), -1).tobytes()


def test_reuse_output_keeps_an_array_of_the_result_dtype():
    a = np.ones((4, 3, 2), np.float64)
    outputs = list(map(id, iter_flatten([a, a[:, ::-1]], dtype=np.float16,
                                        reuse_output=True)))
    assert outputs[0] == outputs[1]


def test_conversion_arguments_are_checked():
    with pytest.raises(ValueError, match="casting"):
        iter_flatten([], casting="sometimes")
    with pytest.raises(TypeError, match="dtype"):
        iter_flatten([], dtype="no such type")
    batches_ = iter_flatten([np.ones((2, 3), np.float64)], dtype=np.int8)
    with pytest.raises(TypeError, match="casting"):
        next(batches_)
    with pytest.raises(ValueError, match="scale"):
        next(iter_flatten([np.ones((2, 3))], scale=[1.0, 2.0]))
