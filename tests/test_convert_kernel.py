"""The converting copy kernel (issue 14), called directly through
pyflat._kernel.convert_into: raw bytes against numpy's expression
``view.astype(dt) [* scale] [+ offset]`` for every supported (source,
destination) pair, factor kind, layout, SIMD level and thread count, and
special values (NaN payloads, infinities, -0.0, subnormals, overflow,
float16 rounding ties)."""

from __future__ import annotations

import contextlib
import math
import platform
import itertools
from typing import Iterator, Optional

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyflat import _kernel
from pyflat._pyflat import lib

SOURCES = [np.dtype(t) for t in ("bool", "int8", "uint8", "int16", "uint16", "int32", "uint32",
                                 "int64", "uint64", "float16", "float32", "float64")]
DESTINATIONS = SOURCES[1:]
INTEGERS = [t for t in DESTINATIONS if t.kind in "iu"]
LEVELS = [lib.PF_SIMD_NONE, lib.PF_SIMD_SSE2, lib.PF_SIMD_AVX2, lib.PF_SIMD_AVX512]
# The pairs with vector loops, tested at every level.
HOT = [(s, d) for s in ("uint8", "int8", "uint16", "int16", "int32", "float64", "float32",
                        "float16")
       for d in ("float32", "float64") if not (s in ("float64", "float16") and d == "float64")]
HOT += [("float32", "float16")]


@contextlib.contextmanager
def simd(level: int, tiny_thread_share: bool = False) -> Iterator[None]:
    old = lib.pf_force_simd(level)
    old_bytes = lib.pf_force_min_bytes_per_thread(1 if tiny_thread_share else -1)
    try:
        yield
    finally:
        lib.pf_force_simd(old)
        lib.pf_force_min_bytes_per_thread(old_bytes)


def reference(view: np.ndarray, dt: np.dtype, scale: Optional[np.ndarray],
              offset: Optional[np.ndarray]) -> np.ndarray:
    """numpy's expression, computed in the result dtype (C order)."""
    with np.errstate(all="ignore"):
        r = np.ascontiguousarray(view).astype(dt)
        if scale is not None:
            r = r * (scale if len(scale) > 1 else scale[0])
        if offset is not None:
            r = r + (offset if len(offset) > 1 else offset[0])
    return r.reshape(-1)


def converted(view: np.ndarray, dt: np.dtype, scale: Optional[np.ndarray] = None,
              offset: Optional[np.ndarray] = None, num_threads: int = 1) -> Optional[np.ndarray]:
    out = np.empty(view.size, dt)
    return out if _kernel.convert_into(view, out, scale, offset, num_threads) else None


def assert_same(view: np.ndarray, dt: np.dtype, scale: Optional[np.ndarray] = None,
                offset: Optional[np.ndarray] = None, num_threads: int = 1) -> None:
    got = converted(view, dt, scale, offset, num_threads)
    assert got is not None, f"{view.dtype} -> {dt}: refused in-range values"
    want = reference(view, dt, scale, offset)
    if got.tobytes() != want.tobytes():
        bad = np.flatnonzero(got.view(np.uint8).reshape(len(got), -1)
                             != want.view(np.uint8).reshape(len(want), -1))[:5] // dt.itemsize
        raise AssertionError(
            f"{view.dtype} -> {dt}, layout {view.shape} {view.strides}, threads {num_threads}: "
            f"at {bad}: source {np.ascontiguousarray(view).reshape(-1)[bad]!r}, "
            f"got {got[bad]!r}, numpy {want[bad]!r}")


# ---- values ----

def special_floats(dt: np.dtype) -> np.ndarray:
    """NaNs (quiet, signalling, with payloads, negative), infinities, zeros,
    subnormals, the extremes, float16 ties and overflow points."""
    info = np.finfo(dt)
    bits = {2: np.uint16, 4: np.uint32, 8: np.uint64}[dt.itemsize]
    nans = {2: [0x7C01, 0x7D00, 0x7E00, 0xFE01, 0x7FFF],
            4: [0x7F800001, 0x7FA00000, 0x7FC00000, 0xFFC00001, 0x7F802000, 0x7FFFFFFF],
            8: [0x7FF0000000000001, 0x7FF4000000000000, 0x7FF8000000000000,
                0xFFF8000000000001, 0x7FF0040000000000]}[dt.itemsize]
    plain = [0.0, -0.0, np.inf, -np.inf, info.tiny, -info.tiny, info.smallest_subnormal,
             info.max, -info.max, 1.0, -1.0, 0.5, 1 / 3, 255.0, 65504.0, 65519.99, 65520.0,
             2.0**-24, 2.0**-25, 1.5 * 2.0**-25, 2.0**-14, 2049.0, 2051.0, 1 + 2.0**-11,
             1 + 3 * 2.0**-11, 6e-8, 3e-8]
    with np.errstate(all="ignore"):
        values = np.array(plain, np.float64).astype(dt)
    return np.concatenate([values, np.array(nans, bits).view(dt)])


