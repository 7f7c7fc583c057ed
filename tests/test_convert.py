"""Conversion while copying (issue 14): dtype=, casting=, scale=, offset=.

Every result is compared, byte for byte, with numpy's expression

    r = ref.astype(dtype); r = r * np.asarray(scale, dtype); r = r + np.asarray(offset, dtype)

(absent factors skipped), where ``ref`` is the result without conversion.
These tests are also the C conversion kernel's, end to end: every fused
(source, destination) pair, scalar and per-channel factors, NaN, infinities,
-0.0, subnormals and values out of the destination's range.
"""

from __future__ import annotations

import itertools
import tracemalloc
import warnings
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pyflat
from pyflat import Flatten, _kernel, ascontiguousarray, batch_flatten, flatten
from pyflat import convert as convert_module
from pyflat import api as api_module

from layouts import layouts

SOURCES = [np.dtype(t) for t in (np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8,
                                 np.uint16, np.uint32, np.uint64, np.float16, np.float32,
                                 np.float64)]
DESTINATIONS = [d for d in SOURCES if d != np.bool_]
PAIRS = list(itertools.product(SOURCES, DESTINATIONS))


@pytest.fixture(autouse=True, params=["measured rule", "kernel always"])
def converter(request, monkeypatch):
    """Every test twice: with the measured rule that gives small conversions
    to numpy (convert.numpy_is_faster), and with the kernel converting every
    pair it can, whatever the size: these tests are the kernel's too."""
    # the decisions the C entries repeat follow these settings: none kept across
    monkeypatch.setattr(api_module, "_CONVERT_NUMPY", {})
    if request.param == "kernel always":
        for name in ("NUMPY_ANY_BYTES", "NUMPY_RUNS_BYTES", "NUMPY_FLOAT_BYTES",
                     "NUMPY_LOOP_NS"):
            monkeypatch.setattr(convert_module, name, 0)
    return request.param


@pytest.fixture(autouse=True)
def _quiet_numpy():
    # numpy warns about NaN -> int and overflowing casts; the kernel does not.
    # Both give numpy's values, which is what is compared.
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", np.exceptions.ComplexWarning)
        yield


def values(rng: np.random.Generator, shape: tuple, dtype: np.dtype) -> np.ndarray:
    """Values of ``dtype`` over its whole range; for floats, small and large
    ones, integers, halves and the special values, shuffled."""
    size = int(np.prod(shape))
    if dtype == np.bool_:
        return rng.integers(0, 2, size).astype(bool).reshape(shape)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        edges = np.array([info.min, info.max, 0, 1], dtype)
        data = rng.integers(info.min, info.max, size, dtype=dtype, endpoint=True)
        data[:min(size, 4)] = edges[:min(size, 4)]
        return rng.permutation(data).reshape(shape)
    info = np.finfo(dtype)
    specials = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, info.smallest_subnormal,
                         -info.smallest_subnormal, info.max, -info.max, info.tiny, 0.5, 1.5,
                         2.5, -0.5, -1.5, 127.5, 128.0, 255.0, 255.5, 256.0, -128.0, -129.0,
                         32767.0, 32768.0, 65504.0, 65519.0, 65520.0, 2.0**31, -2.0**31,
                         2.0**32, 2.0**63, -2.0**63, 2.0**64, 1e-8, 3.3e-5],
                        dtype=np.float64).astype(dtype)
    parts = [specials,
             (rng.standard_normal(size) * 100).astype(dtype),
             rng.integers(-300, 300, size).astype(dtype),
             (rng.random(size) * 255).round().astype(dtype) / 2]
    data = np.concatenate(parts)
    return rng.permutation(data)[:size].reshape(shape)


def factors(dtype: np.dtype, channels: int, kind: str):
    """(scale, offset) of ``kind`` for a ``dtype`` result, valid for it."""
    if kind == "none":
        return None, None
    if dtype.kind == "f":
        if kind == "scalar":
            return 1 / 255, None
        if kind == "offset":
            return None, -0.5
        scale = [1 / 0.229, 1 / 0.224, 1 / 0.225, 3.0, -0.0][:channels]
        offset = [-0.485 / 0.229, -0.0, 1e-3, 2.5, -7.75][:channels]
        return scale + [0.75] * (channels - len(scale)), offset + [1.0] * (channels - len(offset))
    low = 0 if dtype.kind == "u" else -2
    if kind == "scalar":
        return 3, None  # wraps around, as numpy's multiply does
    if kind == "offset":
        return None, 1 if dtype.kind == "u" else -1
    scale = [(k % 4) + 1 for k in range(channels)]
    offset = [low + (k % 5) for k in range(channels)]
    return scale, offset


def expected(ref: np.ndarray, dtype, scale, offset) -> np.ndarray:
    """numpy's expression on ``ref`` (channel axis last)."""
    result = ref.astype(dtype)
    if scale is not None:  # (astype: a byte-swapped dtype's product is native-order)
        result = (result * np.asarray(scale, dtype)).astype(dtype, copy=False)
    if offset is not None:
        result = (result + np.asarray(offset, dtype)).astype(dtype, copy=False)
    return result


