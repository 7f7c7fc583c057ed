"""The public API's contract: shapes, zero-copy, copy=/out= rules, inputs,
Keras' cases, errors."""

from __future__ import annotations

import os

import numpy as np
import pytest

import pyflat
from pyflat import Flatten, ascontiguousarray, batch_flatten, flatten

from array_likes import ArrayInterfaceOnly, ArrayMethodOnly, DLPackOnly

rng = np.random.default_rng(42)


def nchw(shape=(10, 3, 5, 5), dtype=np.float32):
    return rng.random(shape).astype(dtype)


# --- shapes and values ------------------------------------------------------

def test_keras_channels_first():
    x = nchw((10, 3, 5, 5))
    result = batch_flatten(x, data_format="channels_first")
    expected = np.reshape(np.transpose(x, (0, 2, 3, 1)), (10, -1))
    assert result.shape == (10, 75)
    np.testing.assert_array_equal(result, expected)


def test_keras_1d_batch_becomes_column():
    x = np.arange(10.0)
    result = batch_flatten(x)
    assert result.shape == (10, 1)
    np.testing.assert_array_equal(result[:, 0], x)
    assert np.shares_memory(result, x)


def test_1d_strided_batch():
    x = np.arange(20)[::-2]
    result = batch_flatten(x)
    np.testing.assert_array_equal(result, x.reshape(10, 1))
    assert result.flags.c_contiguous


@pytest.mark.parametrize("shape, expected", [((0, 3, 4), (0, 12)), ((5, 0, 2), (5, 0)),
                                             ((0,), (0, 1))])
def test_zero_size_dims(shape, expected):
    for data_format in ("channels_last", "channels_first"):
        result = batch_flatten(np.zeros(shape, np.int16), data_format=data_format)
        assert result.shape == expected and result.dtype == np.int16


def test_zero_size_with_copy_and_out():
    x = np.zeros((5, 0, 2))
    out = np.empty((5, 0))
    assert batch_flatten(x, out=out) is out
    assert batch_flatten(x, copy=True).shape == (5, 0)


def test_channels_first_2d_is_plain_flatten():
    x = rng.random((4, 6))
    assert np.shares_memory(batch_flatten(x, data_format="channels_first"), x)


@pytest.mark.parametrize("shape, start, end, expected", [
    ((2, 3, 4), 0, -1, (24,)),
    ((2, 3, 4), 1, -1, (2, 12)),
    ((2, 3, 4), 0, 1, (6, 4)),
    ((2, 3, 4), -2, -2, (2, 3, 4)),
    ((2, 3, 4, 5), 1, 2, (2, 12, 5)),
    ((), 0, -1, (1,)),
    ((), -1, 0, (1,)),
    ((7,), 0, 0, (7,)),
])
def test_flatten_shapes_like_torch(shape, start, end, expected):
    x = rng.random(shape)
    result = flatten(x, start, end)
    assert result.shape == expected
    np.testing.assert_array_equal(result.ravel(), np.asarray(x).ravel())


def test_flatten_of_transposed_copies_in_c_order():
    x = rng.random((3, 4, 5)).transpose(2, 0, 1)
    result = flatten(x, 1)
    np.testing.assert_array_equal(result, np.reshape(x, (5, 12)))
    assert result.flags.c_contiguous and not np.shares_memory(result, x)


def test_ascontiguousarray_like_numpy():
    for x in (rng.random((6, 7))[:, ::2], np.asfortranarray(rng.random((3, 5))),
              np.float32(3.5), rng.random((4, 4))):
        result = ascontiguousarray(x)
        expected = np.ascontiguousarray(x)
        assert result.shape == expected.shape and result.flags.c_contiguous
        np.testing.assert_array_equal(result, expected)
    x = rng.random((4, 4))
    assert ascontiguousarray(x) is not None and np.shares_memory(ascontiguousarray(x), x)


def test_ascontiguousarray_with_dtype():
    x = np.asfortranarray(rng.random((5, 3)))
    result = ascontiguousarray(x, dtype=np.float32)
    assert result.dtype == np.float32 and result.flags.c_contiguous
    np.testing.assert_array_equal(result, np.ascontiguousarray(x, dtype=np.float32))


# --- zero-copy, copy=, out= ---------------------------------------------------

def test_zero_copy_returns_view_without_kernel():
    x = rng.random((8, 3, 4))
    result = batch_flatten(x)
    assert np.shares_memory(result, x) and result.base is not None


