"""pyflat.dask on a real two-process LocalCluster, with numpy as the reference."""

import math
import re
import subprocess
import sys
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pytest
from dask.local import get_sync
from distributed import Client, LocalCluster

import pyflat
import pyflat.dask as pfd

ROOT = Path(__file__).resolve().parents[1]
SHAPE = (24, 3, 8, 10)  # (batch, channels, height, width)

# Every kind of chunking the feature axes can have, with the batch axis split.
CHUNKINGS = {
    "features-whole": (5, 3, 8, 10),
    "channels-split": (7, 1, 8, 10),
    "all-split": (10, 2, 3, 4),
}
DTYPES = [np.float64, np.float32, np.uint8, np.int16, np.complex64,
          np.dtype([("a", "<i4"), ("b", "u1")])]


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                      dashboard_address=":0", host="127.0.0.1") as cluster, \
            Client(cluster) as client:
        yield client


def random_array(shape, dtype, seed=0):
    """Random bytes viewed as ``dtype``: every bit pattern, NaNs included."""
    dtype = np.dtype(dtype)
    raw = np.random.default_rng(seed).integers(
        0, 256, size=math.prod(shape) * dtype.itemsize, dtype=np.uint8)
    return raw.view(dtype).reshape(shape)


def reference(a, data_format):
    """The meaning of batch_flatten, in numpy (DESIGN.md)."""
    if data_format == "channels_first" and a.ndim > 2:
        a = np.moveaxis(a, 1, -1)
    return np.reshape(a, (a.shape[0], math.prod(a.shape[1:])))


def layer_names(x):
    return list(x.__dask_graph__().layers)


def rechunk_layers(x):
    return [name for name in layer_names(x) if name.startswith("rechunk")]


def test_import_pyflat_does_not_import_dask():
    code = ("import sys, pyflat, numpy as np; "
            "pyflat.batch_flatten(np.zeros((2, 3))); "
            "print(sorted(m for m in sys.modules "
            "if m.split('.')[0] in ('dask', 'distributed')))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT,
                            capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("chunking", CHUNKINGS)
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda dtype: str(np.dtype(dtype)))
def test_batch_flatten_matches_numpy(client, chunking, data_format, dtype):
    a = random_array(SHAPE, dtype)
    x = da.from_array(a, chunks=CHUNKINGS[chunking])
    y = pfd.batch_flatten(x, data_format=data_format)
    expected = reference(a, data_format)
    assert y.shape == expected.shape and y.dtype == a.dtype
    assert type(y._meta) is np.ndarray and y._meta.dtype == a.dtype
    result = y.compute()
    assert type(result) is np.ndarray and result.dtype == a.dtype
    assert result.shape == expected.shape
    assert result.tobytes() == expected.tobytes()


def test_blocks_are_flattened_on_the_workers(client):
    a = random_array(SHAPE, np.float32)
    y = pfd.batch_flatten(da.from_array(a, chunks=(6, 1, 8, 10)),
                          data_format="channels_first")
    assert y.compute().tobytes() == reference(a, "channels_first").tobytes()
    # Both workers ran pyflat's kernel, from this checkout.
    loaded = client.run(lambda: ("pyflat._pyflat" in sys.modules
                                 and sys.modules["pyflat.dask"].__file__))
    assert list(loaded.values()) == [pfd.__file__] * 2


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_whole_features_keep_the_batch_chunks_and_need_no_rechunk(data_format):
    x = da.from_array(random_array(SHAPE, np.int16), chunks=(5, 3, 8, 10))
    y = pfd.batch_flatten(x, data_format=data_format)
    assert y.chunks == ((5, 5, 5, 5, 4), (240,))
    assert rechunk_layers(y) == []
    # One flatten task per input block: nothing is split or gathered.
    assert len(y.__dask_graph__()) == 2 * x.npartitions
    assert any(name.startswith("pyflat-batch_flatten-") for name in layer_names(y))


def test_contiguous_blocks_are_not_copied():
    """A whole channels_last block is already its rows: the output block is a
    view of it, as pyflat.batch_flatten gives for an ndarray."""
    inputs = {}

    def remember(block, block_id=None):
        inputs[block_id] = block
        return block

    x = da.random.random((6, 3, 4, 5), chunks=(2, 3, 4, 5)).map_blocks(remember)
    y = pfd.batch_flatten(x)
    output = get_sync(dict(y.__dask_graph__()), (y.name, 1, 0))
    assert output.shape == (2, 60)
    assert np.shares_memory(output, inputs[(1, 0, 0, 0)])