def same_bytes(result: np.ndarray, reference: np.ndarray) -> bool:
    if result.dtype != reference.dtype or not result.flags.c_contiguous:
        return False
    result, reference = result, np.ascontiguousarray(reference)
    if result.dtype == np.longdouble and np.finfo(np.longdouble).nmant == 63:
        # x87 extended precision: 10 bytes of value, the rest padding (undefined)
        value = lambda a: a.reshape(-1).view(np.uint8).reshape(-1, a.itemsize)[:, :10]  # noqa: E731
        return value(result).tobytes() == value(reference).tobytes()
    return result.tobytes() == reference.tobytes()


def small_layouts(rng: np.random.Generator, dtype: np.dtype):
    """(name, array, data_format) for a few layouts: NCHW, a Fortran table,
    a reversed strided view, a C-contiguous batch (conversion only)."""
    nchw = values(rng, (3, 3, 5, 7), dtype)
    yield "nchw", nchw, "channels_first"
    table = np.asfortranarray(values(rng, (9, 4), dtype))
    yield "fortran", table, "channels_last"
    strided = values(rng, (4, 6, 10), dtype)[::-1, :, ::3]
    yield "strided", strided, "channels_last"
    yield "contiguous", values(rng, (5, 2, 3), dtype), "channels_last"


def channels_last(a: np.ndarray, data_format: str) -> np.ndarray:
    return np.moveaxis(a, 1, -1) if data_format == "channels_first" and a.ndim > 2 else a


# --- every fused pair, through batch_flatten ---------------------------------------

@pytest.mark.parametrize("src, dst", PAIRS, ids=[f"{s}-{d}" for s, d in PAIRS])
def test_every_fused_pair_is_numpy_bit_for_bit(src, dst):
    rng = np.random.default_rng(zlib.crc32(f"{src}-{dst}".encode()))
    for name, a, data_format in small_layouts(rng, src):
        ref = np.ascontiguousarray(channels_last(a, data_format))
        for kind in ("none", "scalar", "offset", "channel"):
            scale, offset = factors(dst, ref.shape[-1], kind)
            result = batch_flatten(a, data_format=data_format, dtype=dst, casting="unsafe",
                                   scale=scale, offset=offset)
            want = expected(ref, dst, scale, offset).reshape(len(a), -1)
            assert same_bytes(result, want), (name, kind)


@pytest.mark.parametrize("src", [d for d in SOURCES if d.kind == "f"], ids=str)
def test_random_float_bits_to_every_destination(src):
    # Every bit pattern: NaN payloads, subnormals, both zeros, huge values.
    rng = np.random.default_rng(14)
    raw = rng.integers(0, 256, 4 * 3 * 64 * src.itemsize, dtype=np.uint8)
    a = raw.view(src).reshape(4, 3, 8, 8)
    ref = np.ascontiguousarray(np.moveaxis(a, 1, -1))
    for dst in DESTINATIONS:
        for kind in ("none", "channel"):
            scale, offset = factors(dst, 3, kind)
            result = batch_flatten(a, data_format="channels_first", dtype=dst,
                                   casting="unsafe", scale=scale, offset=offset)
            assert same_bytes(result, expected(ref, dst, scale, offset).reshape(4, -1)), (dst, kind)


@pytest.mark.parametrize("src, dst", [("u1", "f4"), ("u1", "f2"), ("i2", "f4"), ("f8", "f4"),
                                      ("f4", "f2"), ("f2", "f4"), ("f4", "u1"), ("i4", "f8")])
@pytest.mark.parametrize("num_threads", [1, 2])
def test_large_inputs_on_one_and_two_threads(src, dst, num_threads):
    # Big enough for the kernel's vector loops, tiles and thread split.
    rng = np.random.default_rng(7)
    src, dst = np.dtype(src), np.dtype(dst)
    a = values(rng, (16, 3, 67, 61), src)
    ref = np.ascontiguousarray(np.moveaxis(a, 1, -1))
    scale, offset = factors(dst, 3, "channel")
    for s, o in ((scale, offset), (scale, None), (None, None)):
        result = batch_flatten(a, data_format="channels_first", dtype=dst, casting="unsafe",
                               scale=s, offset=o, num_threads=num_threads)
        assert same_bytes(result, expected(ref, dst, s, o).reshape(16, -1))
    table = np.asfortranarray(values(rng, (5000, 7), src))
    scale, offset = factors(dst, 7, "channel")
    result = batch_flatten(table, dtype=dst, casting="unsafe", scale=scale, offset=offset,
                           num_threads=num_threads)
    assert same_bytes(result, expected(np.ascontiguousarray(table), dst, scale, offset))


@settings(max_examples=300, deadline=None)
@given(a=layouts(min_dims=1, max_dims=5, dtypes=SOURCES), dst=st.sampled_from(DESTINATIONS),
       kind=st.sampled_from(["none", "scalar", "offset", "channel"]),
       data_format=st.sampled_from(["channels_last", "channels_first"]),
       num_threads=st.sampled_from([1, 2]))
def test_random_layouts_are_numpy_bit_for_bit(a, dst, kind, data_format, num_threads):
    # Any strides (negative, zero, unaligned), read-only views, random bytes.
    with np.errstate(all="ignore"):
        ref = np.ascontiguousarray(channels_last(a, data_format))
        scale, offset = factors(dst, ref.shape[-1] if ref.ndim else 1, kind)
        result = batch_flatten(a, data_format=data_format, dtype=dst, casting="unsafe",
                               scale=scale, offset=offset, num_threads=num_threads)
        want = expected(ref, dst, scale, offset).reshape(result.shape)
    assert same_bytes(result, want)


