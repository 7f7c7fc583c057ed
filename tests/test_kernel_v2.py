"""The second-generation kernel (issue 11): each root cause of the slow
layouts as a test of exact bytes under every kernel variant, and of the
plan that now handles it; and every item size from 1 to 33 bytes through
every block kernel."""

from __future__ import annotations

import contextlib
import platform

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pyflat
from fuzz_layouts import (check_layout, fitted, make_source, make_view, natural_strides,
                          settings_to_run)
from pyflat import _kernel
from pyflat._pyflat import lib
from variants import VARIANTS, forced

SETTINGS = settings_to_run()


def random_array(shape, dtype, seed=0):
    dtype = np.dtype(dtype)
    n = int(np.prod(shape)) * dtype.itemsize
    raw = np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8)
    return raw.view(dtype).reshape(shape)


@contextlib.contextmanager
def simd_level(simd):
    """Plans and copies at this SIMD level (a level the CPU lacks is clamped
    to what it has)."""
    previous = lib.pf_force_simd(simd)
    try:
        yield
    finally:
        lib.pf_force_simd(previous)


def reference(a, data_format):
    if data_format == "channels_first" and a.ndim > 2:
        a = np.moveaxis(a, 1, -1)
    return np.reshape(a, (len(a), -1))


REPRODUCERS = {
    # 1. short contiguous runs (198 bytes)
    "short_runs_int16": (lambda: random_array((8000, 100), np.int16)[:, 1:], "channels_last"),
    # 2. odd item sizes
    "void3_reversed": (lambda: random_array((149, 64, 28, 3), "V3")[:, ::-1], "channels_last"),
    "void12_transposed": (lambda: random_array((300, 40, 50), "V12").transpose(0, 2, 1),
                          "channels_last"),
    "string5_sliced": (lambda: random_array((500, 60, 7), "S5")[:, ::3, 1:], "channels_last"),
    # 3. tiny per-sample blocks
    "tiny_blocks_f32": (lambda: random_array((100_000, 3, 4), np.float32).transpose(0, 2, 1),
                        "channels_last"),
    # 4. small-step gathers
    "f16_every_other": (lambda: random_array((300, 64, 40), np.float16)[..., ::2],
                        "channels_last"),
    # 5. reversed inner axis
    "f32_reversed_inner": (lambda: random_array((2000, 300), np.float32)[:, ::-1],
                           "channels_last"),
    # 6. narrow interleaves
    "int16_stereo_cf": (lambda: random_array((40, 2, 9000), np.int16), "channels_first"),
    "int16_three_columns": (lambda: random_array((3, 50_000), np.int16).T, "channels_last"),
    # 7. tiny permuted blocks
    "uint8_tiny_permuted": (lambda: random_array((50_000, 2, 3, 2), np.uint8)
                            .transpose(0, 3, 1, 2), "channels_last"),
    # tall transposes against several short axes (planes): fuzz 161803 #199
    "planes_int16": (lambda: random_array((2, 51, 3, 3700), np.int16).transpose(3, 1, 0, 2),
                     "channels_last"),
    "planes_uint32_cf": (lambda: random_array((23, 12, 100, 16, 2), np.uint32)
                         [:, :, :98].transpose(2, 4, 3, 1, 0), "channels_first"),
    # short contiguous runs in a permuted sample: fuzz 161803 #177
    "short_runs_permuted": (lambda: random_array((1000, 3, 5, 6, 5, 3), np.uint16)
                            .transpose(0, 1, 4, 3, 2, 5), "channels_last"),
    # a 112-item block whose rows are 8 items of a 4-item axis at a step
    # each (fuzz 4669 #146): the offset table, not programs of 8 items
    "table_not_small_programs": (lambda: random_array((2, 1000, 4, 2, 7), np.float32)
                                 .transpose(1, 4, 0, 3, 2)[::-1], "channels_last"),
    # small blocks of 8-byte items that register blocks tile whole (tuning
    # seeds 11 #41, 12 #35): the offset table, not one tiny tile per sample
    "f64_2x2_tiles": (lambda: np.lib.stride_tricks.as_strided(
        random_array((20_000, 60), np.float64), (20_000, 2, 2, 2, 2), (480, 120, 24, 8, 240)),
        "channels_last"),
    "f64_two_channels_cf": (lambda: random_array((20_000, 2, 24), np.float64), "channels_first"),
    # broadcast inner axis
    "broadcast_inner": (lambda: np.broadcast_to(random_array((20_000, 1), np.uint8),
                                                (20_000, 103)), "channels_last"),
}


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
@pytest.mark.parametrize("name", sorted(REPRODUCERS))
def test_reproducers_exact(name, variant):
    make, data_format = REPRODUCERS[name]
    a = make()
    with forced(variant):
        result = pyflat.batch_flatten(a, data_format=data_format,
                                      num_threads=variant.num_threads)
    expected = reference(a, data_format)
    assert result.shape == expected.shape
    assert result.tobytes() == expected.tobytes()


