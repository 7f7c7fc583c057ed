"""Drop-in means drop-in (issue 12, items 1-9): numpy's, Keras' and torch's
contracts restated against pyflat, each checked against the library itself
where it is installed, else against its documented behaviour."""

from __future__ import annotations

import itertools
import json
import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import pyflat
from pyflat import Flatten, ascontiguousarray, batch_flatten, flatten

from array_likes import ArrayMethodOnly, DLPackOnly

rng = np.random.default_rng(12)


# --- 1. dtype-likes: whatever numpy takes, with numpy's result --------------------

DTYPE_LIKES = [
    np.dtypes.Int32DType, np.dtypes.Int32DType(), np.dtypes.Float16DType, np.int32,
    np.float32, int, float, complex, bool, "i4", "<f8", ">i2", "uint8", "U", "S", np.str_,
    np.bytes_, np.dtypes.StrDType, np.dtype([("a", "<i2"), ("b", "<f4")]),
]


@pytest.mark.parametrize("dtype", DTYPE_LIKES, ids=repr)
@pytest.mark.parametrize("make", [
    lambda: [1, 2, 3],
    lambda: np.arange(12, dtype=np.int64).reshape(3, 4),
    lambda: np.asfortranarray(np.arange(12, dtype=np.int64).reshape(3, 4)),
    lambda: np.arange(24, dtype=np.float64).reshape(2, 3, 4)[:, ::2],
    lambda: np.int16(7),
], ids=["list", "c-array", "fortran", "strided", "scalar"])
def test_ascontiguousarray_takes_every_dtype_like_numpy_does(make, dtype):
    expected = np.ascontiguousarray(make(), dtype=dtype)
    result = ascontiguousarray(make(), dtype=dtype)
    assert result.dtype == expected.dtype and result.shape == expected.shape
    assert result.flags.c_contiguous and type(result) is np.ndarray
    assert result.tobytes() == expected.tobytes()


def test_ascontiguousarray_string_dtype_class():
    expected = np.ascontiguousarray(["ab", "c"], dtype=np.dtypes.StringDType)
    result = ascontiguousarray(["ab", "c"], dtype=np.dtypes.StringDType)
    assert result.dtype == expected.dtype and result.tolist() == expected.tolist()


# --- 2 and 9. identity wherever numpy returns the input --------------------------

def test_ascontiguousarray_returns_the_input_itself_like_numpy():
    x = rng.random((4, 5))
    assert np.ascontiguousarray(x) is x  # the reference
    assert ascontiguousarray(x) is x
    assert ascontiguousarray(x, dtype=np.float64) is x
    assert ascontiguousarray(x, dtype=np.dtypes.Float64DType) is x
    assert ascontiguousarray(x, dtype=float) is x
    assert ascontiguousarray(x, num_threads=1) is x
    one_d = np.arange(3)
    assert ascontiguousarray(one_d) is one_d


def test_ascontiguousarray_copies_where_numpy_does():
    x = rng.random((4, 5))
    for case in (x.T, x[:, ::2], x.astype(np.float32)):
        assert (np.ascontiguousarray(case) is case) == (ascontiguousarray(case) is case)
    assert ascontiguousarray(x, dtype=np.float32) is not x
    scalar = np.float64(2.0)
    assert ascontiguousarray(scalar).shape == np.ascontiguousarray(scalar).shape == (1,)


def test_flatten_returns_the_input_when_nothing_is_merged_as_torch_does():
    x = rng.random((2, 3, 4))
    assert flatten(x, 1, 1) is x
    assert flatten(x, -1, -1, copy=False) is x
    assert flatten(x, 1, 1, copy=True) is not x
    out = np.empty_like(x)
    assert flatten(x, 1, 1, out=out) is out
    t = x.transpose(0, 2, 1)
    assert flatten(t, 1, 1) is not t and flatten(t, 1, 1).flags.c_contiguous


def test_out_is_returned_itself():
    out = np.empty((2, 12))
    assert batch_flatten(rng.random((2, 3, 4)), out=out) is out
    assert flatten(rng.random((2, 3, 4)), 1, out=out) is out


# --- 9. zero-copy results are views that write through; copy=False ---------------