# --- what the kernel does not convert: numpy's result ----------------------------------

NUMPY_CASES = [
    (np.complex128, np.float32, None, None),
    (np.complex64, np.complex128, 2 + 1j, None),
    (">f8", np.float32, 0.5, 1.0),
    ("<f8", ">f4", [1.0, 2.0, 3.0], None),
    (">i4", np.int16, None, 7),
    (np.float64, np.bool_, None, None),
    (np.int32, np.bool_, None, None),
    (np.longdouble, np.float64, 0.25, None),
    (np.float32, np.longdouble, None, [1.0, -1.0, 0.5]),
    (np.float32, np.complex64, 2.0, None),
    (np.int64, "U21", None, None),
    ("datetime64[s]", np.int64, None, None),
]


@pytest.mark.parametrize("src, dst, scale, offset", NUMPY_CASES,
                         ids=[f"{np.dtype(c[0])}-{np.dtype(c[1])}" for c in NUMPY_CASES])
def test_other_conversions_are_numpys(src, dst, scale, offset, monkeypatch):
    rng = np.random.default_rng(3)
    raw = rng.standard_normal((4, 3, 5, 2)) * 100
    a = raw.astype(src) if np.dtype(src).kind != "M" else raw.astype(np.int64).astype(src)
    ref = np.ascontiguousarray(np.moveaxis(a, 1, -1))
    called = []
    monkeypatch.setattr(_kernel, "convert_into", lambda *args: called.append(1))
    result = batch_flatten(a, data_format="channels_first", dtype=dst, casting="unsafe",
                           scale=scale, offset=offset)
    assert same_bytes(result, expected(ref, np.dtype(dst), scale, offset).reshape(4, -1))
    assert not called  # not a pair for the kernel
    out = np.full(result.shape, 1, np.dtype(dst))
    assert batch_flatten(a, data_format="channels_first", dtype=dst, casting="unsafe",
                         scale=scale, offset=offset, out=out) is out
    assert same_bytes(out, result)


def test_strings_convert_as_numpy_parses_them():
    a = np.array([["1.5", "-2"], ["3e2", "inf"]])
    result = batch_flatten(a, dtype=np.float64, casting="unsafe", scale=2.0)
    assert same_bytes(result, a.astype(np.float64) * 2.0)
    with pytest.raises(ValueError, match="dtype"):
        batch_flatten(np.array([["x"]]), dtype=np.float64, casting="unsafe")


def test_fused_pairs_go_to_the_kernel(monkeypatch):
    calls = []
    real = _kernel.convert_into
    monkeypatch.setattr(_kernel, "convert_into",
                        lambda *args: calls.append(args[1].dtype) or real(*args))
    a = np.zeros((2, 3, 32, 32), np.uint8)  # a transpose of 24 KiB: the kernel's
    batch_flatten(a, data_format="channels_first", dtype=np.float32, scale=1 / 255)
    assert calls == [np.dtype(np.float32)]
    for src, dst in PAIRS:
        assert _kernel.convert_supported(src, dst)
    for src, dst in [(">f4", "f4"), ("f4", ">f8"), ("c8", "f4"), ("f4", "?"), ("f4", "c8"),
                     ("g", "f8"), ("f8", "g"), ("U3", "f4"), ("O", "f4")]:
        assert not _kernel.convert_supported(np.dtype(src), np.dtype(dst))


def test_num_threads_reaches_the_kernel(monkeypatch):
    threads = []
    real = _kernel.convert_into
    monkeypatch.setattr(_kernel, "convert_into",
                        lambda *args: threads.append(args[4]) or real(*args))
    a = np.arange(2 * 3 * 64 * 64, dtype=np.uint16).reshape(2, 3, 64, 64)
    expected = np.moveaxis(a, 1, -1).reshape(2, -1).astype(np.float32)
    for num_threads in (1, 2):
        out = np.empty_like(expected)
        for kwargs in (dict(), dict(out=out)):  # a new array, and into out=
            result = batch_flatten(a, data_format="channels_first", dtype=np.float32,
                                   num_threads=num_threads, **kwargs)
            assert result.tobytes() == expected.tobytes()
            assert threads.pop() == num_threads


def test_values_the_kernel_declines_are_redone_by_numpy(monkeypatch):
    # convert_into returning False (NaN or out-of-range float -> int) leaves
    # out undefined: the result is then numpy's, whole.
    def declines(view, out, scale, offset, num_threads=0):
        out.reshape(-1).view(np.uint8)[:] = 0xAB
        return False
    monkeypatch.setattr(_kernel, "convert_into", declines)
    a = np.array([[np.nan, 1e10, -1.5], [np.inf, 2.5, 300.0]], np.float32).T
    for dst in (np.int8, np.uint8, np.int32, np.uint64):
        result = batch_flatten(a, dtype=dst, casting="unsafe", offset=1)
        assert same_bytes(result, expected(np.ascontiguousarray(a), np.dtype(dst), None, 1))
        out = np.empty_like(result)
        batch_flatten(a, dtype=dst, casting="unsafe", offset=1, out=out)
        assert same_bytes(out, result)