def test_tiny_blocks_are_not_one_unit_per_sample():
    a = REPRODUCERS["tiny_blocks_f32"][0]()
    plan = pyflat.explain(a)
    assert plan.units <= a.nbytes // (64 * 1024) + 1  # ~256 KiB units, not 10**5
    assert plan.kernel == "block"


def test_tall_transposes_tile_against_all_planes():
    """A tall axis contiguous in the source against several short axes:
    tiles of it x all those axes, not x the last axis alone (which wrote a
    few items of each destination row per pass over them)."""
    a = REPRODUCERS["planes_int16"][0]()
    plan = pyflat.explain(a, start_dim=0)
    assert (plan.kernel, plan.rows_axis, plan.block_axis, plan.row_elems) == (
        "transpose", 0, 1, 51 * 2 * 3)
    assert "against axes 1..3 (306 planes)" in str(plan)
    # Rows too long for one table: the planes are the longest suffix of
    # axes that fits, the axes between are walked outside.
    b = random_array((12, 14, 10, 4, 42), np.int8).transpose(4, 3, 2, 1, 0)
    plan = pyflat.explain(b, start_dim=0)
    assert (plan.kernel, plan.rows_axis, plan.block_axis, plan.row_elems) == (
        "transpose", 0, 2, 10 * 14 * 12)
    assert pyflat.flatten(b, 0).tobytes() == np.ascontiguousarray(b).tobytes()


def test_short_runs_are_items():
    """Contiguous runs of at most 32 bytes are items of their own (the
    innermost axis folded in), so that the other kernels see the layout
    (at the SSE2 level: at AVX2 and above, byte shuffles or permutes take
    runs of 3 uint16)."""
    a = REPRODUCERS["short_runs_permuted"][0]()
    with simd_level(lib.PF_SIMD_SSE2):
        plan = pyflat.explain(a, start_dim=0)
    assert plan.kernel == "block" and "6-byte items, contiguous runs as items" in plan.inner
    assert plan.shape == (3000, 5, 6, 5) and plan.dst_strides[-1] == 6
    assert pyflat.flatten(a, 0).tobytes() == np.ascontiguousarray(a).tobytes()


@pytest.mark.parametrize("simd", [lib.PF_SIMD_NONE, lib.PF_SIMD_AVX2, lib.PF_SIMD_AVX512])
def test_small_programs_do_not_replace_the_table(simd):
    """Where the offset table takes a whole block, a byte-permute program
    for a smaller block of its last axes (8 items per run here) does not
    replace it, at any SIMD level."""
    a = REPRODUCERS["table_not_small_programs"][0]()
    with simd_level(simd):
        plan = pyflat.explain(a, start_dim=0, num_threads=1)
    assert (plan.kernel, plan.block_axis, plan.row_elems) == ("block", 1, 7 * 2 * 2 * 4)
    assert "offset table" in plan.inner


@pytest.mark.parametrize("simd", [lib.PF_SIMD_SSE2, lib.PF_SIMD_AVX2, lib.PF_SIMD_AVX512])
@pytest.mark.parametrize("name", ["f64_2x2_tiles", "f64_two_channels_cf"])
def test_small_blocks_of_wide_items_take_the_table(name, simd):
    """Blocks of at most PF_TINY_BLOCK_BYTES of 8-byte items go by the offset
    table, one row per sample, even where 2x2 or 2-row register blocks tile
    them whole (those made a unit of 32 bytes per block)."""
    make, data_format = REPRODUCERS[name]
    a = make()
    with simd_level(simd):
        plan = pyflat.explain(a, data_format=data_format, num_threads=1)
        result = pyflat.batch_flatten(a, data_format=data_format, num_threads=1)
    assert (plan.kernel, plan.row_elems) == ("block", a[0].size)
    assert "offset table" in plan.inner
    assert result.tobytes() == reference(a, data_format).tobytes()


@pytest.mark.parametrize("simd", [lib.PF_SIMD_SSE2, lib.PF_SIMD_AVX2, lib.PF_SIMD_AVX512])
@pytest.mark.parametrize("dtype, tile", [("<U2", (3, 2)), (np.float64, (4, 4)),
                                         (np.complex64, (9, 7)), (np.int32, (8, 8))])
