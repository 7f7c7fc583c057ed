"""The fast paths of the common calls (issue 13) give exactly what the
general path gives: same values, same view-or-copy, same errors; the
per-layout decision cache changes no result.  No timing here: the benchmark
(``python -m pyflat.bench.overhead``) shows the costs."""

from __future__ import annotations

import numpy as np
import pytest

import pyflat
from pyflat import _kernel, api

rng = np.random.default_rng(13)


def numpy_batch_flatten(a: np.ndarray, data_format: str = "channels_last") -> np.ndarray:
    if data_format == "channels_first" and a.ndim > 2:
        a = np.moveaxis(a, 1, -1)
    return np.ascontiguousarray(a.reshape(len(a), -1) if a.ndim else a)


def layouts():
    """Small and mid-sized layouts, every path of the fast code: views,
    tiny copies, row copies, gathers, transposes, in both data formats."""
    base = rng.random((8, 3, 16, 16)).astype(np.float32)
    u8 = rng.integers(0, 256, (32, 3, 8, 8), dtype=np.uint8)
    yield "contiguous", base, "channels_last"
    yield "contiguous_cf", base, "channels_first"
    yield "u8_cf_6KB", u8, "channels_first"
    yield "u8_cf_tiny", u8[:1, :, :4, :4], "channels_first"
    yield "u8_cf_sliced", u8[:, :, ::2], "channels_first"
    yield "batch_slice", base[::2], "channels_last"
    yield "inner_slice", base[..., ::2], "channels_last"
    yield "reversed", base[:, :, :, ::-1], "channels_last"
    yield "nhwc_view", base.transpose(0, 2, 3, 1), "channels_last"
    yield "fortran_2d", np.asfortranarray(rng.random((300, 16))), "channels_last"
    yield "fortran_2d_tiny", np.asfortranarray(rng.random((4, 4))), "channels_last"
    yield "tabular_cols", rng.random((6, 2000)).T, "channels_last"
    yield "tabular_slice", rng.random((128, 20, 8))[:, :, :6], "channels_last"
    yield "one_d_strided", rng.random(64)[::2], "channels_last"
    yield "big_transpose", rng.random((64, 3, 32, 32)), "channels_first"  # 1.5 MiB
    yield "big_rows", rng.random((64, 3, 40, 40))[..., 1:], "channels_last"  # 2.3 MiB
    yield "big_object_cf", np.arange(40 * 3 * 40 * 40).astype(object).reshape(40, 3, 40, 40), \
        "channels_first"  # 1.5 MiB of pointers: numpy's copy
    yield "object_cf", np.array(list(range(2 * 3 * 4 * 4)), dtype=object).reshape(2, 3, 4, 4), \
        "channels_first"


LAYOUTS = list(layouts())


@pytest.mark.parametrize("name,a,data_format", LAYOUTS, ids=[x[0] for x in LAYOUTS])
def test_batch_flatten_matches_numpy(name, a, data_format):
    want = numpy_batch_flatten(a, data_format)
    for _ in range(2):  # the second call takes the cached decision
        got = pyflat.batch_flatten(a, data_format=data_format)
        assert type(got) is np.ndarray and got.flags.c_contiguous
        assert got.shape == want.shape and got.dtype == want.dtype
        assert got.tobytes() == want.tobytes() if a.dtype != object else (got == want).all()
        view = np.moveaxis(a, 1, -1) if data_format == "channels_first" and a.ndim > 2 else a
        assert np.shares_memory(got, a) == bool(view.flags.c_contiguous)
    # The same as the general path (named num_threads, out=) gives.
    general = pyflat.batch_flatten(a, data_format=data_format, copy=True)
    assert np.array_equal(general, want)
    out = np.empty_like(want)
    assert pyflat.batch_flatten(a, data_format=data_format, out=out) is out
    assert np.array_equal(out, want)


@pytest.mark.parametrize("name,a,data_format", LAYOUTS, ids=[x[0] for x in LAYOUTS])
def test_ascontiguousarray_and_layer_match_numpy(name, a, data_format):
    got = pyflat.ascontiguousarray(a)
    want = np.ascontiguousarray(a)
    assert got.flags.c_contiguous and got.shape == want.shape and np.array_equal(got, want)
    assert (got is a) == (want is a)
    layer = pyflat.Flatten(data_format)
    assert np.array_equal(layer(a), numpy_batch_flatten(a, data_format))


def test_decision_cache_is_bounded_and_changes_no_result(monkeypatch):
    monkeypatch.setattr(api, "_KERNEL_TAKES_MAX", 4)
    api._KERNEL_TAKES.clear()
    for batch in range(1, 12):
        a = rng.integers(0, 256, (batch * 8, 3, 8, 8), dtype=np.uint8)
        first = pyflat.batch_flatten(a, data_format="channels_first")
        api._KERNEL_TAKES.clear()
        again = pyflat.batch_flatten(a, data_format="channels_first")
        assert first.tobytes() == again.tobytes() == numpy_batch_flatten(a, "channels_first").tobytes()
        assert len(api._KERNEL_TAKES) <= 4


def test_decision_keys_on_dtype_so_objects_never_reach_the_kernel(monkeypatch):
    """An int64 layout the kernel takes, then an object array of the same
    shape and strides: numpy must copy the objects (reference counts)."""
    calls = []
    real = _kernel.copy_into
    monkeypatch.setattr(_kernel, "copy_into", lambda *a, **k: calls.append(1) or real(*a, **k))
    ints = np.arange(64 * 3 * 4 * 4, dtype=np.int64).reshape(64, 3, 4, 4)
    objects = ints.astype(object)
    assert ints.strides == objects.strides
    pyflat.batch_flatten(ints, data_format="channels_first")
    kernel_calls = len(calls)
    got = pyflat.batch_flatten(objects, data_format="channels_first")
    assert len(calls) == kernel_calls  # none for the objects
    assert (got == numpy_batch_flatten(ints, "channels_first")).all()