def test_numpy_raising_on_nan_to_int_leaves_out_untouched():
    a = np.array([[1.0, np.nan], [2.0, 3.0]], np.float32)
    out = np.full((2, 2), 7, np.int32)
    with np.errstate(invalid="raise"):
        with pytest.raises(FloatingPointError):
            a.astype(np.int32)  # numpy's own behaviour, the reference
        with pytest.raises(FloatingPointError):
            batch_flatten(a, dtype=np.int32, casting="unsafe", out=out)
        assert (out == 7).all()
        assert same_bytes(batch_flatten(a[:, :1], dtype=np.int32, casting="unsafe"),
                          np.array([[1], [2]], np.int32))


# --- the other entry points ---------------------------------------------------------

def test_flatten_converts_with_factors_along_the_last_axis():
    rng = np.random.default_rng(1)
    a = values(rng, (4, 5, 6, 3), np.dtype(np.uint8)).transpose(1, 0, 2, 3)  # not contiguous
    scale, offset = [0.5, 0.25, 2.0], [1.0, -1.0, 0.0]
    for start, end in ((0, -1), (1, 2), (0, 1), (2, 3)):
        want = expected(np.ascontiguousarray(a), np.dtype(np.float32), scale, offset)
        want = want.reshape(torch_shape(a.shape, start, end))
        result = flatten(a, start, end, dtype=np.float32, scale=scale, offset=offset)
        assert same_bytes(result, want), (start, end)
    contiguous = np.ascontiguousarray(a)
    assert same_bytes(flatten(contiguous, 1, dtype=np.float64),
                      contiguous.reshape(5, -1).astype(np.float64))
    assert same_bytes(flatten(np.float32(2.5), dtype=np.float16, casting="same_kind", scale=2),
                      np.array([5.0], np.float16))


def torch_shape(shape, start, end):
    start, end = start % len(shape), end % len(shape)
    return shape[:start] + (int(np.prod(shape[start:end + 1])),) + shape[end + 1:]


def test_ascontiguousarray_converts_in_the_copy():
    rng = np.random.default_rng(2)
    a = values(rng, (6, 7, 3), np.dtype(np.float64)).transpose(1, 0, 2)
    result = ascontiguousarray(a, np.float32)
    assert same_bytes(result, np.ascontiguousarray(a, np.float32))
    result = ascontiguousarray(a, np.int16)  # casting="unsafe": numpy's drop-in meaning
    assert same_bytes(result, np.ascontiguousarray(a).astype(np.int16))
    result = ascontiguousarray(a, np.float32, scale=[1.0, 2.0, 3.0], offset=-1.0)
    assert same_bytes(result, expected(np.ascontiguousarray(a), np.dtype(np.float32),
                                       [1.0, 2.0, 3.0], -1.0))
    with pytest.raises(TypeError, match="casting"):
        ascontiguousarray(a, np.int16, casting="same_kind")
    assert same_bytes(ascontiguousarray(np.uint8(7), np.float32, scale=0.5),
                      np.array([3.5], np.float32))
    # lists: numpy's own conversion of the values, as its ascontiguousarray does
    assert same_bytes(ascontiguousarray([1.7, -2.2], np.int8), np.array([1, -2], np.int8))


def test_out_receives_the_converted_result():
    rng = np.random.default_rng(4)
    a = values(rng, (3, 3, 4, 4), np.dtype(np.uint8))
    out = np.full((3, 48), np.nan, np.float32)
    result = batch_flatten(a, data_format="channels_first", dtype=np.float32,
                           scale=1 / 255, out=out)
    assert result is out
    assert same_bytes(out, expected(np.moveaxis(a, 1, -1), np.dtype(np.float32),
                                    1 / 255, None).reshape(3, -1))
    memmap_like = np.zeros((3, 48), np.float16).view(np.recarray)  # a subclass: written through
    assert batch_flatten(a, data_format="channels_first", dtype=np.float16,
                         out=memmap_like) is memmap_like


def test_out_overlapping_the_input_reads_it_first():
    buffer = np.arange(32, dtype=np.float32)
    a = buffer.view(np.int32).reshape(4, 8)[:, ::-1]  # same memory as out
    want = expected(np.ascontiguousarray(a), np.dtype(np.float32), None, None)
    batch_flatten(a, dtype=np.float32, casting="unsafe", out=buffer.reshape(4, 8))
    assert same_bytes(buffer.reshape(4, 8), want)


def test_masked_arrays_keep_their_mask_and_convert_their_data():
    data = np.arange(2 * 3 * 2 * 2, dtype=np.uint8).reshape(2, 3, 2, 2)
    mask = data % 5 == 0
    a = np.ma.array(data, mask=mask, fill_value=7)
    result = batch_flatten(a, data_format="channels_first", dtype=np.float32, scale=0.5)
    assert isinstance(result, np.ma.MaskedArray)
    assert same_bytes(np.ma.getdata(result),
                      expected(np.moveaxis(data, 1, -1), np.dtype(np.float32), 0.5, None)
                      .reshape(2, -1))
    assert same_bytes(np.ma.getmaskarray(result), np.moveaxis(mask, 1, -1).reshape(2, -1))
    assert result.fill_value == a.astype(np.float32).fill_value
    flat = flatten(a, dtype=np.int16, offset=-3)
    assert flat.dtype == np.int16 and flat.mask.tolist() == mask.reshape(-1).tolist()
    assert same_bytes(np.ma.getdata(flat), data.reshape(-1).astype(np.int16) - np.int16(3))