def test_batch_strided_input_is_copied_to_contiguous():
    x = rng.random((8, 3, 4))[::2]  # features contiguous, batch stride not
    result = batch_flatten(x)
    assert result.flags.c_contiguous and not np.shares_memory(result, x)
    np.testing.assert_array_equal(result, x.reshape(4, 12))


def test_copy_true_always_copies():
    x = rng.random((8, 3, 4))
    result = batch_flatten(x, copy=True)
    assert not np.shares_memory(result, x)
    np.testing.assert_array_equal(result, x.reshape(8, -1))


def test_copy_false_view_or_error():
    x = rng.random((8, 3, 4))
    assert np.shares_memory(batch_flatten(x, copy=False), x)
    with pytest.raises(ValueError, match="copy=False"):
        batch_flatten(x, data_format="channels_first", copy=False)


def test_out_is_returned_even_when_a_view_was_possible():
    x = rng.random((8, 3, 4))
    out = np.full((8, 12), -1.0)
    assert batch_flatten(x, out=out) is out
    np.testing.assert_array_equal(out, x.reshape(8, 12))


def test_out_overlapping_input_reads_input_first():
    buf = np.arange(64, dtype=np.int64)
    x = buf[:32].reshape(4, 8).T          # (8, 4), strided over buf[0:32]
    expected = np.ascontiguousarray(x).reshape(8, 4).copy()
    out = buf[16:48].reshape(8, 4)        # overlaps the input's second half
    batch_flatten(x, out=out)
    np.testing.assert_array_equal(out, expected)


def test_out_identical_to_input():
    x = rng.random((4, 6))
    expected = x.copy()
    assert batch_flatten(x, out=x) is x
    np.testing.assert_array_equal(x, expected)


def test_flatten_out():
    x = rng.random((3, 4, 5)).transpose(1, 0, 2)
    out = np.empty((4, 15))
    assert flatten(x, 1, 2, out=out) is out
    np.testing.assert_array_equal(out, x.reshape(4, 15))


# --- inputs --------------------------------------------------------------------

def test_nested_list_input():
    result = batch_flatten([[[1, 2], [3, 4]], [[5, 6], [7, 8]]])
    np.testing.assert_array_equal(result, [[1, 2, 3, 4], [5, 6, 7, 8]])


def test_memoryview_input():
    x = np.arange(24, dtype=np.int32).reshape(2, 3, 4)[:, ::2]
    result = batch_flatten(memoryview(x))  # a strided buffer
    np.testing.assert_array_equal(result, x.reshape(2, -1))


class Tagged(np.ndarray):
    """A user's ndarray subclass."""


def test_subclass_input_gives_plain_ndarray():
    x = rng.random((4, 3, 2)).view(Tagged)
    for result in (batch_flatten(x, data_format="channels_first"), flatten(x, 1),
                   ascontiguousarray(x[:, ::2])):
        assert type(result) is np.ndarray
    np.testing.assert_array_equal(batch_flatten(x, data_format="channels_first"),
                                  np.moveaxis(np.asarray(x), 1, -1).reshape(4, -1))


@pytest.mark.parametrize("wrap", [ArrayInterfaceOnly, DLPackOnly, ArrayMethodOnly])
def test_array_protocols(wrap):
    x = rng.random((4, 3, 5)).transpose(0, 2, 1)
    result = batch_flatten(wrap(x), data_format="channels_first")
    np.testing.assert_array_equal(result, np.moveaxis(x, 1, -1).reshape(4, -1))


def test_torch_tensor_input():
    torch = pytest.importorskip("torch")
    t = torch.arange(2 * 3 * 4, dtype=torch.float32).reshape(2, 3, 4).permute(0, 2, 1)
    result = batch_flatten(t)
    np.testing.assert_array_equal(result, torch.flatten(t, 1).numpy())


def test_object_dtype_goes_through_numpy():
    x = np.empty((3, 2, 2), dtype=object)
    for i, idx in enumerate(np.ndindex(x.shape)):
        x[idx] = [i]  # distinct objects: references must be counted, not copied raw
    result = batch_flatten(x, data_format="channels_first")
    expected = np.moveaxis(x, 1, -1).reshape(3, -1)
    assert all(r is e for r, e in zip(result.ravel(), expected.ravel()))


