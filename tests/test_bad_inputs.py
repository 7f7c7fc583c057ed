"""A catalog of bad inputs to every public entry point: each raises the
expected exception type with a message naming the parameter, nothing crashes,
and the caller's ``out`` (and the default thread count) stay untouched.

A second, shorter catalog lists unusual inputs that must *work*, checked
against numpy.
"""

from __future__ import annotations

import io
import math
from typing import Any, Callable, NamedTuple, Tuple

import numpy as np
import pytest

pytestmark = pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # np.matrix

import pyflat

X = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)  # flattens to (2, 60)
SENTINEL = 0x5A


def sentinel(shape: tuple, dtype: Any = np.float32, order: str = "C") -> np.ndarray:
    """An array whose bytes are all SENTINEL: any write to it shows."""
    dtype = np.dtype(dtype)
    raw = np.full(int(np.prod(shape)) * dtype.itemsize, SENTINEL, dtype=np.uint8)
    return np.ndarray(shape, dtype=dtype, buffer=raw, order=order)


def read_only(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def as_strided_too_big() -> np.ndarray:
    """A view of 2**62 elements (stride 0), which numpy accepts but no output can hold."""
    return np.lib.stride_tricks.as_strided(np.zeros(1, np.uint8), (2**31, 2**31), (0, 0))


class Bad(NamedTuple):
    """``call(out)`` must raise ``error`` matching ``message``; ``out`` is a
    sentinel array (the one the case makes, else a valid one) checked after."""

    call: Callable[[np.ndarray], Any]
    error: type
    message: str
    make_out: Callable[[], np.ndarray] = lambda: sentinel((2, 60))


def bad(case_id: str, *args, marks=(), **kwargs):
    return pytest.param(Bad(*args, **kwargs), id=case_id, marks=marks)


CATALOG = [
    # a: types, dims, shapes
    bad("a-None", lambda out: pyflat.batch_flatten(None, out=out), ValueError, r"^a: "),
    bad("a-object", lambda out: pyflat.batch_flatten(object(), out=out), ValueError, r"^a: "),
    bad("a-dict", lambda out: pyflat.batch_flatten({"x": 1}, out=out), ValueError, r"^a: "),
    bad("a-str", lambda out: pyflat.batch_flatten("abc", out=out), ValueError, r"^a: "),
    bad("a-file-object", lambda out: pyflat.batch_flatten(io.BytesIO(b"\0" * 480), out=out),
        ValueError, r"^a: "),
    bad("a-ragged", lambda out: pyflat.batch_flatten([[1, 2], [3]], out=out), ValueError,
        r"^a: cannot be converted"),
    bad("a-0d", lambda out: pyflat.batch_flatten(np.float32(1), out=out), ValueError,
        r"^a: expected at least 1 dimension"),
    bad("a-0d-array", lambda out: pyflat.batch_flatten(np.zeros(()), out=out), ValueError,
        r"^a: expected at least 1 dimension"),
    bad("a-too-big", lambda out: pyflat.batch_flatten(as_strided_too_big()),
        (ValueError, MemoryError), r"^a: the result, shape \(2147483648, 2147483648\)"),
    # data_format values
    bad("data_format-unknown",
        lambda out: pyflat.batch_flatten(X, data_format="channels_middle", out=out),
        ValueError, r"^data_format: "),
    bad("data_format-None", lambda out: pyflat.batch_flatten(X, data_format=None, out=out),
        ValueError, r"^data_format: "),
    bad("data_format-int", lambda out: pyflat.batch_flatten(X, data_format=1, out=out),
        ValueError, r"^data_format: "),
    bad("data_format-bytes", lambda out: pyflat.batch_flatten(X, data_format=b"channels_first",
                                                              out=out),
        ValueError, r"^data_format: "),
    # out variants
    bad("out-list", lambda out: pyflat.batch_flatten(X, out=[[0.0] * 60] * 2), TypeError,
        r"^out: expected a numpy.ndarray"),
    bad("out-memoryview", lambda out: pyflat.batch_flatten(X, out=memoryview(out)), TypeError,
        r"^out: expected a numpy.ndarray"),
    bad("out-scalar", lambda out: pyflat.batch_flatten(X, out=np.float32(0)), TypeError,
        r"^out: "),
    bad("out-shape-short", lambda out: pyflat.batch_flatten(X, out=out), ValueError,
        r"^out: expected shape", make_out=lambda: sentinel((2, 59))),
    bad("out-shape-swapped", lambda out: pyflat.batch_flatten(X, out=out), ValueError,
        r"^out: expected shape", make_out=lambda: sentinel((60, 2))),
    bad("out-shape-1d", lambda out: pyflat.batch_flatten(X, out=out), ValueError,
        r"^out: expected shape", make_out=lambda: sentinel((120,))),
    bad("out-dtype-wider", lambda out: pyflat.batch_flatten(X, out=out), TypeError,
        r"^out: expected dtype", make_out=lambda: sentinel((2, 60), np.float64)),
    bad("out-dtype-same-size", lambda out: pyflat.batch_flatten(X, out=out), TypeError,
        r"^out: expected dtype", make_out=lambda: sentinel((2, 60), np.int32)),
    bad("out-fortran", lambda out: pyflat.batch_flatten(X, out=out), ValueError,
        r"^out: must be C-contiguous", make_out=lambda: sentinel((2, 60), order="F")),
    bad("out-strided", lambda out: pyflat.batch_flatten(X, out=out[:, ::2]), ValueError,
        r"^out: must be C-contiguous", make_out=lambda: sentinel((2, 120))),
    bad("out-reversed", lambda out: pyflat.batch_flatten(X, out=out[::-1]), ValueError,
        r"^out: must be C-contiguous"),
    bad("out-read-only", lambda out: pyflat.batch_flatten(X, out=out), ValueError,
        r"^out: is read-only", make_out=lambda: read_only(sentinel((2, 60)))),
    bad("out-with-copy-False", lambda out: pyflat.batch_flatten(X, out=out, copy=False),
        ValueError, r"copy=False"),
    # copy values
    bad("copy-str", lambda out: pyflat.batch_flatten(X, copy="yes", out=out), TypeError,
        r"^copy: "),
    bad("copy-int", lambda out: pyflat.batch_flatten(X, copy=1, out=out), TypeError, r"^copy: "),
    bad("copy-False-needs-copy",
        lambda out: pyflat.batch_flatten(X, data_format="channels_first", copy=False),
        ValueError, r"^copy=False"),
    # num_threads values
    bad("num_threads-0", lambda out: pyflat.batch_flatten(X, num_threads=0, out=out),
        ValueError, r"^num_threads: "),
    bad("num_threads-negative", lambda out: pyflat.batch_flatten(X, num_threads=-1, out=out),
        ValueError, r"^num_threads: "),
    bad("num_threads-too-many", lambda out: pyflat.batch_flatten(X, num_threads=257, out=out),
        ValueError, r"^num_threads: "),
    bad("num_threads-float", lambda out: pyflat.batch_flatten(X, num_threads=1.5, out=out),
        TypeError, r"^num_threads: "),
    bad("num_threads-bool", lambda out: pyflat.batch_flatten(X, num_threads=True, out=out),
        TypeError, r"^num_threads: "),
    bad("num_threads-str", lambda out: pyflat.batch_flatten(X, num_threads="4", out=out),
        TypeError, r"^num_threads: "),
    # flatten: dims
    bad("flatten-start_dim-out-of-range", lambda out: pyflat.flatten(X, 4), np.exceptions.AxisError,
        r"start_dim"),
    bad("flatten-end_dim-out-of-range", lambda out: pyflat.flatten(X, 0, -5),
        np.exceptions.AxisError, r"end_dim"),
    bad("flatten-start-after-end", lambda out: pyflat.flatten(X, 3, 1), ValueError,
        r"start_dim"),
    bad("flatten-start_dim-float", lambda out: pyflat.flatten(X, 1.0), TypeError, r"^start_dim: "),
    bad("flatten-start_dim-bool", lambda out: pyflat.flatten(X, True), TypeError, r"^start_dim: "),
    bad("flatten-end_dim-None", lambda out: pyflat.flatten(X, 0, None), TypeError, r"^end_dim: "),
    bad("flatten-out-shape", lambda out: pyflat.flatten(X, 1, 2, out=out), ValueError,
        r"^out: expected shape"),
    bad("flatten-out-dtype", lambda out: pyflat.flatten(X, 1, out=out), TypeError,
        r"^out: expected dtype", make_out=lambda: sentinel((2, 60), np.uint32)),
    bad("flatten-num_threads", lambda out: pyflat.flatten(X, 1, num_threads=0, out=out),
        ValueError, r"^num_threads: "),
    bad("flatten-copy", lambda out: pyflat.flatten(X, 1, copy="no", out=out), TypeError,
        r"^copy: "),
    # ascontiguousarray
    bad("ascontiguousarray-a-ragged", lambda out: pyflat.ascontiguousarray([[1], [2, 3]]),
        ValueError, r"^a: "),
    bad("ascontiguousarray-num_threads", lambda out: pyflat.ascontiguousarray(X, num_threads=0),
        ValueError, r"^num_threads: "),
    bad("ascontiguousarray-dtype-unknown",
        lambda out: pyflat.ascontiguousarray(X, dtype="nonsense"), TypeError, r"dtype"),
    bad("ascontiguousarray-dtype-uncastable",
        lambda out: pyflat.ascontiguousarray(["a", "b"], dtype=float), ValueError, r"dtype"),
    # Flatten
    bad("Flatten-data_format", lambda out: pyflat.Flatten(data_format="nchw"), ValueError,
        r"^data_format: "),
    bad("Flatten-call-0d", lambda out: pyflat.Flatten()(np.float32(1)), ValueError,
        r"expected at least 1 dimension"),
    bad("Flatten-output-shape-empty", lambda out: pyflat.Flatten().compute_output_shape(()),
        ValueError, r"^input_shape: "),
    bad("Flatten-from_config", lambda out: pyflat.Flatten.from_config({"bogus": 1}),
        TypeError, r"bogus"),
    bad("Flatten-from_config-not-dict", lambda out: pyflat.Flatten.from_config([1]),
        TypeError, r"^config: "),
    bad("Flatten-trainable", lambda out: pyflat.Flatten(trainable="yes"), TypeError,
        r"^trainable: "),
    bad("Flatten-name", lambda out: pyflat.Flatten(name=3), TypeError, r"^name: "),
    bad("Flatten-output-shape-negative",
        lambda out: pyflat.Flatten().compute_output_shape((None, -1, 3)), ValueError,
        r"^input_shape: .*negative"),
    bad("Flatten-output-shape-float",
        lambda out: pyflat.Flatten().compute_output_shape((None, 2.5)), ValueError,
        r"^input_shape: "),
    bad("Flatten-output-shape-int", lambda out: pyflat.Flatten().compute_output_shape(3),
        ValueError, r"^input_shape: "),
    bad("Flatten-set_params", lambda out: pyflat.Flatten().set_params(data_format="x"),
        ValueError, r"^data_format: "),
    # subclasses as out, array-valued num_threads
    bad("out-matrix-shape", lambda out: pyflat.flatten(X, out=np.asmatrix(out)),
        ValueError, r"^out: expected shape"),
    bad("out-masked", lambda out: pyflat.batch_flatten(X, out=np.ma.masked_array(out)),
        TypeError, r"^out: a numpy.ma.MaskedArray"),
    bad("masked-input-with-out",
        lambda out: pyflat.batch_flatten(np.ma.masked_array(X, mask=X > 9), out=out),
        TypeError, r"^out: cannot hold the mask"),
    bad("num_threads-array", lambda out: pyflat.batch_flatten(X, num_threads=np.array([2]),
                                                              out=out),
        TypeError, r"^num_threads: "),
    # explain
    bad("explain-data_format", lambda out: pyflat.explain(X, data_format="nhwc"), ValueError,
        r"^data_format: "),
    bad("explain-start_dim", lambda out: pyflat.explain(X, start_dim=9), np.exceptions.AxisError,
        r"start_dim"),
    bad("explain-num_threads", lambda out: pyflat.explain(X, num_threads=-2), ValueError,
        r"^num_threads: "),
    bad("explain-a-0d", lambda out: pyflat.explain(np.float32(1)), ValueError, r"^a: "),
    # set_num_threads
    bad("set_num_threads-0", lambda out: pyflat.set_num_threads(0), ValueError, r"^n: "),
    bad("set_num_threads-too-many", lambda out: pyflat.set_num_threads(1000), ValueError,
        r"^n: "),
    bad("set_num_threads-str", lambda out: pyflat.set_num_threads("2"), TypeError, r"^n: "),
    bad("set_num_threads-None", lambda out: pyflat.set_num_threads(None), TypeError, r"^n: "),
    bad("set_num_threads-float", lambda out: pyflat.set_num_threads(2.0), TypeError, r"^n: "),
]


def test_catalog_is_large():
    assert len(CATALOG) >= 30


@pytest.mark.parametrize("case", CATALOG)
def test_bad_input(case: Bad):
    out = case.make_out()
    before = out.tobytes(order="A")
    threads = pyflat.get_num_threads()
    with pytest.raises(case.error, match=case.message):
        case.call(out)
    assert out.tobytes(order="A") == before, "out was written"
    assert pyflat.get_num_threads() == threads


# -- unusual inputs that work --------------------------------------------------

def object_array() -> np.ndarray:
    a = np.empty((3, 2, 2), dtype=object)
    a[...] = [[["x", 1], [None, 2.5]], [[(1,), {}], [b"b", 3]], [[4, 5], [6, "y"]]]
    return a.transpose(0, 2, 1)


def with_object_field() -> np.ndarray:
    a = np.zeros((4, 3), dtype=[("name", object), ("value", "<f4")])
    a["name"] = np.arange(12).reshape(4, 3).astype(str)
    return a[:, ::-1]


GOOD: Tuple = (
    pytest.param(lambda: X.transpose(0, 3, 1, 2), id="transposed"),
    pytest.param(object_array, id="object-dtype"),
    pytest.param(with_object_field, id="object-field-struct"),
    pytest.param(lambda: read_only(X.copy())[:, ::-1], id="read-only"),
    pytest.param(lambda: np.zeros((0, 3, 4)).transpose(0, 2, 1), id="empty-batch"),
    pytest.param(lambda: np.zeros((3, 0, 4)), id="empty-features"),
    pytest.param(lambda: np.arange(5), id="1d"),
    pytest.param(lambda: np.ma.masked_array(X, mask=X > 50), id="masked-array"),
    pytest.param(lambda: X.tolist(), id="nested-list"),
    pytest.param(lambda: np.broadcast_to(np.arange(4.0), (3, 5, 4)), id="broadcast"),
    pytest.param(lambda: X.astype(">f8")[:, :, ::2], id="big-endian"),
)


@pytest.mark.parametrize("make", GOOD)
@pytest.mark.parametrize("copy", [None, True])
def test_unusual_input_works(make, copy):
    a = make()
    expected = np.asarray(a)
    expected = expected.reshape(len(expected), math.prod(expected.shape[1:]))
    result = pyflat.batch_flatten(a, copy=copy)
    if isinstance(a, np.ma.MaskedArray):  # the mask is flattened alike (its own test)
        assert isinstance(result, np.ma.MaskedArray)
        result = np.ma.getdata(result)
    assert result.flags.c_contiguous and result.dtype == expected.dtype
    assert result.shape == expected.shape
    if expected.dtype.hasobject:
        assert result.tolist() == expected.tolist()
    else:
        assert result.tobytes() == expected.tobytes()


def test_out_overlapping_input():
    """out may be the input's own memory: the input is read first."""
    buffer = np.arange(24, dtype=np.int64)
    a = buffer.reshape(2, 3, 4).transpose(0, 2, 1)
    expected = np.reshape(a, (2, 12)).copy()
    result = pyflat.batch_flatten(a, out=buffer.reshape(2, 12))
    assert result.tobytes() == expected.tobytes()


@pytest.mark.parametrize("dtype", ["V0", np.dtype([])], ids=["V0", "empty-struct"])
def test_zero_itemsize_copies(dtype):
    """No bytes to copy (the kernel itself rejects itemsize 0: it must not get them)."""
    a = np.zeros((2, 3), dtype).T  # strides (0, 0): numpy calls it contiguous
    assert pyflat.batch_flatten(a, copy=True).shape == (3, 2)
    out = np.empty(6, dtype)
    assert pyflat.flatten(a, out=out) is out