def random_values(rng: np.random.Generator, dt: np.dtype, n: int,
                  fit: Optional[np.dtype] = None) -> np.ndarray:
    """n values of dt: random bytes, mixed with special values for floats.
    fit: an integer destination that every value must truncate into."""
    raw = rng.integers(0, 256, n * dt.itemsize, dtype=np.uint8)
    if dt == np.bool_:
        return (raw & 1).view(dt)
    values = raw.view(dt).copy()
    if dt.kind == "f":
        specials = special_floats(dt)
        where = rng.random(n) < 0.2
        values[where] = rng.choice(specials, int(where.sum()))
        if fit is not None:
            info = np.iinfo(fit)
            span = min(float(info.max), float(np.finfo(dt).max))
            fitted = rng.uniform(max(float(info.min), -span), span, n) * rng.choice(
                [1.0, 1e-3, 1e-9], n)
            with np.errstate(all="ignore"):
                values = fitted.astype(dt)
                wide = values.astype(np.float64)
                ok = (wide > float(info.min) - 1) & (wide < float(info.max) + 1)
            if fit.itemsize == 8:  # float(max) + 1 rounds to 2**63 / 2**64
                ok &= wide < float(info.max)
            values[~ok] = 0
    return values


def factor(rng: np.random.Generator, dt: np.dtype, n: int) -> np.ndarray:
    if dt.kind in "iu":
        info = np.iinfo(dt)
        return rng.integers(info.min, info.max, n, dtype=dt, endpoint=True)
    choices = np.array([1 / 255, -0.5, 3.0, 1e-3, 2.0**-20, 7.25, -1e30, 1e30, 0.0, -0.0],
                       np.float64)
    with np.errstate(all="ignore"):
        f = rng.choice(choices, n).astype(dt)
    return np.where(np.isfinite(f), f, dt.type(2.5)).astype(dt)


# ---- layouts ----