@pytest.mark.parametrize("chunking", ["channels-split", "all-split"])
def test_split_features_are_rechunked_once_into_one_chunk(chunking):
    x = da.from_array(random_array(SHAPE, np.float64), chunks=CHUNKINGS[chunking])
    y = pfd.batch_flatten(x, data_format="channels_first")
    assert y.chunks == (x.chunks[0], (240,))
    assert len(rechunk_layers(y)) == 1


def test_rechunking_cuts_batch_chunks_to_the_dask_chunk_size():
    a = random_array((40, 4, 32), np.float64)  # one row: 1 KiB
    x = da.from_array(a, chunks=(25, 1, 32))
    with dask.config.set({"array.chunk-size": "10KiB"}):
        y = pfd.batch_flatten(x)
    assert y.chunks == ((9, 8, 8, 8, 7), (128,))
    row_bytes = 128 * 8
    assert max(y.chunks[0]) * row_bytes <= 10 * 1024
    # Cuts only: every boundary of the input's batch chunks is still one.
    assert set(np.cumsum(x.chunks[0])) <= set(np.cumsum(y.chunks[0]))
    assert y.compute(scheduler="sync").tobytes() == reference(a, "channels_last").tobytes()


def test_whole_features_keep_big_batch_chunks():
    x = da.from_array(random_array((40, 4, 32), np.float64), chunks=(25, 4, 32))
    with dask.config.set({"array.chunk-size": "10KiB"}):
        y = pfd.batch_flatten(x)
    assert y.chunks == ((25, 15), (128,))


def test_one_dimensional_input_gives_a_column(client):
    a = random_array((23,), np.uint8)
    y = pfd.batch_flatten(da.from_array(a, chunks=7))
    assert y.shape == (23, 1) and y.chunks == ((7, 7, 7, 2), (1,))
    assert y.compute().tobytes() == a.reshape(23, 1).tobytes()


@pytest.mark.parametrize("shape", [(0, 3, 4), (5, 0, 3), (0,)])
def test_empty_arrays(shape):
    a = np.empty(shape, np.float32)
    y = pfd.batch_flatten(da.from_array(a))
    assert y.compute(scheduler="sync").shape == reference(a, "channels_last").shape


def test_unknown_batch_chunks(client):
    a = random_array((30, 3, 4), np.float64)
    keep = np.arange(30) % 3 != 1
    for chunks in [(7, 3, 4), (7, 1, 2)]:
        x = da.from_array(a, chunks=chunks)
        x = x[da.from_array(keep, chunks=7)]
        assert math.isnan(x.shape[0])
        y = pfd.batch_flatten(x, data_format="channels_first")
        assert y.compute().tobytes() == reference(a[keep], "channels_first").tobytes()


def flatten_reference(a, start, end):
    ndim = a.ndim
    start, end = start % ndim, end % ndim
    shape = a.shape[:start] + (math.prod(a.shape[start:end + 1]),) + a.shape[end + 1:]
    return np.reshape(a, shape)


@pytest.mark.parametrize("dims", [(0, -1), (1, -1), (1, 2), (0, 1), (2, 3), (-2, -1),
                                  (1, 1)])
@pytest.mark.parametrize("chunking", CHUNKINGS)
def test_flatten_matches_numpy(client, dims, chunking):
    a = random_array(SHAPE, np.int16)
    x = da.from_array(a, chunks=CHUNKINGS[chunking])
    y = pfd.flatten(x, *dims)
    expected = flatten_reference(a, *dims)
    assert y.shape == expected.shape and y.dtype == a.dtype
    result = y.compute()
    assert result.shape == expected.shape
    assert result.tobytes() == expected.tobytes()
    # The first merged axis keeps its chunk boundaries, scaled.
    start, end = dims[0] % 4, dims[1] % 4
    inner = math.prod(SHAPE[start + 1:end + 1])
    assert y.chunks[start] == tuple(c * inner for c in x.chunks[start])


def test_flatten_without_merging_returns_the_input():
    x = da.from_array(random_array(SHAPE, np.uint8), chunks=(5, 1, 8, 10))
    assert pfd.flatten(x, 2, 2) is x
    assert pfd.flatten(da.arange(6, chunks=4)).chunks == ((4, 2),)


def test_flatten_zero_dimensional():
    y = pfd.flatten(da.from_array(np.array(2.5)))
    assert y.shape == (1,)
    np.testing.assert_array_equal(y.compute(scheduler="sync"), [2.5])


def _never_computed(block):
    raise AssertionError("a block was computed while building the graph")


def _forbidden_scheduler(*args, **kwargs):
    raise AssertionError("the graph was computed while it was being built")