def test_dtype_equal_to_the_input_s_is_no_conversion():
    x = np.ones((4, 3, 2), np.float32)
    assert np.shares_memory(batch_flatten(x, dtype=np.float32), x)
    assert np.shares_memory(batch_flatten(x, dtype="float32", casting="no"), x)
    assert flatten(x, 0, 0, dtype=np.float32) is x
    assert ascontiguousarray(x, np.float32, casting="no") is x
    assert np.shares_memory(Flatten(dtype="float32")(x), x)
    # ... but factors always convert, into a new array
    result = batch_flatten(x, scale=2)
    assert not np.shares_memory(result, x) and result.dtype == np.float32
    assert same_bytes(result, x.reshape(4, -1) * np.float32(2))


def test_absent_factors_are_skipped_not_applied_as_identity():
    x = np.array([[-0.0, 1.0]], np.float64)
    assert np.signbit(batch_flatten(x, dtype=np.float32, scale=1.0)[0, 0])  # -0.0 * 1 = -0.0
    assert np.signbit(batch_flatten(x, dtype=np.float32)[0, 0])
    assert not np.signbit(batch_flatten(x, dtype=np.float32, offset=0.0)[0, 0])  # + 0.0 = +0.0


def test_empty_inputs():
    a = np.zeros((0, 3, 4), np.uint8)
    result = batch_flatten(a, data_format="channels_first", dtype=np.float32,
                           scale=[1.0, 2.0, 3.0])
    assert result.shape == (0, 12) and result.dtype == np.float32
    b = np.zeros((2, 0), np.int16)
    assert batch_flatten(b, dtype=np.float64, scale=[]).shape == (2, 0)


# --- the layer: Keras' meaning of dtype ------------------------------------------------

KERAS_POLICY = {"module": "keras", "class_name": "DTypePolicy",
                "config": {"name": "mixed_float16"}, "registered_name": None}


@pytest.mark.parametrize("dtype, compute", [
    ("float32", np.float32), (np.float16, np.float16), ("mixed_float16", np.float16),
    (KERAS_POLICY, np.float16), ("int8", np.int8),
])
def test_flatten_layer_casts_floating_inputs_only(dtype, compute):
    rng = np.random.default_rng(5)
    layer = Flatten("channels_first", dtype=dtype)
    floats = (rng.standard_normal((2, 3, 4, 4)) * 50).astype(np.float64)
    result = layer(floats)
    assert same_bytes(result, np.moveaxis(floats, 1, -1).reshape(2, -1).astype(compute))
    assert same_bytes(layer(floats[:, :, ::-1]),
                      np.moveaxis(floats[:, :, ::-1], 1, -1).reshape(2, -1).astype(compute))
    for other in (np.arange(24, dtype=np.int32).reshape(2, 3, 4),
                  np.ones((2, 3, 2), np.complex64), np.ones((2, 3, 2), bool)):
        unchanged = layer(other)
        assert same_bytes(unchanged, np.moveaxis(other, 1, -1).reshape(2, -1))
    assert layer([[1.5, 2.5]]).dtype == compute  # a list: numpy's float64, cast
    assert layer([[1, 2]]).dtype == np.array([[1, 2]]).dtype  # ints pass unchanged
    channels_last = Flatten("channels_last", dtype=dtype)
    contiguous = floats.astype(np.float32)
    assert same_bytes(channels_last(contiguous), contiguous.reshape(2, -1).astype(compute))


def test_flatten_layer_dtype_round_trips_through_config_and_params():
    layer = Flatten("channels_first", dtype=KERAS_POLICY)
    config = layer.get_config()
    assert config["dtype"] == KERAS_POLICY
    clone = Flatten.from_config(config)
    assert clone == layer and clone.dtype == KERAS_POLICY
    x = np.ones((2, 3, 2), np.float64)
    assert clone(x).dtype == np.float16
    assert layer.get_params()["dtype"] == KERAS_POLICY
    layer.set_params(dtype="float64")
    assert layer(x.astype(np.float32)).dtype == np.float64
    layer.set_params(dtype=None)
    assert layer(x.astype(np.float32)).dtype == np.float32
    layer.dtype = "float16"  # plain assignment acts too (the C entry reads it)
    assert layer(x).dtype == np.float16
    with pytest.raises(TypeError, match="dtype"):
        Flatten(dtype="no such type")
    with pytest.raises(TypeError, match="dtype"):
        layer.set_params(dtype={"config": {}})
    assert layer.dtype == "float16"  # unchanged by the refused set_params


def test_flatten_layer_masked_input_keeps_its_mask():
    a = np.ma.array(np.ones((2, 3), np.float64), mask=[[1, 0, 0], [0, 0, 1]])
    result = Flatten(dtype="float32")(a)
    assert isinstance(result, np.ma.MaskedArray) and result.dtype == np.float32
    assert result.mask.tolist() == a.mask.tolist()


# --- casting ------------------------------------------------------------------------