@pytest.mark.parametrize("call", [
    lambda a: batch_flatten(a), lambda a: batch_flatten(a, copy=False),
    lambda a: flatten(a, 1), lambda a: flatten(a, 0, -1, copy=False),
    lambda a: ascontiguousarray(a), lambda a: Flatten()(a),
], ids=["batch_flatten", "batch_flatten-copy-False", "flatten", "flatten-copy-False",
        "ascontiguousarray", "Flatten"])
def test_zero_copy_results_write_through(call):
    a = np.zeros((3, 4, 5))
    result = call(a)
    assert np.shares_memory(result, a)
    result.reshape(-1)[7] = 42.0
    assert a.reshape(-1)[7] == 42.0


@pytest.mark.parametrize("call", [
    lambda a: batch_flatten(a[:, ::2], copy=False),
    lambda a: batch_flatten(a, data_format="channels_first", copy=False),
    lambda a: flatten(a.transpose(0, 2, 1), 1, copy=False),
    lambda a: flatten(a[::-1], copy=False),
])
def test_copy_false_raises_when_a_copy_is_needed(call):
    with pytest.raises(ValueError, match="copy=False"):
        call(np.zeros((3, 4, 5)))


# --- 3. ndarray subclasses ------------------------------------------------------------

def masked(shape=(3, 4, 5)):
    data = rng.random(shape)
    return np.ma.masked_array(data, mask=data > 0.7, fill_value=-1.0)


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("prepare", [lambda m: m, lambda m: m[:, ::2], lambda m: m[::-1]],
                         ids=["contiguous", "strided", "reversed"])
def test_masked_arrays_keep_their_mask_as_reshape_does(data_format, prepare):
    x = prepare(masked())
    reference = np.moveaxis(x, 1, -1) if data_format == "channels_first" else x
    expected = reference.reshape(len(x), -1)  # MaskedArray.reshape keeps the mask
    for result in (batch_flatten(x, data_format=data_format),
                   Flatten(data_format)(x),
                   next(pyflat.iter_flatten([x], data_format=data_format))):
        assert isinstance(result, np.ma.MaskedArray)
        assert np.array_equal(np.ma.getmaskarray(result), np.ma.getmaskarray(expected))
        assert np.array_equal(result.data, expected.data)
        assert result.fill_value == x.fill_value


def test_masked_flatten_and_nomask():
    x = masked((2, 3, 4)).transpose(2, 0, 1)
    result = flatten(x, 1)
    assert np.array_equal(np.ma.getmaskarray(result), np.ma.getmaskarray(x.reshape(4, 6)))
    plain = np.ma.masked_array(np.arange(6.0).reshape(2, 3))  # mask is nomask
    assert batch_flatten(plain).mask is np.ma.nomask


def test_masked_input_refuses_out_and_leaves_it_untouched():
    out = np.full((3, 20), 7.0)
    with pytest.raises(TypeError, match="^out: "):
        batch_flatten(masked(), out=out)
    assert (out == 7.0).all()


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")
def test_ascontiguousarray_returns_a_base_ndarray_like_numpy():
    for x in (masked(), np.asmatrix(rng.random((3, 4))), rng.random((3, 4)).view(np.recarray)):
        expected = np.ascontiguousarray(x)
        result = ascontiguousarray(x)
        assert type(result) is type(expected) is np.ndarray
        assert result.tobytes() == expected.tobytes()


# --- 4. bad arguments name the parameter; out is untouched ---------------------------

@pytest.mark.parametrize("rows", [1, 2, 3, 5])
@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")
def test_out_may_be_any_ndarray_subclass_but_masked(rows):
    x = rng.random((rows, 3, 4))
    out = np.asmatrix(np.zeros((rows, 12)))
    assert batch_flatten(x, data_format="channels_first", out=out) is out
    assert np.array_equal(np.asarray(out), np.moveaxis(x, 1, -1).reshape(rows, -1))
    with pytest.raises(ValueError, match=r"^out: expected shape"):
        flatten(x, out=np.asmatrix(np.zeros((1, rows * 12))))  # a matrix is never 1-d