def test_small_transposes_go_to_the_kernel_and_explain_says_so(monkeypatch):
    calls = []
    real = _kernel.copy_into
    monkeypatch.setattr(_kernel, "copy_into", lambda *a, **k: calls.append(1) or real(*a, **k))
    for a, data_format in [(rng.integers(0, 256, (32, 3, 8, 8), dtype=np.uint8), "channels_first"),
                           (rng.integers(0, 256, (1, 3, 4, 4), dtype=np.uint8), "channels_first"),
                           (rng.random((40, 20, 8))[:, :, :6], "channels_last"),
                           (np.asfortranarray(rng.random((1000, 16))), "channels_last")]:
        before = len(calls)
        pyflat.batch_flatten(a, data_format=data_format)
        used_kernel = len(calls) > before
        assert (pyflat.explain(a, data_format=data_format).path == "kernel") == used_kernel


def test_data_format_strings_that_are_not_the_constants():
    a = rng.random((4, 3, 2, 2))
    built = "".join(["channels", "_first"])  # equal, but not the interned constant
    assert built is not api.CHANNELS_FIRST
    for fmt in (built, "Channels_First", "CHANNELS_FIRST"):
        assert np.array_equal(pyflat.batch_flatten(a, data_format=fmt),
                              numpy_batch_flatten(a, "channels_first"))
    layer = pyflat.Flatten()
    layer.data_format = "".join(["channels", "_last"])
    assert np.array_equal(layer(a), a.reshape(4, -1))
    with pytest.raises(ValueError, match="data_format"):
        pyflat.batch_flatten(a, data_format="channels_middle")
    with pytest.raises(ValueError, match="data_format"):
        pyflat.batch_flatten(a, data_format=None)


@pytest.mark.parametrize("shape", [(0, 3, 4), (0,), (2, 0, 3), (5,), (5, 1), ()])
def test_fast_paths_on_edge_shapes(shape):
    a = np.zeros(shape)
    if a.ndim == 0:
        with pytest.raises(ValueError):
            pyflat.batch_flatten(a)
        with pytest.raises(ValueError):
            pyflat.Flatten()(a)
        assert pyflat.flatten(a).shape == (1,)
        assert pyflat.ascontiguousarray(a).shape == (1,)
        return
    want = (shape[0], int(np.prod(shape[1:])))
    assert pyflat.batch_flatten(a).shape == want
    assert pyflat.Flatten()(a).shape == want
    assert pyflat.flatten(a).shape == (a.size,)
    if a.ndim >= 2:
        assert pyflat.flatten(a, 1).shape == want
    assert pyflat.ascontiguousarray(a) is a


def test_flatten_fast_path_keeps_torch_identity_and_dim_checks():
    x = rng.random((4, 3, 2))
    assert pyflat.flatten(x, 1).base is x and pyflat.flatten(x, 1).shape == (4, 6)
    assert pyflat.flatten(x).shape == (24,)
    two = rng.random((4, 6))
    assert pyflat.flatten(two, 1) is two  # nothing merged: the input itself
    one = rng.random(5)
    assert pyflat.flatten(one) is one
    assert pyflat.flatten(x, np.int64(1)).shape == (4, 6)
    assert pyflat.flatten(x, 1, np.int64(-1)).shape == (4, 6)
    with pytest.raises(TypeError):
        pyflat.flatten(x, True)
    with pytest.raises(TypeError):
        pyflat.flatten(x, 0, True)
    with pytest.raises(np.exceptions.AxisError):
        pyflat.flatten(one, 1)
    with pytest.raises(TypeError):
        pyflat.flatten(x, 1, copy="yes")


def test_keyword_only_arguments_are_still_keyword_only():
    x = rng.random((4, 3))
    with pytest.raises(TypeError):
        pyflat.batch_flatten(x, "channels_first")  # type: ignore[misc]
    with pytest.raises(TypeError):
        pyflat.ascontiguousarray(x, None, 2)  # type: ignore[misc]


def test_read_only_inputs_give_read_only_views_and_writable_copies():
    x = rng.random((4, 3, 2))
    x.flags.writeable = False
    assert not pyflat.batch_flatten(x).flags.writeable  # a view, as numpy's reshape
    copied = pyflat.batch_flatten(x, data_format="channels_first")
    assert copied.flags.writeable


def test_decision_cache_under_threads(monkeypatch):
    """Threads flattening many layouts while the bounded cache keeps being
    cleared: every result still equals numpy's."""
    import threading
    monkeypatch.setattr(api, "_KERNEL_TAKES_MAX", 3)
    inputs = [(rng.integers(0, 256, (b, 3, 8, 8), dtype=np.uint8), "channels_first")
              for b in range(8, 40, 4)]
    inputs += [(np.asfortranarray(rng.random((b * 64, 16))), "channels_last") for b in range(1, 6)]
    wants = [numpy_batch_flatten(a, f).tobytes() for a, f in inputs]
    failures = []

    def work(seed: int) -> None:
        order = np.random.default_rng(seed).permutation(len(inputs))
        for _ in range(20):
            for i in order:
                a, f = inputs[i]
                if pyflat.batch_flatten(a, data_format=f).tobytes() != wants[i]:
                    failures.append(i)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == [] and len(api._KERNEL_TAKES) <= 3 + len(threads)  # a race adds one each