def test_readonly_and_unaligned_input():
    raw = np.frombuffer(bytes(range(256)) * 4, dtype=np.uint8)
    x = np.ndarray((8, 4, 7), dtype=">i4", buffer=raw, offset=1, strides=(112, 4, 16))
    assert not x.flags.aligned and not x.flags.writeable
    np.testing.assert_array_equal(batch_flatten(x), np.reshape(x, (8, 28)))


def test_broadcast_input():
    x = np.broadcast_to(rng.random((1, 5, 1)), (4, 5, 3))
    np.testing.assert_array_equal(batch_flatten(x, data_format="channels_first"),
                                  np.moveaxis(x, 1, -1).reshape(4, -1))


def test_strides_not_multiple_of_itemsize():
    raw = np.arange(400, dtype=np.uint8)
    x = np.ndarray((6, 5), dtype="<u4", buffer=raw, offset=0, strides=(13, 3))
    np.testing.assert_array_equal(batch_flatten(x), np.reshape(x, (6, 5)))


# --- Flatten (Keras' contract) -------------------------------------------------

def test_flatten_layer_calls():
    layer = Flatten(data_format="channels_first")
    for shape in ((10, 3, 5, 5), (2, 4), (7,), (3, 2, 2, 2, 2)):
        x = rng.random(shape)
        expected = x.reshape(len(x), -1) if x.ndim <= 2 else \
            np.moveaxis(x, 1, -1).reshape(len(x), -1)
        np.testing.assert_array_equal(layer(x), expected)


@pytest.mark.parametrize("shape, expected", [
    ((None, 2, 3), (None, 6)), ((5, 2, None), (5, None)), ((None,), (None, 1)),
    ((4, 3, 5, 5), (4, 75)), ((None, None), (None, None)), ([8, 2, 2], (8, 4)),
])
def test_compute_output_shape(shape, expected):
    for data_format in ("channels_last", "channels_first"):
        assert Flatten(data_format).compute_output_shape(shape) == expected


def test_layer_config_round_trip():
    layer = Flatten("channels_first")
    assert layer.get_config() == {"name": "flatten", "trainable": True, "dtype": None,
                                  "data_format": "channels_first"}
    clone = Flatten.from_config(layer.get_config())
    assert clone.data_format == "channels_first" and clone == layer
    assert Flatten(None).data_format == "channels_last"
    assert "channels_first" in repr(layer)


# --- errors ---------------------------------------------------------------------

@pytest.mark.parametrize("call, exc, words", [
    (lambda: batch_flatten(np.float64(1.0)), ValueError, "a:"),
    (lambda: batch_flatten(np.zeros((2, 2)), data_format="NCHW"), ValueError, "data_format"),
    (lambda: batch_flatten([[1, 2], [3]]), ValueError, "a:"),
    (lambda: batch_flatten(np.zeros((2, 2)), copy="yes"), TypeError, "copy"),
    (lambda: batch_flatten(np.zeros((2, 2)), num_threads=0), ValueError, "num_threads"),
    (lambda: batch_flatten(np.zeros((2, 2)), num_threads=1.5), TypeError, "num_threads"),
    (lambda: flatten(np.zeros((2, 3)), 1.0), TypeError, "start_dim"),
    (lambda: flatten(np.zeros((2, 3)), 0, "1"), TypeError, "end_dim"),
    (lambda: flatten(np.zeros((2, 3)), True), TypeError, "start_dim"),
    (lambda: flatten(np.zeros((2, 3)), 2), np.exceptions.AxisError, "start_dim"),
    (lambda: flatten(np.zeros((2, 3)), 0, -3), np.exceptions.AxisError, "end_dim"),
    (lambda: flatten(np.zeros((2, 3, 4)), 2, 1), ValueError, "start_dim"),
    (lambda: flatten(np.zeros(()), 1), np.exceptions.AxisError, "start_dim"),
    (lambda: Flatten("channels_middle"), ValueError, "data_format"),
    (lambda: Flatten().compute_output_shape(()), ValueError, "input_shape"),
    (lambda: pyflat.set_num_threads(0), ValueError, "n:"),
    (lambda: pyflat.set_num_threads("4"), TypeError, "n:"),
])
def test_bad_input_raises_named_error(call, exc, words):
    with pytest.raises(exc, match=words):
        call()