@pytest.mark.parametrize("src, dst, casting", [
    (np.float64, np.int32, "same_kind"), (np.float64, np.float32, "safe"),
    (np.int64, np.uint8, "same_kind"), (np.float32, np.float64, "no"),
    (np.float32, np.float64, "equiv"), (np.complex64, np.float32, "same_kind"),
    (np.int16, np.bool_, "same_kind"),
])
def test_casting_refuses_what_np_can_cast_refuses(src, dst, casting):
    assert not np.can_cast(src, dst, casting)
    a = np.ones((2, 3), src)
    out = np.full((2, 3), 9, dst)
    before = out.tobytes()
    for call in (lambda: batch_flatten(a, dtype=dst, casting=casting),
                 lambda: batch_flatten(a, dtype=dst, casting=casting, out=out),
                 lambda: flatten(a, dtype=dst, casting=casting),
                 lambda: ascontiguousarray(a, dst, casting=casting)):
        with pytest.raises(TypeError, match="dtype.*casting"):
            call()
    assert out.tobytes() == before
    assert batch_flatten(a, dtype=dst, casting="unsafe").dtype == dst


def test_casting_allows_what_np_can_cast_allows():
    a = np.ones((2, 3), np.uint8)
    for casting in ("safe", "same_kind", "unsafe"):
        assert batch_flatten(a, dtype=np.float16, casting=casting).dtype == np.float16
    assert batch_flatten(a.astype(np.float64), dtype=np.float16).dtype == np.float16  # same_kind


# --- errors: each names its parameter, and leaves out= as it was ---------------------------

X = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)  # 4 channels, channels_last


@pytest.mark.parametrize("kwargs, exc, words", [
    (dict(casting="unsafe_ish", dtype=np.float32), ValueError, "casting"),
    (dict(casting=None, dtype=np.float32), ValueError, "casting"),
    (dict(casting="same_kind", dtype="no such type"), TypeError, "dtype"),
    (dict(dtype=np.float32, scale=[1.0, 2.0]), ValueError, "scale.*4"),
    (dict(dtype=np.float32, offset=[1.0, 2.0, 3.0, 4.0, 5.0]), ValueError, "offset"),
    (dict(dtype=np.float32, scale=[[1.0, 2.0, 3.0, 4.0]]), ValueError, "scale.*shape"),
    (dict(dtype=np.float32, scale=np.ones((2, 2))), ValueError, "scale"),
    (dict(dtype=np.int16, scale=0.5), ValueError, "scale.*integer"),
    (dict(dtype=np.int16, offset=[0, 1, 2.5, 3]), ValueError, "offset.*integer"),
    (dict(dtype=np.uint8, offset=-1), ValueError, "offset.*range"),
    (dict(dtype=np.int8, scale=128), ValueError, "scale.*range"),
    (dict(dtype=np.uint64, scale=2**64), ValueError, "scale.*range"),
    (dict(scale=0.5), ValueError, "scale.*integer"),  # dtype=None: the input's, uint8
    (dict(dtype=np.float32, scale=np.nan), ValueError, "scale.*NaN"),
    (dict(dtype=np.float32, offset=[0.0, np.nan, 0.0, 0.0]), ValueError, "offset.*NaN"),
    (dict(dtype=np.int32, scale=np.inf), ValueError, "scale.*infinite"),
    (dict(dtype=np.int32, offset=-np.inf), ValueError, "offset.*infinite"),
    (dict(dtype=np.float32, scale="2"), TypeError, "scale"),
    (dict(dtype=np.float32, scale=[1.0, None, 1.0, 1.0]), TypeError, "scale"),
    (dict(dtype=np.float32, offset=object()), TypeError, "offset"),
    (dict(dtype=np.float32, scale=1j), TypeError, "scale.*complex"),
    (dict(dtype=np.float32, copy=False), ValueError, "copy"),
    (dict(dtype="U5", scale=2), TypeError, "scale.*numeric"),
    (dict(dtype=np.float64, out=np.zeros((2, 12), np.float32)), TypeError, "out.*float64"),
    (dict(dtype=np.float32, num_threads=0), ValueError, "num_threads"),
])
def test_bad_conversion_arguments_raise_named_errors(kwargs, exc, words):
    kwargs = dict(kwargs)  # (the parameter is shared by both converters' runs)
    with pytest.raises(exc, match=words):
        batch_flatten(X, **kwargs)
    # out= of the result's shape (and dtype, where it has one) is left untouched
    try:
        dtype = np.dtype(kwargs.get("dtype") or X.dtype)
    except TypeError:
        dtype = np.dtype(np.float32)
    bad_out = "out" in kwargs
    out = kwargs.pop("out", np.full((2, 12), 3, dtype))
    before = out.tobytes()
    if "copy" not in kwargs:
        with pytest.raises(exc, match=words):
            batch_flatten(X, out=out, **kwargs)
        with pytest.raises(exc, match=words):
            flatten(X, 1, out=out, **kwargs)
    if "copy" not in kwargs and not bad_out:
        with pytest.raises(exc, match=words):
            ascontiguousarray(X, **{"casting": "same_kind", **kwargs})
    assert out.tobytes() == before
    if not bad_out:
        with pytest.raises(exc, match=words):
            flatten(X, 1, **kwargs)


def test_factors_of_other_number_types_are_checked_alike():
    from decimal import Decimal
    from fractions import Fraction
    ones = np.ones((2, 2), np.float32)
    assert batch_flatten(ones, scale=Fraction(1, 3))[0, 0] == np.float32(1 / 3)
    assert batch_flatten(ones, scale=Decimal("0.5"))[0, 0] == np.float32(0.5)
    with pytest.raises(ValueError, match="scale.*NaN"):
        batch_flatten(ones, scale=Decimal("NaN"))
    with pytest.raises(ValueError, match="scale.*infinite"):
        batch_flatten(ones, dtype=np.int8, casting="unsafe", scale=Decimal("Infinity"))
    with pytest.raises(ValueError, match="scale.*range"):
        batch_flatten(ones, dtype=np.int8, casting="unsafe", scale=Fraction(10**400))
    assert batch_flatten(ones, dtype=np.int8, casting="unsafe", offset=np.int64(-5))[0, 0] == -4


