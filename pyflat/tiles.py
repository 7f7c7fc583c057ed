"""How to flatten an array stored in a file in pieces of bounded size.

The output is the ``(n, features)`` matrix, split into tiles of whole rows
times a range of columns.  Each tile comes from a rectangular *box* of the
source array (a range of rows, and on the feature axes the box whose
channels-last C order is that range of columns), which is read from the file
in its maximal contiguous runs.

- C-order source: rows are contiguous in the file, so a tile is a block of
  whole rows (one read, one write); only a row larger than the budget is
  split into column ranges.
- Fortran-order source: the batch axis varies fastest in the file and slowest
  in the output, so the copy is a transpose.  Tiles are about square
  (``sqrt(budget)`` rows by ``sqrt(budget)`` columns) so that reads (runs of
  ``rows`` elements) and writes (runs of ``columns`` elements) are both long.

Pure arithmetic on shapes: no I/O here.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Iterator, List, Sequence, Tuple

__all__ = ["Tile", "TileGrid", "feature_axes", "read_runs"]

Range = Tuple[int, int]  # [start, stop)


def feature_axes(ndim: int, data_format: str) -> List[int]:
    """The source axes in the order they are flattened (the slowest first):
    ``channels_first`` moves axis 1 last, as :func:`pyflat.batch_flatten` does."""
    axes = list(range(1, ndim))
    if data_format == "channels_first" and ndim > 2:
        axes = axes[1:] + axes[:1]
    return axes


@dataclass(frozen=True)
class Tile:
    """Output rows ``rows`` x columns ``cols``, made from the source ``box``
    (one range per source axis)."""

    rows: Range
    cols: Range
    box: Tuple[Range, ...]

    @property
    def shape(self) -> Tuple[int, int]:
        return (self.rows[1] - self.rows[0], self.cols[1] - self.cols[0])


def _column_blocks(fshape: Sequence[int], max_cols: int) -> Iterator[Tuple[Range, List[Range]]]:
    """Split the C-order columns of ``fshape`` into ranges of at most
    ``max_cols`` that are boxes: a fixed prefix, a range on one axis, whole
    trailing axes."""
    total = math.prod(fshape)
    if total <= max_cols:
        yield (0, total), [(0, d) for d in fshape]
        return
    # suffix[j] = prod(fshape[j:]): the columns one step along axis j - 1 spans
    suffix = [math.prod(fshape[j:]) for j in range(len(fshape) + 1)]
    split = next(j for j in range(len(fshape)) if suffix[j + 1] <= max_cols)
    granule, size = suffix[split + 1], fshape[split]
    pieces = -(-size // (max_cols // granule))
    step = -(-size // pieces)  # even pieces: no sliver at the end
    whole = [(0, d) for d in fshape[split + 1:]]
    for prefix in itertools.product(*map(range, fshape[:split])):
        start = sum(p * suffix[j + 1] for j, p in enumerate(prefix))
        for lo in range(0, size, step):
            hi = min(lo + step, size)
            cols = (start + lo * granule, start + hi * granule)
            yield cols, [(p, p + 1) for p in prefix] + [(lo, hi)] + whole


@dataclass(frozen=True)
class TileGrid:
    """The tiles that flatten a source of ``shape`` stored in C or Fortran
    order, each of at most ``budget`` elements (at least one row element)."""

    shape: Tuple[int, ...]
    fortran_order: bool
    data_format: str
    budget: int  # elements

    @property
    def axes(self) -> List[int]:
        return feature_axes(len(self.shape), self.data_format)

    @property
    def features(self) -> int:
        return math.prod(self.shape[1:])

    @property
    def tile_size(self) -> Tuple[int, int]:
        """(rows, columns) of a full tile; the last ones may be smaller."""
        n, features = self.shape[0], max(self.features, 1)
        budget = max(self.budget, 1)
        if not self.fortran_order:
            if features <= budget:
                return (min(n, budget // features), features)
            return (1, budget)
        rows = max(1, min(n, max(math.isqrt(budget), budget // features)))
        return (rows, min(features, budget // rows))

    def __iter__(self) -> Iterator[Tile]:
        n = self.shape[0]
        if n == 0 or self.features == 0:
            return
        rows, cols = self.tile_size
        axes = self.axes
        fshape = [self.shape[a] for a in axes]
        for r0 in range(0, n, rows):
            row_range = (r0, min(n, r0 + rows))
            for col_range, ranges in _column_blocks(fshape, cols):
                box = [row_range] * len(self.shape)
                for axis, r in zip(axes, ranges):
                    box[axis] = r
                yield Tile(row_range, col_range, tuple(box))


def physical_axes(ndim: int, fortran_order: bool) -> List[int]:
    """Source axes from the slowest varying in the file to the fastest."""
    return list(range(ndim))[::-1] if fortran_order else list(range(ndim))


def read_runs(shape: Sequence[int], box: Sequence[Range],
              fortran_order: bool) -> Iterator[Tuple[int, int]]:
    """``(element offset, length)`` of the contiguous runs of ``box`` in a
    file holding an array of ``shape``, in file order.  Read one after the
    other, they give the box packed in the file's order."""
    order = physical_axes(len(shape), fortran_order)
    strides = {}
    stride = 1
    for axis in reversed(order):
        strides[axis] = stride
        stride *= shape[axis]
    # Merge the fastest axes into one run while the box spans them whole.
    run, base, outer = 1, 0, len(order)
    while outer > 0:
        axis = order[outer - 1]
        lo, hi = box[axis]
        run *= hi - lo
        base += lo * strides[axis]
        outer -= 1
        if hi - lo != shape[axis]:
            break
    slow = order[:outer]
    for index in itertools.product(*(range(*box[a]) for a in slow)):
        yield base + sum(i * strides[a] for i, a in zip(index, slow)), run