def test_out_memmap(tmp_path):
    x = rng.random((4, 3, 5)).astype(np.float32)
    out = np.lib.format.open_memmap(tmp_path / "out.npy", mode="w+", dtype=np.float32,
                                    shape=(4, 15))
    assert batch_flatten(x, data_format="channels_first", out=out) is out
    out.flush()
    assert np.array_equal(np.load(tmp_path / "out.npy"), np.moveaxis(x, 1, -1).reshape(4, -1))


@pytest.mark.parametrize("value", [np.array([2]), np.array([[1]]), [2], (2,), "2", 2.0])
def test_num_threads_non_scalars_name_the_parameter(value):
    out = np.full((2, 12), 7.0)
    with pytest.raises(TypeError, match="^num_threads: "):
        batch_flatten(rng.random((2, 3, 4)), out=out, num_threads=value)
    assert (out == 7.0).all()
    with pytest.raises(TypeError, match="^n: "):
        pyflat.set_num_threads(value)


def test_num_threads_integer_scalars_work():
    x = rng.random((2, 3, 4))
    for value in (np.int64(2), np.array(2), np.uint8(1)):
        assert batch_flatten(x, num_threads=value).shape == (2, 12)


# --- 5. compute_output_shape refuses what Keras refuses -----------------------------

@pytest.mark.parametrize("shape", [
    (None, -1, 3), (None, 2.5), (None, "3"), (None, True), (4, 3.0), (-2,), "abc", 3,
    None, (None, [2]), (None, np.float64(2)),
])
def test_compute_output_shape_refuses_non_shapes(shape):
    with pytest.raises(ValueError, match="^input_shape: "):
        Flatten().compute_output_shape(shape)


def test_compute_output_shape_takes_integer_likes():
    assert Flatten().compute_output_shape([np.int64(4), np.uint8(3), 5]) == (4, 15)
    assert Flatten().compute_output_shape((None, 0, 3)) == (None, 0)
    result = Flatten().compute_output_shape((np.int32(2), np.int64(3)))
    assert all(type(d) is int for d in result)


# --- 6. data_format is read case-insensitively, as Keras does ----------------------------

@pytest.mark.parametrize("spelling", ["Channels_First", "CHANNELS_FIRST", "channels_First",
                                      np.str_("Channels_first")])
def test_data_format_is_case_insensitive(spelling):
    x = rng.random((2, 3, 4, 5))
    expected = np.moveaxis(x, 1, -1).reshape(2, -1)
    assert np.array_equal(batch_flatten(x, data_format=spelling), expected)
    assert np.array_equal(Flatten(spelling)(x), expected)
    assert Flatten(spelling).get_config()["data_format"] == "channels_first"
    assert pyflat.explain(x, data_format=spelling).output_shape == (2, 60)
    assert np.array_equal(next(pyflat.iter_flatten([x], data_format=spelling)), expected)


# --- 7. Keras configs round-trip -------------------------------------------------------------

# What keras.layers.Flatten(data_format="channels_first").get_config() gives (Keras 3).
KERAS_CONFIG = {
    "name": "flatten_3", "trainable": True,
    "dtype": {"module": "keras", "class_name": "DTypePolicy",
              "config": {"name": "float32"}, "registered_name": None},
    "data_format": "channels_first",
}


def test_keras_config_round_trips_through_json():
    layer = Flatten.from_config(json.loads(json.dumps(KERAS_CONFIG)))
    assert layer.data_format == "channels_first" and layer.name == "flatten_3"
    assert layer.get_config() == KERAS_CONFIG
    again = Flatten.from_config(json.loads(json.dumps(layer.get_config())))
    assert again == layer and again.get_config() == KERAS_CONFIG


def test_own_config_round_trips_through_json():
    for layer in (Flatten(), Flatten("channels_first", name="f", trainable=False)):
        assert Flatten.from_config(json.loads(json.dumps(layer.get_config()))) == layer


def test_equal_configs_compare_equal():
    assert Flatten() == Flatten("channels_last") == Flatten("Channels_Last")
    assert Flatten() != Flatten("channels_first")
    assert Flatten() != Flatten(name="other")
    assert Flatten() != "flatten"
    assert len({Flatten(), Flatten("channels_last"), Flatten("channels_first")}) == 2


def test_from_config_refuses_unknown_keys():
    with pytest.raises(TypeError, match="bogus"):
        Flatten.from_config({**KERAS_CONFIG, "bogus": 1})