@pytest.mark.parametrize("out, exc, words", [
    ([[0.0] * 12] * 2, TypeError, "out: expected a numpy.ndarray"),
    (np.zeros((2, 13)), ValueError, r"out: expected shape \(2, 12\)"),
    (np.zeros((2, 12), np.float32), TypeError, "out: expected dtype float64"),
    (np.zeros((2, 12), ">f8"), TypeError, "out: expected dtype"),
    (np.zeros((12, 2)).T, ValueError, "out: must be C-contiguous"),
    (np.zeros((2, 12)), ValueError, "out: is read-only"),
])
def test_bad_out_is_refused_and_untouched(out, exc, words):
    if words == "out: is read-only":
        out.flags.writeable = False
    x = rng.random((2, 3, 4))
    before = np.array(out, copy=True)
    with pytest.raises(exc, match=words):
        batch_flatten(x, data_format="channels_first", out=out)
    np.testing.assert_array_equal(np.asarray(out), before)


def test_copy_false_with_out_is_refused_and_out_untouched():
    out = np.full((2, 12), 7.0)
    with pytest.raises(ValueError, match="copy=False"):
        batch_flatten(rng.random((2, 3, 4)), out=out, copy=False)
    assert (out == 7.0).all()


# --- threads and explain ----------------------------------------------------------

def test_num_threads_setting_round_trip():
    before = pyflat.get_num_threads()
    try:
        pyflat.set_num_threads(3)
        assert pyflat.get_num_threads() == 3
    finally:
        pyflat.set_num_threads(before)


def test_default_threads_from_environment():
    import subprocess
    import sys
    env = dict(os.environ, PYFLAT_NUM_THREADS="5")
    out = subprocess.run([sys.executable, "-c", "import pyflat; print(pyflat.get_num_threads())"],
                         env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "5"
    env["PYFLAT_NUM_THREADS"] = "many"
    out = subprocess.run([sys.executable, "-c", "import pyflat; print(pyflat.get_num_threads())"],
                         env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(len(os.sched_getaffinity(0)))
    assert "PYFLAT_NUM_THREADS" in out.stderr


def test_explain_fields():
    x = np.zeros((8, 3, 32, 32), np.uint8)
    plan = pyflat.explain(x, data_format="channels_first")
    assert not plan.zero_copy
    assert plan.kernel == "transpose"
    assert plan.shape == (8, 1024, 3)           # H and W merged
    assert plan.src_strides == (3072, 1, 1024)
    assert plan.dst_strides == (3072, 3, 1)
    assert (plan.rows_axis, plan.cols_axis) == (1, 2)
    assert plan.num_threads == 1                 # 24 KiB: too small to split
    assert plan.path == "kernel"  # numpy would loop over 8192 rows of 3 bytes
    small = pyflat.explain(x[:2, :, :4, :4], data_format="channels_first")
    assert small.path == "numpy" and "numpy" in str(small)  # 96 bytes: numpy copies it

    contiguous = pyflat.explain(x)
    assert contiguous.zero_copy and "zero-copy" in str(contiguous)

    sliced = pyflat.explain(np.zeros((4, 6, 8))[:, :, ::2])
    assert sliced.kernel == "gather"
    assert sliced.shape == (96,) and sliced.src_strides == (16,)  # all three merge

    rows = pyflat.explain(np.zeros((10, 6, 8))[::2])
    assert rows.kernel == "memcpy" and rows.shape == (5, 48)

    dims = pyflat.explain(np.zeros((2, 3, 4)).transpose(2, 0, 1), start_dim=1)
    assert dims.output_shape == (4, 6)
    # a 24-element transpose: tiles, or one small block by table or program
    assert dims.kernel in ("transpose", "block")


def test_explain_threads_for_large_copies():
    x = np.zeros((64, 64, 64, 64), np.float32)
    plan = pyflat.explain(x, data_format="channels_first", num_threads=2)
    assert plan.num_threads == 2 and plan.units >= 2


@pytest.mark.slow
def test_more_than_2_31_elements():
    n = 2**31 + 2**20 + 6
    try:
        base = np.random.default_rng(7).integers(0, 256, n + 1, dtype=np.uint8)
        # Batch-interleaved at an odd offset: (2, n/2) with strides (1, 2).
        view = np.lib.stride_tricks.as_strided(base[1:], (2, n // 2), (1, 2))
        result = batch_flatten(view)
    except MemoryError:
        pytest.skip("not enough memory for two 2 GiB arrays")
    assert result.shape == (2, n // 2) and result.size > 2**31
    block = 2**26
    for start in range(0, n // 2, block):  # compare against numpy's indexing, by blocks
        assert np.array_equal(result[:, start:start + block], view[:, start:start + block])