def test_factor_values_are_checked_against_the_result_dtype_exactly():
    a = np.zeros((2, 1), np.float64)
    assert batch_flatten(a, dtype=np.int64, casting="unsafe", offset=2**63 - 1)[0, 0] == 2**63 - 1
    with pytest.raises(ValueError, match="offset"):
        batch_flatten(a, dtype=np.int64, casting="unsafe", offset=2**63)
    assert batch_flatten(a, dtype=np.uint64, casting="unsafe", offset=2**64 - 1)[0, 0] == 2**64 - 1
    assert batch_flatten(a, dtype=np.int8, casting="unsafe", scale=np.float64(-128.0))[0, 0] == 0
    # a huge factor for a float result becomes inf, as np.asarray(1e300, np.float32) does
    assert np.isposinf(batch_flatten(np.ones((1, 1)), dtype=np.float32, scale=1e300)[0, 0])
    assert batch_flatten(np.ones((1, 1)), dtype=np.float32, scale=np.inf)[0, 0] == np.inf


# --- the output is the only full-size allocation ----------------------------------------

def test_the_fused_path_allocates_only_the_output():
    x = (np.arange(32 * 3 * 64 * 64) % 251).astype(np.uint8).reshape(32, 3, 64, 64)
    for kwargs in (dict(scale=1 / 255), dict(scale=[1.0, 2.0, 3.0], offset=[0.5, 0.0, -0.5]),
                   dict()):
        batch_flatten(x[:2], data_format="channels_first", dtype=np.float32, **kwargs)  # warm
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            result = batch_flatten(x, data_format="channels_first", dtype=np.float32,
                                   **kwargs)
            peak = tracemalloc.get_traced_memory()[1] - before
        finally:
            tracemalloc.stop()
        assert result.nbytes <= peak <= result.nbytes + 64 * 1024, kwargs


# --- explain -------------------------------------------------------------------------

def test_explain_shows_the_conversion_step():
    x = np.zeros((8, 3, 32, 32), np.uint8)
    plan = pyflat.explain(x, data_format="channels_first", dtype=np.float32, scale=1 / 255)
    assert plan.path == "kernel" and plan.conversion
    assert plan.conversion == _kernel.convert_text(np.dtype(np.uint8), np.dtype(np.float32),
                                                   True, False, plan.num_threads)
    assert plan.conversion in str(plan)
    numpy_plan = pyflat.explain(x.astype(np.complex64), dtype=np.float32, casting="unsafe")
    assert numpy_plan.path == "numpy" and "numpy converts" in str(numpy_plan)
    assert pyflat.explain(x).conversion == ""
    contiguous = pyflat.explain(np.zeros((8, 4), np.float32), dtype=np.float64)
    assert not contiguous.zero_copy and contiguous.path == (
        "numpy" if convert_module.NUMPY_ANY_BYTES else "kernel")
    assert pyflat.explain(np.zeros((8, 4), np.float32), dtype=np.float32).zero_copy
    with pytest.raises(TypeError, match="casting"):
        pyflat.explain(x.astype(np.float32), dtype=np.int8)


def test_resolve_returns_none_without_a_conversion():
    assert convert_module.resolve(np.dtype("f4"), None, "same_kind", None, None, 3) is None
    assert convert_module.resolve(np.dtype("f4"), "f4", "no", None, None, 3) is None
    conversion = convert_module.resolve(np.dtype("u1"), "f4", "same_kind", 0.5, [1, 2, 3], 3)
    assert conversion.fused and conversion.scale.dtype == np.float32
    assert conversion.scale.shape == (1,) and conversion.offset.tolist() == [1.0, 2.0, 3.0]


def test_flatten_layer_attributes_assigned_later_act_on_the_c_entry_too():
    import copy
    import pickle
    x = np.arange(2 * 3 * 4, dtype=np.float64).reshape(2, 3, 4)
    layer = Flatten()
    assert np.shares_memory(layer(x), x)
    layer.data_format = "channels_first"
    assert same_bytes(layer(x), np.moveaxis(x, 1, -1).reshape(2, -1))
    layer.dtype = "float32"
    assert same_bytes(layer(x), np.moveaxis(x, 1, -1).reshape(2, -1).astype(np.float32))
    for clone in (copy.copy(layer), copy.deepcopy(layer), pickle.loads(pickle.dumps(layer))):
        assert same_bytes(clone(x), layer(x))
    layer.dtype = None
    layer.data_format = "channels_last"
    assert np.shares_memory(layer(x), x)