def run_python(code: str) -> str:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], check=True,
                          capture_output=True, text=True).stdout.strip()


def test_data_format_none_follows_keras_only_when_keras_is_imported():
    # A stand-in for Keras, put in sys.modules as "import keras" would.
    code = """
        import sys, types
        import pyflat
        print(pyflat.Flatten(None).data_format, "keras" in sys.modules)
        keras = types.ModuleType("keras")
        keras.config = types.SimpleNamespace(image_data_format=lambda: "channels_first")
        sys.modules["keras"] = keras
        print(pyflat.Flatten().data_format, pyflat.Flatten("channels_last").data_format)
    """
    assert run_python(code).split() == ["channels_last", "False", "channels_first",
                                        "channels_last"]


def test_import_pyflat_imports_neither_keras_torch_nor_sklearn():
    code = """
        import sys, numpy, pyflat
        pyflat.Flatten(None)
        print(sorted(m for m in ("keras", "torch", "sklearn", "tensorflow", "pandas")
                     if m in sys.modules))
    """
    assert run_python(code) == "[]"


# --- 8. explain() describes the path the call takes -----------------------------------------

def test_explain_object_arrays_are_copied_by_numpy():
    x = np.empty((8, 3, 64, 64), dtype=object)
    plan = pyflat.explain(x, data_format="channels_first")
    assert plan.path == "numpy" and "object" in plan.note
    assert "numpy" in str(plan) and "avx" not in str(plan).lower()


def test_explain_small_inputs_take_numpy_path():
    plan = pyflat.explain(np.zeros((2, 3, 4, 4), np.uint8), data_format="channels_first")
    assert plan.path == "numpy" and "numpy" in str(plan)


def test_explain_zero_copy_and_kernel_paths():
    x = np.zeros((8, 3, 64, 64), np.uint8)
    view = pyflat.explain(x)
    assert view.path == "view" and view.zero_copy and "zero-copy" in str(view)
    kernel = pyflat.explain(x, data_format="channels_first")
    assert kernel.path == "kernel" and kernel.kernel == "transpose"


def test_explain_agrees_with_what_the_call_does(monkeypatch):
    """Whatever explain() says, the call does: count the kernel's calls."""
    from pyflat import _kernel
    calls = []
    real = _kernel.copy_into

    def spy(*args, **kwargs):
        done = real(*args, **kwargs)
        calls.append(done)
        return done

    monkeypatch.setattr(_kernel, "copy_into", spy)
    monkeypatch.setattr(pyflat.api, "KERNEL_ENTRY", 0)  # C entries: through copy_into too
    cases = [np.zeros((8, 3, 64, 64), np.uint8), np.zeros((8, 3, 32, 32), np.uint8),
             np.empty((8, 3, 64, 64), object), np.zeros((64, 64, 64), np.float32)[:, ::2],
             np.zeros((256, 32, 64), np.float64)[::2], np.zeros((4, 3, 5))]
    for x in cases:
        for data_format in ("channels_last", "channels_first"):
            calls.clear()
            plan = pyflat.explain(x, data_format=data_format)
            result = batch_flatten(x, data_format=data_format)
            ran_kernel = bool(calls) and calls[-1]
            assert (plan.path == "kernel") == ran_kernel, (x.shape, data_format, plan.path)
            assert (plan.path == "view") == np.shares_memory(result, x)


# --- 9. torch tensors, __array__ and DLPack objects into every function -----------------------


def every_function(wrap, x):
    """(name, result, expected) for each public function given ``wrap(x)``."""
    n = len(x)
    yield "batch_flatten", batch_flatten(wrap(x)), x.reshape(n, -1)
    yield ("batch_flatten-cf", batch_flatten(wrap(x), data_format="channels_first"),
           np.moveaxis(x, 1, -1).reshape(n, -1))
    yield "flatten", flatten(wrap(x), 1, 2), x.reshape(n, -1, *x.shape[3:])
    yield "ascontiguousarray", ascontiguousarray(wrap(x)), np.ascontiguousarray(x)
    yield ("ascontiguousarray-dtype", ascontiguousarray(wrap(x), dtype=np.float32),
           np.ascontiguousarray(x, dtype=np.float32))
    yield "Flatten", Flatten("channels_first")(wrap(x)), np.moveaxis(x, 1, -1).reshape(n, -1)
    yield ("iter_flatten", next(pyflat.iter_flatten([wrap(x)], reuse_output=True)),
           x.reshape(n, -1))
    yield "explain", np.zeros(pyflat.explain(wrap(x)).output_shape), np.zeros((n, x[0].size))