def test_tiny_tiles_take_the_table(dtype, tile, simd):
    """A transpose whose tile (rows x columns) holds at most
    PF_TINY_TILE_ITEMS items, inside a block of PF_BLOCK_MAX, goes by the
    block's offset table, even where register blocks fit: its tiles would be
    one unit of a few items each (fuzz 5150 #34 made 1.3 million)."""
    rows, cols = tile
    middle = min(12, 256 // (rows * cols))  # blocks of 576 to 2016 bytes
    a = random_array((500, cols, middle, rows), dtype).transpose(0, 2, 3, 1)[:, ::-1]
    with simd_level(simd):
        plan = pyflat.explain(a, num_threads=1)
        result = pyflat.batch_flatten(a, num_threads=1)
    assert (plan.kernel, plan.row_elems) == ("block", middle * rows * cols)
    assert result.tobytes() == reference(a, "channels_last").tobytes()


@pytest.mark.parametrize("dtype, rows, block_rows", [
    (np.uint8, 96, 32), (np.uint8, 64, 32), (np.uint8, 42, 16),
    (np.int16, 48, 16), (np.int16, 16, 16), (np.int16, 20, 8)])
def test_taller_blocks_where_rows_fill_them(dtype, rows, block_rows):
    """At the AVX2 level, 1- and 2-byte transposes take blocks twice as
    tall as SSE2's where the rows hold a whole number of them or two or
    more (else ragged rows would go item by item)."""
    view = random_array((40, rows), dtype).T
    with simd_level(lib.PF_SIMD_AVX2):
        plan = _kernel.make_plan(view, 1)
        result = pyflat.flatten(view, 0, num_threads=1)
        float32_plan = _kernel.make_plan(random_array((64, 64), np.float32).T, 1)
    if float32_plan.simd != lib.PF_SIMD_AVX2:
        pytest.skip("the CPU has no AVX2")
    assert (plan.micro_rows, plan.micro_cols) == (block_rows, 16 // view.itemsize)
    assert result.tobytes() == np.ascontiguousarray(view).tobytes()


@pytest.mark.parametrize("dtype, step, tile", [
    (np.float64, 2, (512, 8)), (np.complex128, 3, (128, 8)), ("V12", 2, (220, 8)),
    (np.float64, 1, None), (np.float32, 2, (256, 64))])
def test_far_columns_of_rows_at_a_step(dtype, step, tile):
    """Transposes of columns 64 KiB or more apart whose rows are read at a
    step, items of 8 bytes or more moved one by one: tiles 8 columns wide
    and as much taller; not with rows read contiguously (tiles 4 times
    taller, or long tiles one register block wide where the CPU has those
    blocks), nor for smaller items."""
    a = random_array((35, 9000 * step), dtype)
    view = a.T[::step]
    plan = _kernel.make_plan(view, 1)
    if tile is None:
        tile = (512, 4) if plan.micro_rows else (128, 32)
    assert (plan.tile_rows, plan.tile_cols) == tile
    for threads in (1, 2):
        result = pyflat.flatten(view, 0, num_threads=threads)
        assert result.tobytes() == np.ascontiguousarray(view).tobytes()


@pytest.mark.parametrize("kernel, index", [
    (lib.PF_KERNEL_MEMCPY, np.s_[:, :3, 1:11]), (lib.PF_KERNEL_GATHER, np.s_[:, :3, 2:40:2]),
    (lib.PF_KERNEL_REVERSE, np.s_[:, :3, 11:0:-1])])
def test_groups_of_short_rows(kernel, index):
    """Row kernels take whole groups of the row space's innermost axis (3
    short rows here) in one call; units of work (256 KiB) begin and end
    inside groups."""
    view = random_array((30_000, 4, 40), np.float32)[index]
    plan = _kernel.make_plan(view, 1)
    assert plan.kernel == kernel and plan.units > 1 and plan.row_chunk % 3 != 0
    for threads in (1, 2):
        result = pyflat.flatten(view, 0, num_threads=threads)
        assert result.tobytes() == np.ascontiguousarray(view).tobytes()


def cpu_has_avx2():
    plan = pyflat.explain(np.zeros((2, 64, 64), np.float32), data_format="channels_first")
    return plan.simd in ("avx2", "avx512vbmi")


def checked_with_avx2_plan(shape, strides, e):
    """The plan at the AVX2 level (clamped to what the CPU has) of a view of
    that layout, whose bytes are checked against numpy at every level (in a
    buffer that ends where the view does, for the sanitizer build)."""
    layout = fitted(shape, strides, e)
    found = check_layout(layout, np.random.default_rng(e), SETTINGS)
    assert not found, "\n".join(map(str, found))
    view = make_view(layout, make_source(layout, np.random.default_rng(0)))
    with simd_level(lib.PF_SIMD_AVX2):
        return pyflat.explain(view, start_dim=0, num_threads=1)


@pytest.mark.parametrize("shape, strides, e", [
    ((2000, 3, 4), (-12, 1, 3), 1),    # 4x3 bytes a sample, samples reversed (fuzz 8128 #270)
    ((3000, 6, 11), (12, 1, 0), 1),    # a broadcast axis (fuzz 8128 #116)
    ((5001, 3), (5, 1), 1),            # runs of 3 bytes
    ((3001, 7, 3), (150, 18, 2), 2),   # runs of 3 uint16 (tuning seed 12 #110)
])
def test_byte_shuffle_programs(shape, strides, e):
    """Without VBMI, tiny blocks and short runs of 1- and 2-byte items go by
    pshufb programs whose 16-byte loads stay inside the view's memory: the
    plan says so at the AVX2 level where the CPU has it, and the bytes are
    exact at every level."""
    plan = checked_with_avx2_plan(shape, strides, e)
    assert ("byte-shuffle program" in plan.inner) == (plan.simd == "avx2")
    assert (plan.simd == "avx2") == cpu_has_avx2()


@pytest.mark.parametrize("shape, strides, e, block", [
    ((3000, 21, 2), (42, 1, 21), 1, (1, 2)),          # two planes of 21 bytes (seed 13 #71)
    ((3000, 2, 13), (65, 13, -1), 1, (1, 2)),         # 13-byte rows reversed (seed 90210 #42)
    ((40, 125, 3, 2, 2), (5000, -8, 1000, 4, -2), 2, (2, 4)),  # (seed 27182 #31)
    ((5000, 4, 4), (52, 12, 0), 4, (1, 2)),           # a broadcast axis (seed 8128 #148)
    ((3000, 11, 4, 4), (704, -64, 16, -4), 4, (2, 3)),  # a smaller block (seed 42424 #211)
    ((3000, 28, 7), (176, 4, 0), 4, (2, 2)),          # a smaller block (seed 161803 #55)
])
def test_shuffle_programs_over_the_offset_table(shape, strides, e, block):
    """Blocks the offset table would take, of 1-, 2- and 4-byte items, go by
    a pshufb program at the AVX2 level where its 16-byte chunks need few
    source windows: the table's block or a smaller one (explain() names its
    axes).  Exact bytes at every level."""
    plan = checked_with_avx2_plan(shape, strides, e)
    if cpu_has_avx2():
        assert plan.kernel == "block" and "byte-shuffle program" in plan.inner
        assert f"axes {block[0]}..{block[1]} " in str(plan)
    else:
        assert "offset table" in plan.inner


@pytest.mark.parametrize("rows, cols, backwards, long_tiles", [
    (2000, 100, False, True), (300, 16, False, True),
    (2000, 100, True, False),   # rows read backwards
    (2000, 12, False, False),   # under 16 columns
    (200, 100, False, False),   # under 256 rows
])
def test_long_8_byte_transposes_take_tiles_one_block_wide(rows, cols, backwards, long_tiles):
    """Transposes by register blocks of 8-byte items with 256 rows and 16
    columns and more, rows read forwards, take tiles of 512 rows one block
    (4 columns) wide: each column's rows are read as one long run."""
    view = random_array((cols, rows), np.float64).T
    if backwards:
        view = view[::-1]
    with simd_level(lib.PF_SIMD_AVX2):
        plan = pyflat.explain(view, start_dim=0, num_threads=1)
        assert pyflat.flatten(view, start_dim=0, num_threads=1).tobytes() == \
            np.ascontiguousarray(view).tobytes()
    assert plan.kernel == "transpose"
    if plan.simd == "avx2":
        assert (plan.tile == (512, 4)) == long_tiles
    for threads in (1, 2):
        assert pyflat.flatten(view, start_dim=0, num_threads=threads).tobytes() == \
            np.ascontiguousarray(view).tobytes()


@pytest.mark.parametrize("cols", [5, 7, 20])
def test_units_narrower_than_a_tile_take_taller_tiles(cols):
    """A transpose of fewer columns than a tile holds: tiles as many times
    taller, the same area (never taller than a unit)."""
    wide = pyflat.explain(random_array((64, 50000), np.float32).T, num_threads=1)
    view = random_array((cols, 50000), np.float32).T
    plan = pyflat.explain(view, num_threads=1)
    assert plan.kernel == "transpose" and plan.tile[1] == wide.tile[1] > cols
    assert plan.tile[0] == min(wide.tile[0] * (wide.tile[1] // cols), plan.row_chunk)
    assert plan.tile[0] > wide.tile[0]
    for threads in (1, 2):
        assert pyflat.flatten(view, start_dim=0, num_threads=threads).tobytes() == \
            np.ascontiguousarray(view).tobytes()


@pytest.mark.parametrize("cols, kernel", [(85, "gather"), (20, "block")])
def test_long_strided_rows_are_gathers(cols, kernel):
    """A tiny transpose (3 rows read backwards) whose rows are long, at a
    constant step (fuzz 5150 #8: 85 int16 items 18 bytes apart): the
    gather's loop, not the offset table's load per item; shorter rows keep
    the table."""
    view = random_array((2000, cols, 9), np.int16)[::-1, :, 5:2:-1].transpose(0, 2, 1)
    plan = pyflat.explain(view, num_threads=1)
    assert plan.kernel == kernel and plan.shape == (2000, 3, cols)
    for threads in (1, 2):
        assert pyflat.flatten(view, num_threads=threads).tobytes() == \
            np.ascontiguousarray(view).tobytes()


def test_reversed_inner_axis_is_a_reverse_kernel():
    plan = pyflat.explain(REPRODUCERS["f32_reversed_inner"][0](), num_threads=1)
    assert plan.kernel == "reverse"


def test_two_dimensional_channels_first_is_zero_copy():
    a = random_array((1000, 50), np.float32)
    result = pyflat.batch_flatten(a, data_format="channels_first")
    assert np.shares_memory(result, a) and result.shape == (1000, 50)
    assert pyflat.explain(a, data_format="channels_first").zero_copy


@pytest.mark.parametrize("simd", [lib.PF_SIMD_NONE, lib.PF_SIMD_SSE2, lib.PF_SIMD_AVX2,
                                  lib.PF_SIMD_AVX512])
@pytest.mark.parametrize("itemsize", list(range(1, 34)) + [40, 48, 64])
def test_every_itemsize_every_kernel(itemsize, simd):
    """Each block kernel (runs, gathers, reversed runs, small blocks, tiles,
    broadcasts) on items of every size, at each SIMD level, byte-exact."""
    e = itemsize
    layouts = [
        fitted((7, 45), (45 * e + e, e), e),             # runs
        fitted((6, 40), (100 * e, 2 * e), e),            # step 2
        fitted((6, 40), (140 * e, 3 * e), e),            # step 3
        fitted((5, 70), (80 * e, -e), e),                # reversed
        fitted((5, 33), (40 * e, -2 * e), e),            # reversed, step 2
        fitted((40, 3, 4), (12 * e, e, 3 * e), e),       # tiny transposes
        fitted((30, 2, 3, 2), (12 * e, e, 4 * e, 2 * e), e),  # tiny permuted blocks
        fitted((9, 70, 3), (210 * e, e, 70 * e), e),     # 3-plane interleave
        fitted((1100, 2), (e, 1100 * e), e),             # 2 planes, several tiles of rows
        fitted((75, 4), (-e, 75 * e), e),                # 4 planes, backwards, ragged rows
        fitted((75, 8), (e, 75 * e), e),                 # 8 planes, ragged rows
        fitted((75, 5), (e, 75 * e), e),                 # 5 planes (shuffles), ragged rows
        fitted((33, 40), (e, 33 * e), e),                # tiled transpose
        fitted((33, 40), (-e, 33 * e), e),               # ... rows read backwards
        fitted((35, 21), (-e, -35 * e), e),              # ... both axes backwards
        fitted((70, 40), (e, 70 * e), e),                # ... rows for taller blocks, ragged
        fitted((64, 17), (-e, 64 * e), e),               # ... backwards, whole taller blocks
        fitted((40, 12), (e, 40 * e), e),                # ... under two blocks of columns
        fitted((40, 13), (e, 40 * e), e),                # ... ragged, under two 8-column blocks
        fitted((40, 6), (-e, 40 * e), e),                # ... ragged, under two 4-column blocks
        fitted((64, 20), (-e, 64 * e), e),               # ... backwards
        fitted((200, 4), (e, 0), e),                     # broadcast inner axis
        fitted((20, 37), (e, 0), e),                     # ... long rows
        fitted((50, 5, 3), (16 * e, 0, e), e),           # broadcast middle axis
        fitted((37, 5, 3), (e, 37 * e, 185 * e), e),     # transpose against planes
        fitted((37, 5, 3), (-e, 37 * e, 185 * e), e),    # ... rows read backwards
        fitted((37, 3, 2), (e, 37 * e, 111 * e), e),     # ... 6 planes, ragged
        fitted((70, 5, 4), (-e, 70 * e, 350 * e), e),    # ... rows for taller blocks
        fitted((41, 4, 3), (2 * e, 82 * e, 328 * e), e), # ... rows at step 2
        fitted((3, 40, 4, 3), (480 * e, e, 40 * e, 160 * e), e),  # ... for each sample
        fitted((18, 40, 30), (e, 18 * e, 720 * e), e),   # ... 1200 planes (a table on the heap)
        fitted((19, 5, 40, 30), (e, 22800 * e, 19 * e, 760 * e), e),  # ... an axis between
        fitted((30, 4, 5, 3), (60 * e, 3 * e, 12 * e, e), e),  # short runs, permuted
        fitted((30, 4, 5, 2), (-40 * e, -2 * e, 8 * e, e), e),  # ... backwards
    ]
    setting = [s for s in SETTINGS if s.simd == simd and s.streaming == 0]
    for layout in layouts:
        found = check_layout(layout, np.random.default_rng(e), setting)
        assert not found, "\n".join(map(str, found))


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(e=st.integers(1, 33), ndim=st.integers(1, 6), data=st.data(),
       seed=st.integers(0, 2**32 - 1))
def test_tiny_axes_any_itemsize(e, ndim, data, seed):
    """Layouts of tiny axes (1 to 5), sliced, permuted, reversed or
    broadcast, with any item size: every kernel variant, byte-exact."""
    shape = data.draw(st.lists(st.integers(1, 5), min_size=ndim, max_size=ndim))
    rng = np.random.default_rng(seed)
    strides = natural_strides(rng, shape, e)
    if data.draw(st.booleans()):
        strides[data.draw(st.integers(0, ndim - 1))] = 0  # broadcast one axis
    if data.draw(st.booleans()):
        shape[0] = data.draw(st.integers(20, 300))       # many samples
    layout = fitted(shape, strides, e, data.draw(st.integers(0, 3)), 0)
    found = check_layout(layout, rng, SETTINGS)
    assert not found, "\n".join(map(str, found))


def test_plan_keeps_item_sizes_apart():
    plan = _kernel.make_plan(random_array((10, 20), "V12")[:, ::2], 1)
    assert plan.src_itemsize == plan.dst_itemsize == plan.itemsize == 12


@pytest.mark.parametrize("length", [1, 15, 16, 17, 63, 64, 65, 203, 1000])
def test_broadcast_rows_of_one_byte(length):
    # One byte repeated per row: memset from 64 bytes on (below, the
    # planner's block programs or 16-byte moves), at every SIMD level.
    column = random_array((3001, 1), np.uint8)
    view = np.broadcast_to(column, (3001, length))
    for simd in (lib.PF_SIMD_NONE, lib.PF_SIMD_AUTO):
        with simd_level(simd):
            plan = pyflat.explain(view, num_threads=1)
            if length >= 64:
                assert plan.kernel == "gather" and "memset" in str(plan)
            out = np.full((3001, length), 7, np.uint8)
            pyflat.batch_flatten(view, out=out, num_threads=1)
        assert out.tobytes() == np.ascontiguousarray(view).tobytes()


@pytest.mark.parametrize("run, rows, streams", [(1030, 8200, True), (1000, 8500, False),
                                                (1030, 8000, False)])
def test_long_runs_of_large_outputs_stream(run, rows, streams):
    """Row copies of contiguous runs of PF_STREAMING_MIN_RUN (1 KiB) bytes
    and more, into outputs of PF_STREAMING_MIN_BYTES (8 MiB) and more, use
    streaming stores; shorter runs and smaller outputs do not.  The bytes
    are numpy's either way, at any alignment of the runs."""
    base = random_array((rows, run + 3), np.uint8)
    view = base[:, 3:]
    plan = pyflat.explain(view, num_threads=1)
    assert plan.kernel == "memcpy" and plan.streaming == streams
    assert (view.nbytes >= 8 << 20 and run >= 1024) == streams
    assert pyflat.batch_flatten(view, num_threads=1).tobytes() == view.tobytes()


@pytest.mark.parametrize("dtype, shape, perm, reverse, prefetches", [
    (np.float32, (12000, 8, 12), (0, 2, 1), False, True),      # 96 items, 6 lines
    ("V10", (14000, 10, 6), (0, 2, 1), True, True),             # rows backwards
    (np.int16, (12000, 3, 5, 12), (0, 3, 1, 2), False, True),   # 180 items
    (np.float32, (6000, 2, 8, 12), (0, 1, 3, 2), False, True),  # 2 rows per group
    (np.float32, (4000, 8, 12), (0, 2, 1), False, False),       # source and output < 8 MiB
    (np.float64, (100000, 2, 6), (0, 2, 1), False, False),      # rows of 12 items, 9.6 MB
])
def test_block_rows_prefetch_the_row_ahead(dtype, shape, perm, reverse, prefetches):
    """Block rows ask for the source lines of a row ahead where the source's
    extent and the output make PF_PREFETCH_MIN_BYTES (8 MiB) and more
    and rows hold 16 items and more; the row ahead may lie in the next
    group of rows, or past the view.  The bytes are numpy's either way."""
    a = random_array(shape, dtype).transpose(perm)
    if reverse:
        a = a[:, :, ::-1]
    plan = _kernel.make_plan(a, 1)
    assert _kernel.kernel_name(plan.kernel) == "block" and plan.program == 0
    assert (plan.prefetch_rows > 0) == prefetches
    extent = a.itemsize + sum((n - 1) * abs(s) for n, s in zip(a.shape, a.strides))
    assert prefetches == (extent + a.nbytes >= 8 << 20 and plan.row_elems >= 16)
    if prefetches:
        assert 4 <= plan.prefetch_lines <= 64
        assert f"prefetch {plan.prefetch_rows} row(s) ahead" in str(pyflat.explain(a, num_threads=1))
    assert pyflat.batch_flatten(a, num_threads=1).tobytes() == reference(a, "channels_last").tobytes()


@pytest.mark.parametrize("simd", [lib.PF_SIMD_SSE2, lib.PF_SIMD_AVX2])
@pytest.mark.parametrize("cols", range(9, 16))
@pytest.mark.parametrize("rows, backwards, packed", [
    (16, False, True), (37, True, True), (300, False, True), (48, False, False),
    (45, True, False)])
def test_nine_to_fifteen_byte_columns_take_register_blocks(simd, cols, rows, backwards, packed):
    """Transposes of 9 to 15 one-byte columns go by 16-row register blocks
    (the 16x16 byte network, the missing columns zero), their rows read
    forwards or backwards, written as packed rows or at a larger step; each
    destination row is two overlapping 8-byte stores, so nothing outside it
    is written.  Ragged rows: an overlapping block, or item moves.  (x86-64
    only: SSE2 is its baseline; elsewhere item moves, the same bytes.)"""
    # (batch, rows, cols): the rows axis contiguous in the source, the
    # columns far apart; not packed: (batch, rows, 500, cols), the middle
    # axis read at a step (so that it does not merge) and too long for
    # planes (500 x cols bytes > PF_PLANE_ROW_BYTES).
    if packed:
        a = random_array((3, cols, rows), np.uint8, seed=cols).transpose(0, 2, 1)
    else:
        a = random_array((2, cols, 1000, rows), np.uint8, seed=cols)[:, :, ::2].transpose(0, 3, 2, 1)
    if backwards:
        a = a[:, ::-1]
    with simd_level(simd):
        plan = _kernel.make_plan(a, 1)
        result = pyflat.batch_flatten(a, num_threads=1)
    if platform.machine() in ("x86_64", "AMD64"):
        assert _kernel.kernel_name(plan.kernel) == "transpose"
        assert (plan.micro_rows, plan.micro_cols) == (16, cols)
    assert result.tobytes() == reference(a, "channels_last").tobytes()


@pytest.mark.parametrize("dtype, shape, reverse, prefetches", [
    ("V5", (2, 8, 6, 50000), False, True),    # 24 planes of 5-byte items
    ("V3", (2, 8, 8, 60000), True, True),     # 32 planes, rows backwards
    ("V12", (2, 8, 6, 20000), False, True),   # tiles of 22 planes, rows of 12 bytes
    ("V5", (2, 8, 6, 5000), False, False),    # source and output < 8 MiB
    ("V5", (2, 4, 3, 200000), False, False),  # 6 planes: streams the hardware follows
])
def test_tiles_of_planes_prefetch_rows_ahead(dtype, shape, reverse, prefetches):
    """Transposes against planes by item moves ask for each plane's line
    PF_PREFETCH_PLANE_LINES lines of rows ahead, once per line of rows, where
    a tile has PF_PREFETCH_MIN_COLS (16) planes or more and the source's
    extent and the output make 8 MiB and more; the rows ahead may lie past
    the view.  The bytes are numpy's either way."""
    a = random_array(shape, dtype)[:, ::2].transpose(0, 3, 1, 2)  # planes (4 or 2, 6 or 8)
    if reverse:
        a = a[:, ::-1]
    plan = _kernel.make_plan(a, 1)
    assert _kernel.kernel_name(plan.kernel) == "transpose" and plan.block_axis >= 0
    assert plan.micro_rows == 0
    assert (plan.prefetch_rows > 0) == prefetches
    if prefetches:
        rows_per_line = max(1, 64 // a.itemsize)
        assert plan.prefetch_rows == 4 * rows_per_line and plan.tile_cols >= 16
        assert f"prefetch {plan.prefetch_rows} rows ahead" in str(pyflat.explain(a, num_threads=1))
    assert pyflat.batch_flatten(a, num_threads=1).tobytes() == reference(a, "channels_last").tobytes()


@pytest.mark.parametrize("simd", [lib.PF_SIMD_NONE, lib.PF_SIMD_SSE2, lib.PF_SIMD_AVX2])
@pytest.mark.parametrize("dtype, planes, reverse, by_columns", [
    (np.float64, (8, 6), False, False),    # 24 planes of 20 rows: a row of blocks at a time
    (np.float64, (8, 6), True, False),     # ... rows backwards
    (np.complex128, (8, 6), False, False),
    (np.float32, (8, 6), False, True),     # a column of blocks at a time: no prefetch
    (np.uint16, (16, 12), True, False),    # 96 planes: 4 times wider than tall, by rows
])
def test_register_blocks_of_planes_prefetch_rows_ahead(dtype, planes, reverse, by_columns, simd):
    """Tiles of planes taken a row of register blocks at a time prefetch as
    item moves do (fuzz 4669 #256, float64 20 rows against 154 planes);
    a column of blocks at a time reads a few streams, and does not.  The
    bytes are numpy's either way."""
    rows = 20
    count = (12 << 20) // (planes[0] * planes[1] * rows * np.dtype(dtype).itemsize) + 1
    a = random_array((count, *planes, rows), dtype)[:, ::2].transpose(0, 3, 1, 2)
    if reverse:
        a = a[:, ::-1]
    with simd_level(simd):
        plan = _kernel.make_plan(a, 1)
        result = pyflat.batch_flatten(a, num_threads=1)
    assert _kernel.kernel_name(plan.kernel) == "transpose" and plan.block_axis >= 0
    if plan.micro_rows > 0:
        assert plan.micro_by_columns == by_columns
    assert (plan.prefetch_rows > 0) == (plan.micro_rows == 0 or not by_columns)
    assert result.tobytes() == reference(a, "channels_last").tobytes()


@pytest.mark.parametrize("simd", [lib.PF_SIMD_SSE2, lib.PF_SIMD_AVX2])
@pytest.mark.parametrize("dtype, shape, by_columns", [
    (np.float64, (3, 6, 20000), True),   # 6 columns of 20000 rows (fuzz 60221 #205)
    (np.float64, (3, 14, 20000), False),  # 14 columns: by rows (fuzz 42424 #91)
    (np.float64, (3, 64, 64), False),    # square tiles of 8-byte items: by rows
    (np.float64, (3, 2, 50000), True),   # 2 columns (fuzz 60221 #221, 4.4x faster)
    (np.uint16, (3, 3000, 16), False),   # 16 rows of 3000 columns (fuzz 777 #46)
    (np.uint8, (3, 16, 30000), True),    # small items: by columns
])
def test_register_blocks_go_down_the_longer_side(dtype, shape, by_columns, simd):
    """Register blocks go a row of blocks at a time for items of more than 4
    bytes and a column at a time for smaller ones, unless the tile is 4
    times longer the other way (8-byte items: and under two blocks wide,
    or 16 columns and more); explain() says which.  The bytes are numpy's
    either way."""
    a = random_array(shape, dtype).transpose(0, 2, 1)
    with simd_level(simd):
        plan = _kernel.make_plan(a, 1)
        text = str(pyflat.explain(a, num_threads=1))
        result = pyflat.batch_flatten(a, num_threads=1)
    assert _kernel.kernel_name(plan.kernel) == "transpose" and plan.block_axis < 0
    if plan.micro_rows > 0:
        assert plan.micro_by_columns == by_columns
        assert ("blocks by columns" if by_columns else "blocks by rows") in text
    assert result.tobytes() == reference(a, "channels_last").tobytes()


@pytest.mark.parametrize("simd", [lib.PF_SIMD_NONE, lib.PF_SIMD_SSE2, lib.PF_SIMD_AVX2])
@pytest.mark.parametrize("dtype, items", [(np.int16, 2), (np.int16, 16), (np.int16, 17),
                                          ("V3", 10), ("V3", 11), (np.float64, 4),
                                          (np.float64, 5), (np.complex128, 2)])
def test_short_reversed_rows_take_the_table(dtype, items, simd):
    """Reversed rows of at most PF_TABLE_REVERSED_ROW_BYTES (32) bytes, in a
    block the offset table takes, go by the table (fuzz 27182 #31, uint16
    rows of 2 items: a reverse-kernel call per few rows, 0.02 of the limit);
    longer ones by the reverse kernel.  The bytes are numpy's either way."""
    # rows of an axis read at a step: the rows do not merge into one axis
    a = random_array((2000, 3, 5, items), dtype)[:, :, ::2, ::-1]
    with simd_level(simd):
        plan = pyflat.explain(a, num_threads=1)
        result = pyflat.batch_flatten(a, num_threads=1)
    short = items * a.itemsize <= 32
    assert plan.kernel == ("block" if short else "reverse")
    if short:
        assert plan.row_elems == 3 * items
    assert result.tobytes() == reference(a, "channels_last").tobytes()