def layouts(rng: np.random.Generator, dt: np.dtype, fit: Optional[np.dtype]) -> list[np.ndarray]:
    """Views of random values: contiguous (long and short rows), transposed,
    sliced, reversed, channels_first, broadcast, 0-d, empty, and ones large
    enough for several chunks and a ragged one."""
    def base(*shape: int) -> np.ndarray:
        return random_values(rng, dt, int(np.prod(shape)), fit).reshape(shape)
    big_rows = max(2, 50_000 // (dt.itemsize * 3 * 64))
    return [
        base(1000),                                         # contiguous: direct
        base(7, 300)[:, ::-1],                              # reversed rows
        base(40, 30)[1:-1, 3:-5],                           # short contiguous rows
        base(37, 41).T,                                     # transpose
        np.moveaxis(base(5, 3, 7, 9), 1, -1),               # channels_first
        np.moveaxis(base(big_rows, 3, 8, 8), 1, -1),        # ... several chunks
        base(23, 2, 600)[:, :, ::3].transpose(0, 2, 1),     # audio, strided
        base(300, 17).T[::2],                               # Fortran table, sliced
        base(9000)[::-2],                                   # long reversed: pieces
        base(4, 4000).T,                                    # rows longer than the scratch
        np.broadcast_to(base(1, 6), (5, 6)),                # broadcast
        base(),                                             # 0-d
        base(0, 3),                                         # empty
    ]


def factors_for(rng: np.random.Generator, dt: np.dtype, view: np.ndarray,
                kind: str) -> tuple[Optional[np.ndarray], Optional[np.ndarray]]:
    channels = view.shape[-1] if view.ndim else 1
    if kind == "none":
        return None, None
    if kind == "scalar":
        return factor(rng, dt, 1), factor(rng, dt, 1)
    if kind == "scale":
        return factor(rng, dt, channels), None
    if kind == "offset":
        return None, factor(rng, dt, channels)
    if kind == "mixed":
        return factor(rng, dt, 1), factor(rng, dt, channels)
    return factor(rng, dt, channels), factor(rng, dt, channels)


# ---- tests ----

@pytest.mark.parametrize("src", SOURCES, ids=str)
def test_every_pair_every_layout(src: np.dtype) -> None:
    """Every destination x factor kind x layout, byte-exact."""
    rng = np.random.default_rng(src.num)
    for dt in DESTINATIONS:
        fit = dt if dt.kind in "iu" and src.kind == "f" else None
        for view, kind in itertools.product(layouts(rng, src, fit),
                                            ["none", "scalar", "scale", "offset", "mixed",
                                             "channels"]):
            scale, offset = factors_for(rng, dt, view, kind)
            assert_same(view, dt, scale, offset)


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("threads", [1, 2])
def test_vector_loops_every_level(level: int, threads: int) -> None:
    """The pairs with vector loops: each SIMD level and thread count,
    specials included, chunk phases of every channel count."""
    rng = np.random.default_rng(level * 10 + threads)
    with simd(level, tiny_thread_share=True):
        for s, d in HOT:
            src, dt = np.dtype(s), np.dtype(d)
            for view in layouts(rng, src, None)[:10]:
                for kind in ["none", "scalar", "channels", "mixed"]:
                    scale, offset = factors_for(rng, dt, view, kind)
                    assert_same(view, dt, scale, offset, threads)
            for channels in (1, 2, 3, 5, 7, 8, 9, 16, 17, 33):
                view = random_values(rng, src, 40 * channels + 3)[3:].reshape(40, channels)
                assert_same(view, dt, factor(rng, dt, channels), factor(rng, dt, channels),
                            threads)


@pytest.mark.parametrize("level", LEVELS)
def test_float16_exhaustive(level: int) -> None:
    """Every float16 to every float; every int16 / uint16 to float16; float32
    and float64 to float16 over random bits, ties and subnormals."""
    rng = np.random.default_rng(16)
    halves = np.arange(1 << 16, dtype=np.uint16).view(np.float16)
    with simd(level):
        for dt in ("float16", "float32", "float64"):
            assert_same(halves, np.dtype(dt))
            assert_same(halves.reshape(256, 256).T, np.dtype(dt), factor(rng, np.dtype(dt), 256))
        for s in ("int16", "uint16", "int32", "int64", "uint64"):
            ints = np.arange(1 << 16, dtype=np.uint16).view(s[:-2] + "16").astype(s)
            assert_same(ints, np.dtype(np.float16))
        assert_same(np.array([65520, 65519, -65520, 2**62, -(2**63)], np.int64), np.dtype("f2"))
        # float32: random bits, exact ties between float16 neighbours and
        # numbers a hair off them, at every float16 exponent.
        f32 = rng.integers(0, 2**32, 200_000, dtype=np.uint64).astype(np.uint32).view(np.float32)
        h = halves[np.isfinite(halves)].astype(np.float32)
        up = np.nextafter(h[:-1], np.float32(np.inf))
        ties = ((h.astype(np.float64) + np.roll(h, -1).astype(np.float64)) / 2)[:-1]
        for values in (f32, ties.astype(np.float32), up, np.nextafter(up, np.float32(0))):
            assert_same(values, np.dtype(np.float16))
            rows = values[:len(values) // 7 * 7].reshape(-1, 7)
            assert_same(rows, np.dtype(np.float16), factor(rng, np.dtype("f2"), 7),
                        factor(rng, np.dtype("f2"), 7))
        f64 = rng.integers(0, 2**64, 100_000, dtype=np.uint64).view(np.float64)
        ties64 = np.concatenate([ties, ties + 2.0**-40 * np.abs(ties), ties - 1e-300])
        for values in (f64, ties64, np.nan_to_num(f64) % 1e5):
            assert_same(values, np.dtype(np.float16))
            assert_same(values, np.dtype(np.float32))


def test_factor_arithmetic_float16() -> None:
    """float16 products and sums round as numpy's half ufuncs (float32
    arithmetic, rounded each step), scale and offset per channel."""
    rng = np.random.default_rng(3)
    halves = np.arange(1 << 16, dtype=np.uint16).view(np.float16).reshape(-1, 8)
    for level in (lib.PF_SIMD_NONE, lib.PF_SIMD_AVX2):
        with simd(level):
            for src in ("float16", "float32", "float64", "uint8"):
                view = halves.astype(src) if src != "uint8" else halves.view(np.uint8)
                assert_same(view, np.dtype("f2"), factor(rng, np.dtype("f2"), view.shape[-1]),
                            factor(rng, np.dtype("f2"), view.shape[-1]))


@pytest.mark.parametrize("src", ["float16", "float32", "float64"])
def test_float_to_integer_out_of_range_declines(src: str) -> None:
    """NaN, infinities and values that truncate outside the destination:
    convert_into returns False; the edges that do fit convert."""
    for dt in INTEGERS:
        info = np.iinfo(dt)
        inside = [0.0, -0.0, 0.99, -0.99]
        if dt.itemsize < 8:
            inside += [float(info.max) + 0.5, float(info.min) - 0.5, float(info.max),
                       float(info.min)]
        else:
            inside += [float(info.min)] if info.min else []
        outside = [np.nan, np.inf, -np.inf, float(info.max) + 1.0, float(info.min) - 1.0,
                   1e300]
        with np.errstate(all="ignore"):
            fits = np.array(inside, np.float64).astype(src)
            wide = fits.astype(np.float64)
            fits = fits[(wide > float(info.min) - 1) & (wide < float(info.max) + 1)
                        & (wide < 2.0**63 if dt.itemsize == 8 else True)]
        assert_same(np.tile(fits, 40), dt)
        for bad in outside:
            with np.errstate(all="ignore"):
                value = np.array(bad, np.float64).astype(src)
            if np.isfinite(value) and info.min <= math.trunc(float(value)) <= info.max:
                continue  # rounded back into range in a narrow float
            for threads in (1, 2):
                view = np.zeros((3, 5000), src)
                view[2, 4321] = value
                with simd(lib.PF_SIMD_AUTO, tiny_thread_share=True):
                    assert converted(view.T, dt, num_threads=threads) is None, (src, dt, bad)


def test_integer_results_wrap() -> None:
    """Integer narrowing and integer factors wrap modulo 2**bits."""
    rng = np.random.default_rng(9)
    for s, d in itertools.product(INTEGERS + [np.dtype(bool)], INTEGERS):
        view = random_values(rng, s, 3 * 64).reshape(64, 3)[::-1]
        info = np.iinfo(d)
        big = np.array([info.max, info.min, -1 if info.min else info.max // 2], d)
        assert_same(view, d, big, big[::-1].copy())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(src=st.sampled_from(SOURCES), dst=st.sampled_from(DESTINATIONS),
       shape=st.lists(st.integers(1, 9), min_size=1, max_size=4), data=st.data(),
       seed=st.integers(0, 2**32 - 1))
def test_random_layouts(src: np.dtype, dst: np.dtype, shape: list[int], data: st.DataObject,
                        seed: int) -> None:
    """Random permutations, steps and reversals of random shapes."""
    rng = np.random.default_rng(seed)
    fit = dst if dst.kind in "iu" and src.kind == "f" else None
    steps = data.draw(st.lists(st.sampled_from([1, 1, 2, -1, -3]), min_size=len(shape),
                               max_size=len(shape)))
    grown = [3 * n for n in shape] + [2]  # room for the steps, items 2 apart
    view = random_values(rng, src, int(np.prod(grown)), fit).reshape(grown)[..., 0]
    view = view[tuple(slice(None, None, s) for s in steps)]
    view = view.transpose(data.draw(st.permutations(range(len(shape)))))
    kind = data.draw(st.sampled_from(["none", "scalar", "channels", "mixed"]))
    scale, offset = factors_for(rng, dst, view, kind)
    assert_same(view, dst, scale, offset, data.draw(st.sampled_from([1, 2])))


def test_supported_set() -> None:
    for s, d in itertools.product(SOURCES, SOURCES):
        assert _kernel.convert_supported(s, d) == (d != np.bool_)
    for odd in ("complex64", ">f4", ">i2", "longdouble", "S3", "datetime64[s]"):
        assert not _kernel.convert_supported(np.dtype(odd), np.dtype(np.float32))
        assert not _kernel.convert_supported(np.dtype(np.float32), np.dtype(odd))
    assert _kernel.convert_supported(np.dtype(">u1"), np.dtype("<f4"))  # one byte: no order


def test_convert_text_names_the_step_and_loop() -> None:
    with simd(lib.PF_SIMD_NONE):
        assert _kernel.convert_text(np.dtype("u1"), np.dtype("f4"), True, True) == \
            "uint8 -> float32, x*scale+offset (portable loop)"
    with simd(lib.PF_SIMD_AVX2):
        text = _kernel.convert_text(np.dtype("f4"), np.dtype("f2"), False, False)
    assert text == f"float32 -> float16 ({'avx2+f16c' if cpu_has('avx2', 'f16c') else 'portable'} loop)"


def cpu_has(*flags: str) -> bool:
    if platform.machine() not in ("x86_64", "AMD64"):
        return False
    with open("/proc/cpuinfo", encoding="ascii") as info:
        line = next(line for line in info if line.startswith("flags"))
    return set(flags) <= set(line.split())


@pytest.mark.parametrize("level", [lib.PF_SIMD_NONE, lib.PF_SIMD_AVX2, lib.PF_SIMD_AVX512])
@pytest.mark.parametrize("streaming", [0, 1])
def test_planes_streaming_and_misaligned_out(level: int, streaming: int) -> None:
    """Channels-first pixels of 1 to 33 planes (the interleaving loops take
    2 to 4, the transposing ones 8 and more), ragged lengths, per-channel factors, into out= buffers that
    are 64-, 32- and 4-byte aligned and not aligned at all, with
    non-temporal stores forced on and off."""
    rng = np.random.default_rng(level + 2 * streaming)
    old = lib.pf_force_streaming(streaming)
    try:
        with simd(level):
            for src, dt in itertools.product(SOURCES, ("float32", "float64", "float16", "int32")):
                dt = np.dtype(dt)
                fit = dt if dt.kind in "iu" and src.kind == "f" else None
                for planes, pixels, shift in itertools.product((1, 2, 3, 4, 6, 8, 20, 33),
                                                               (5, 37, 300),
                                                               (0, 4, 32, 1)):
                    base = random_values(rng, src, 2 * planes * pixels, fit)
                    view = np.moveaxis(base.reshape(2, planes, pixels), 1, -1)
                    raw = np.empty(view.size * dt.itemsize + 128, np.uint8)
                    start = (-raw.ctypes.data) % 64 + shift
                    out = np.frombuffer(raw, dt, view.size, start)
                    scale, offset = factor(rng, dt, planes), factor(rng, dt, planes)
                    assert _kernel.convert_into(view, out, scale, offset, 1)
                    assert out.tobytes() == reference(view, dt, scale, offset).tobytes(), \
                        (src, dt, planes, pixels, shift)
    finally:
        lib.pf_force_streaming(old)


def test_same_types_any_spelling() -> None:
    """C type aliases (long / long long, int / intc) map to the same codes."""
    for a, b in (("l", "q"), ("L", "Q"), ("i", "int32"), ("?", "bool")):
        assert _kernel.convert_supported(np.dtype(a), np.dtype("f4"))
        view = (np.arange(24) % 3).astype(a).reshape(4, 6).T
        assert_same(view, np.dtype(b) if b != "bool" else np.dtype("i1"))


def test_c_entry_rejects_bad_arguments() -> None:
    """pf_convert_copy's checks: unknown types and bool destinations,
    factor lengths, thread counts, NULL pointers, overflowing sizes."""
    from pyflat._pyflat import ffi

    src = np.arange(12, dtype=np.uint8)
    dst = np.zeros(12, np.float32)
    two = np.ones(2, np.float32)
    three = np.ones(3, np.float32)

    def call(src_type: int = lib.PF_TYPE_UINT8, dst_type: int = lib.PF_TYPE_FLOAT32,
             scale: Optional[np.ndarray] = None, scale_len: int = 0,
             offset: Optional[np.ndarray] = None, offset_len: int = 0, threads: int = 1,
             shape: tuple[int, ...] = (12,), strides: tuple[int, ...] = (1,),
             dst_ptr: object = None) -> int:
        return int(lib.pf_convert_copy(
            ffi.from_buffer(src), ffi.from_buffer(dst) if dst_ptr is None else dst_ptr,
            len(shape), shape, strides, src_type, dst_type,
            ffi.NULL if scale is None else ffi.from_buffer(scale), scale_len,
            ffi.NULL if offset is None else ffi.from_buffer(offset), offset_len, threads))

    assert call() == lib.PF_OK
    assert call(dst_type=lib.PF_TYPE_BOOL) == lib.PF_ERR_TYPE
    assert call(src_type=12) == lib.PF_ERR_TYPE
    assert call(src_type=-1) == lib.PF_ERR_TYPE
    assert call(scale=two, scale_len=2, offset=three, offset_len=3) == lib.PF_ERR_FACTORS
    assert call(scale=two, scale_len=0) == lib.PF_ERR_FACTORS
    assert call(threads=-1) == lib.PF_ERR_THREADS
    assert call(dst_ptr=ffi.NULL) == lib.PF_ERR_NULL
    assert call(shape=(2**62, 4), strides=(0, 0)) == lib.PF_ERR_OVERFLOW
    assert call(shape=(2**61, 2), strides=(0, 0)) == lib.PF_ERR_OVERFLOW  # output bytes
    assert call(shape=(0, 5), strides=(5, 1), dst_ptr=ffi.NULL) == lib.PF_OK  # empty
    dst[:] = 0
    assert call(scale=np.ones(1, np.float32), scale_len=1, offset=three, offset_len=3) == 0
    assert dst.tobytes() == (src.astype(np.float32) + 1).tobytes()