@pytest.mark.parametrize("wrap", [DLPackOnly, ArrayMethodOnly, memoryview],
                         ids=["dlpack", "__array__", "memoryview"])
def test_array_like_objects_into_every_function(wrap):
    x = rng.random((3, 4, 5, 2)).transpose(0, 2, 1, 3)  # strided
    if wrap is memoryview:
        x = np.ascontiguousarray(x)  # memoryview(x) needs a buffer numpy can export
    for name, result, expected in every_function(wrap, x):
        assert result.shape == expected.shape, name
        assert np.array_equal(result, expected), name


@pytest.mark.parametrize("layout", ["contiguous", "permuted", "sliced"])
def test_torch_tensors_into_every_function(layout):
    torch = pytest.importorskip("torch")
    t = torch.arange(3 * 4 * 5 * 2, dtype=torch.float64).reshape(3, 4, 5, 2)
    t = {"contiguous": t, "permuted": t.permute(0, 2, 1, 3),
         "sliced": t[:, :, ::2]}[layout]
    x = t.numpy()
    for name, result, expected in every_function(lambda a: t, x):
        assert result.shape == expected.shape, name
        assert np.array_equal(result, expected), name
    # and against torch itself
    assert np.array_equal(batch_flatten(t), torch.flatten(t, 1).numpy())
    assert np.array_equal(flatten(t, 1, 2), torch.flatten(t, 1, 2).numpy())


# --- 9. flatten(start_dim, end_dim) over every pair, against torch's semantics ------------------

def torch_flatten_reference(shape, start, end):
    """torch.flatten's documented rule: dims in [-ndim, ndim) (a 0-d input acts
    as 1-d), start <= end after wrapping, the run merged into one; None for an
    error."""
    ndim = max(len(shape), 1)
    if not (-ndim <= start < ndim and -ndim <= end < ndim):
        return None
    start, end = start % ndim, end % ndim
    if start > end:
        return None
    if not shape:
        return (1,)
    return shape[:start] + (math.prod(shape[start:end + 1]),) + shape[end + 1:]


SHAPES = [(), (3,), (2, 3), (2, 1, 3), (2, 3, 1, 2), (1, 2, 3, 2, 2), (2, 0, 3)]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_flatten_every_pair_like_torch(shape):
    torch = sys.modules.get("torch")
    try:
        import torch  # noqa: F811  (optional: the documented rule stands in)
    except ImportError:
        torch = None
    ndim = max(len(shape), 1)
    base = np.arange(math.prod(shape), dtype=np.int32).reshape(shape)
    views = [base]
    if base.ndim > 1:
        views.append(np.ascontiguousarray(base.T).T)  # same values, Fortran order
    for x in views:
        for start, end in itertools.product(range(-ndim - 1, ndim + 1), repeat=2):
            expected = torch_flatten_reference(x.shape, start, end)
            if torch is not None:
                try:
                    t = torch.flatten(torch.from_numpy(np.ascontiguousarray(x)), start, end)
                    assert tuple(t.shape) == expected, (x.shape, start, end)
                except (IndexError, RuntimeError):
                    assert expected is None, (x.shape, start, end)
            if expected is None:
                with pytest.raises((ValueError, IndexError)):
                    flatten(x, start, end)
                continue
            result = flatten(x, start, end)
            assert result.shape == expected and result.flags.c_contiguous
            assert np.array_equal(result.reshape(-1), np.ravel(x, order="C"))


def test_dask_reads_data_format_like_keras():
    da = pytest.importorskip("dask.array")
    import pyflat.dask
    x = rng.random((4, 3, 2, 5))
    lazy = pyflat.dask.batch_flatten(da.from_array(x, chunks=(2, 3, 1, 5)),
                                     data_format="Channels_First")
    assert np.array_equal(lazy.compute(scheduler="sync"), np.moveaxis(x, 1, -1).reshape(4, -1))