def test_remembered_conversions_tell_apart_what_converts_apart():
    x = np.zeros((2, 3), np.float32)
    assert not np.signbit(batch_flatten(x, scale=0.0)).any()
    assert np.signbit(batch_flatten(x, scale=-0.0)).all()   # not the 0.0 remembered above
    assert np.signbit(batch_flatten(x, scale=[-0.0, -0.0, -0.0])).all()
    assert not np.signbit(batch_flatten(x, scale=np.array([0.0, 0.0, 0.0]))).any()
    assert np.signbit(batch_flatten(x, scale=np.array([-0.0, -0.0, -0.0]))).all()
    factors_ = [1.0, 2.0, 3.0]
    ones = np.ones((2, 3), np.float32)
    assert batch_flatten(ones, scale=factors_)[0].tolist() == [1.0, 2.0, 3.0]
    factors_[0] = 5.0  # the same list, changed: read again
    assert batch_flatten(ones, scale=factors_)[0].tolist() == [5.0, 2.0, 3.0]
    third = np.float32(1 / 3)
    assert batch_flatten(ones, scale=1 / 3)[0, 0] == third
    assert batch_flatten(ones, scale=np.array([1 / 3], np.float64))[0, 0] == third
    conversion = convert_module.resolve(np.dtype("u1"), "f4", "same_kind", [1.0, 2.0], 0.5, 2)
    assert not conversion.scale.flags.writeable and not conversion.offset.flags.writeable
    for _ in range(2):  # errors are not remembered
        with pytest.raises(ValueError, match="scale"):
            batch_flatten(ones, scale=[1.0, 2.0])


def test_flatten_layer_reads_keras_policy_objects_and_refuses_unknown_names():
    import sys
    import types
    policy = types.SimpleNamespace(name="mixed_float16", compute_dtype="float16",
                                   variable_dtype="float32")  # what keras.DTypePolicy has
    layer = Flatten(dtype=policy)
    assert layer(np.ones((2, 3), np.float64)).dtype == np.float16
    assert layer.get_config()["dtype"] is policy  # kept as given
    for bad in ("mixed_float99", {"class_name": "DTypePolicy"}, 3.5):
        with pytest.raises(TypeError, match="dtype"):
            Flatten(dtype=bad)
    if "ml_dtypes" not in sys.modules:
        with pytest.raises(TypeError, match="dtype"):
            Flatten(dtype="mixed_bfloat16")  # needs ml_dtypes (Keras imports it)


# --- which converter: the measured rule (convert.numpy_is_faster) -------------------

def _rule_cases():
    """(name, input, data_format, dtype, scale, path under the measured rule)."""
    rng = np.random.default_rng(7)
    images = rng.integers(0, 256, (8, 3, 64, 64), dtype=np.uint8)
    table = np.asfortranarray(rng.standard_normal((1000, 20)))
    return [
        ("tiny contiguous", rng.standard_normal((16, 10)).astype(np.float32), "channels_last",
         np.float64, None, "numpy"),
        ("tiny channels_first /255", images[:1, :, :8, :8], "channels_first", np.float32,
         1 / 255, "numpy"),
        ("channels_first images /255", images, "channels_first", np.float32, 1 / 255,
         "kernel"),
        ("Fortran table to float32", table, "channels_last", np.float32, None, "kernel"),
        ("Fortran table float32 to float64", table.astype(np.float32), "channels_last",
         np.float64, None, "numpy"),
        ("contiguous rows /255, 128 KiB", images[:, 0], "channels_last", np.float32, 1 / 255,
         "numpy"),
        ("contiguous /255, 288 KiB", images[:6], "channels_last", np.float32, 1 / 255,
         "kernel"),
        ("long strided rows float to float", table.T[:, ::2].copy()[:, 10:400],
         "channels_last", np.float32, None, "numpy"),
    ]


@pytest.mark.parametrize("case", _rule_cases(), ids=lambda case: case[0])
def test_each_conversion_takes_the_path_explain_names(case, converter, monkeypatch):
    name, x, data_format, dtype, scale, measured = case
    expected = measured if converter == "measured rule" else "kernel"
    calls = []
    real = _kernel.convert_into
    monkeypatch.setattr(_kernel, "convert_into",
                        lambda *args: calls.append(1) or real(*args))
    plan = pyflat.explain(x, data_format=data_format, dtype=dtype, scale=scale)
    assert plan.path == expected, (name, plan.note)
    assert ("numpy converts" in plan.conversion) == (expected == "numpy")
    view = np.moveaxis(x, 1, -1) if data_format == "channels_first" else x
    reference = np.ascontiguousarray(view).reshape(len(x), -1).astype(dtype)
    if scale is not None:
        reference = reference * np.asarray(scale, dtype)
    for result in (batch_flatten(x, data_format=data_format, dtype=dtype, scale=scale),
                   batch_flatten(x, data_format=data_format, dtype=dtype, scale=scale,
                                 out=np.empty(reference.shape, dtype))):
        assert same_bytes(result, reference), name
    assert len(calls) == (2 if expected == "kernel" else 0), name


@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int32, np.uint32, np.int64])
def test_strided_float_to_int_on_numpy_path_is_the_contiguous_reference(dtype):
    # numpy's strided casts of NaN, infinities and out-of-range floats to
    # integers may differ from its contiguous ones: the reference's is kept.
    rng = np.random.default_rng(3)
    x = values(rng, (6, 8, 5), np.dtype(np.float64))
    for view in (x[:, ::2], x.transpose(0, 2, 1), x[::-1, :, 1:]):
        reference = np.ascontiguousarray(view).reshape(len(view), -1).astype(dtype)
        result = batch_flatten(view, dtype=dtype, casting="unsafe")
        assert same_bytes(result, reference)
        assert same_bytes(ascontiguousarray(view, dtype), np.ascontiguousarray(view).astype(dtype))