def test_lazy_nothing_is_computed_until_compute(client):
    poisoned = da.map_blocks(_never_computed, da.zeros((12, 3, 4), chunks=(4, 1, 4)),
                             dtype=np.float64)
    with dask.config.set(scheduler=_forbidden_scheduler):
        y = pfd.batch_flatten(poisoned, data_format="channels_first")
        z = pfd.flatten(poisoned, 0, 1)
    assert y.shape == (12, 12) and z.shape == (36, 4)
    tasks = client.run_on_scheduler(lambda dask_scheduler: set(dask_scheduler.tasks))
    assert not any(key[0] == y.name for key in tasks if isinstance(key, tuple))
    with pytest.raises(AssertionError, match="a block was computed"):
        y.compute()


@pytest.mark.parametrize("name, args, kwargs", [
    ("batch_flatten", (), {"data_format": "NCHW"}),
    ("batch_flatten", (), {"data_format": None}),
    ("flatten", (3,), {}),
    ("flatten", (0, -4), {}),
    ("flatten", (2, 1), {}),
    ("flatten", (1.0,), {}),
    ("flatten", (True,), {}),
])
def test_bad_arguments_raise_as_the_numpy_functions_do(name, args, kwargs):
    a = np.zeros((4, 3, 2))
    with pytest.raises(Exception) as numpy_error:
        getattr(pyflat, name)(a, *args, **kwargs)
    with pytest.raises(numpy_error.type, match=re.escape(str(numpy_error.value))):
        getattr(pfd, name)(da.from_array(a, chunks=2), *args, **kwargs)


def test_zero_dimensional_batch_is_refused():
    with pytest.raises(ValueError, match="x: expected at least 1 dimension"):
        pfd.batch_flatten(da.zeros((4, 3), chunks=2).sum())


@pytest.mark.parametrize("function", [pfd.batch_flatten, pfd.flatten])
def test_in_memory_arrays_are_refused(function):
    with pytest.raises(TypeError, match="x: expected a dask.array.Array, got ndarray"):
        function(np.zeros((4, 3)))


def test_masked_blocks_are_refused():
    x = da.from_array(np.ma.masked_array(np.arange(6).reshape(2, 3), mask=[[0, 1, 0]] * 2))
    with pytest.raises(TypeError, match="MaskedArray"):
        pfd.batch_flatten(x)


def test_unknown_feature_size_is_refused():
    x = da.from_array(np.zeros((6, 4)), chunks=2)
    x = x[:, x[0] >= 0]
    with pytest.raises(ValueError, match="axis 1 is unknown"):
        pfd.batch_flatten(x)


# --- conversion (issue 14) ------------------------------------------------------

@pytest.mark.parametrize("chunks", list(CHUNKINGS.values()), ids=list(CHUNKINGS))
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_batch_flatten_converts_like_pyflat(chunks, data_format):
    x = (np.arange(math.prod(SHAPE)) % 251).astype(np.uint8).reshape(SHAPE)
    channels = SHAPE[1] if data_format == "channels_first" else SHAPE[-1]
    kwargs = dict(dtype=np.float32, scale=[0.5 + k for k in range(channels)], offset=-1.0)
    result = pfd.batch_flatten(da.from_array(x, chunks=chunks), data_format=data_format,
                               **kwargs)
    assert result.dtype == np.float32
    want = pyflat.batch_flatten(x, data_format=data_format, **kwargs)
    assert result.compute(scheduler=get_sync).tobytes() == want.tobytes()


@pytest.mark.parametrize("start, end", [(0, -1), (1, 2), (0, 1), (2, 2), (1, 1)])
def test_flatten_converts_like_pyflat(start, end):
    x = (np.arange(math.prod(SHAPE)) % 251).astype(np.int16).reshape(SHAPE)
    d = da.from_array(x, chunks=CHUNKINGS["all-split"])
    for kwargs in (dict(dtype=np.float64), dict(dtype=np.float16, scale=list(range(10))),
                   dict(offset=3)):
        result = pfd.flatten(d, start, end, **kwargs)
        want = pyflat.flatten(x, start, end, **kwargs)
        assert result.dtype == want.dtype and result.shape == want.shape
        assert result.compute(scheduler=get_sync).tobytes() == want.tobytes(), kwargs


def test_conversion_errors_are_raised_at_graph_time():
    d = da.zeros(SHAPE, chunks=CHUNKINGS["all-split"], dtype=np.float64)
    with pytest.raises(TypeError, match="casting"):
        pfd.batch_flatten(d, dtype=np.int8)
    with pytest.raises(ValueError, match="scale"):
        pfd.batch_flatten(d, data_format="channels_first", scale=[1.0, 2.0])
    with pytest.raises(ValueError, match="offset.*NaN"):
        pfd.flatten(d, offset=float("nan"))
