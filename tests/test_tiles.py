"""The tiling of out-of-core flattening, simulated with numpy alone: every
output element is produced exactly once, from the right source element, by
reads of the file in order, within the memory budget, with long runs."""

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pyflat.tiles import TileGrid, feature_axes, physical_axes, read_runs


def reference(a, data_format):
    if data_format == "channels_first" and a.ndim > 2:
        a = np.moveaxis(a, 1, -1)
    return np.ascontiguousarray(a).reshape(a.shape[0], math.prod(a.shape[1:]))


def simulate(shape, fortran_order, data_format, budget):
    """Flatten through the tiles, reading a 'file' (the source's bytes in
    its order) only through ``read_runs``; check each tile on the way."""
    source = np.arange(math.prod(shape)).reshape(shape)
    file = source.ravel(order="F" if fortran_order else "C")
    expected = reference(source, data_format)
    output = np.full(expected.shape, -1)
    grid = TileGrid(shape, fortran_order, data_format, budget)
    rows, cols = grid.tile_size
    assert rows * cols <= max(budget, 1)
    order = physical_axes(len(shape), fortran_order)
    for tile in grid:
        extents = [hi - lo for lo, hi in tile.box]
        assert math.prod(extents) == tile.shape[0] * tile.shape[1] <= rows * cols
        runs = list(read_runs(shape, tile.box, fortran_order))
        assert [o for o, _ in runs] == sorted(o for o, _ in runs), "reads go forward"
        packed = np.concatenate([file[o:o + n] for o, n in runs])
        box = packed.reshape([extents[a] for a in order]).transpose(np.argsort(order))
        np.testing.assert_array_equal(box, source[tuple(slice(*r) for r in tile.box)])
        target = output[slice(*tile.rows), slice(*tile.cols)]
        assert (target == -1).all(), "an element written twice"
        target[...] = reference(box, data_format)
    np.testing.assert_array_equal(output, expected)


@settings(max_examples=300, deadline=None)
@given(shape=st.lists(st.integers(0, 5), min_size=1, max_size=5).map(tuple),
       fortran_order=st.booleans(),
       data_format=st.sampled_from(["channels_last", "channels_first"]),
       budget=st.integers(0, 300))
def test_tiles_cover_the_output_exactly_once(shape, fortran_order, data_format, budget):
    simulate(shape, fortran_order, data_format, budget)


def test_a_row_larger_than_the_budget_is_split():
    simulate((3, 4, 5, 6), False, "channels_first", 7)
    simulate((2, 1000), False, "channels_last", 64)


def test_feature_axes_follow_batch_flatten():
    assert feature_axes(1, "channels_first") == []
    assert feature_axes(2, "channels_first") == [1]
    assert feature_axes(4, "channels_first") == [2, 3, 1]
    assert feature_axes(4, "channels_last") == [1, 2, 3]


def _runs_per_tile(grid):
    tiles = list(grid)
    runs = [len(list(read_runs(grid.shape, t.box, grid.fortran_order))) for t in tiles]
    return tiles, runs


def test_c_order_reads_whole_rows_in_one_read():
    grid = TileGrid((1000, 3, 32, 32), False, "channels_first", 2**20 // 4)
    tiles, runs = _runs_per_tile(grid)
    assert runs == [1] * len(tiles)
    assert all(t.cols == (0, 3 * 32 * 32) for t in tiles)  # one write each
    assert grid.tile_size[0] * 3 * 32 * 32 > 2**18 * 0.9  # the budget is used


def test_fortran_order_tiles_are_square_enough_for_long_reads_and_writes():
    budget = 2**20  # elements
    grid = TileGrid((20000, 3, 32, 32), True, "channels_first", budget)
    rows, cols = grid.tile_size
    assert rows * cols > budget // 2
    for tile in list(grid)[:50]:
        runs = list(read_runs(grid.shape, tile.box, True))
        mean_read = sum(n for _, n in runs) / len(runs)
        write = tile.cols[1] - tile.cols[0]
        assert mean_read >= 256 and write >= 256, (mean_read, write)
