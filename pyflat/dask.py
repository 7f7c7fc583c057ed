"""pyflat for Dask arrays: the same flattening, lazily, one block at a time.

Every output block is one input block flattened by pyflat's kernel
(``blockwise``), so nothing moves between workers when the axes being merged
are already whole in each block.  When they are split, they are rechunked into
single chunks first (the only step that moves data), and the kept axis is split
where needed so that blocks stay within dask's ``array.chunk-size``.

Importing this module imports dask; ``import pyflat`` does not.  Install with
``pip install 'pyflat[dask]'``.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Optional, Tuple, Union

import dask
import dask.array as da
import numpy as np
from dask.array.utils import meta_from_array
from dask.utils import parse_bytes
from numpy.typing import DTypeLike

from . import api
from .api import Casting, DataFormat, Factor
from .convert import resolve

__all__ = ["batch_flatten", "flatten"]

# Dask runs one task per core: the parallelism is across blocks, so each
# block is copied on the thread that runs its task.
_BLOCK_THREADS = 1


def _check_dask_array(x: Any) -> da.Array:
    if not isinstance(x, da.Array):
        raise TypeError(f"x: expected a dask.array.Array, got {type(x).__name__} "
                        f"(use pyflat.batch_flatten / pyflat.flatten for in-memory arrays)")
    # pyflat flattens numpy blocks; a masked, sparse or GPU block would lose
    # its mask or fail on the workers, so refuse it here.
    meta = meta_from_array(x)
    if type(meta) is not np.ndarray:
        raise TypeError(f"x: expected a dask array of numpy.ndarray blocks, "
                        f"got blocks of type {type(meta).__name__}")
    return x


def _check_known(x: da.Array, axes: range) -> None:
    for axis in axes:
        if math.isnan(x.shape[axis]):
            raise ValueError(f"x: the size of axis {axis} is unknown; call "
                             f"x.compute_chunk_sizes() first")


def _split(chunks: tuple[int, ...], most: int) -> tuple[int, ...]:
    """``chunks`` with each chunk cut into near-equal parts of at most ``most``."""
    parts = []
    for chunk in chunks:
        count = max(1, -(-chunk // most))
        base, extra = divmod(chunk, count)
        parts.extend([base + 1] * extra + [base] * (count - extra))
    return tuple(parts)


def _whole(x: da.Array, kept: int, merged: range) -> da.Array:
    """``x`` with the ``merged`` axes in single chunks.

    Untouched when they already are.  Otherwise the ``kept`` axis keeps its
    chunk boundaries, but a chunk is cut further where a block would exceed
    dask's ``array.chunk-size``: merging the feature chunks multiplies the
    block size, and a block must fit in a worker's memory.
    """
    if all(len(x.chunks[axis]) == 1 for axis in merged):
        return x
    # -1: one chunk along the axis; a tuple: these chunks.
    spec: dict[int, Union[int, tuple[int, ...]]] = {axis: -1 for axis in merged}
    # The bytes of one block per unit of the kept axis, once merged.
    slab = x.dtype.itemsize * math.prod(
        x.shape[axis] if axis in merged else max(x.chunks[axis])
        for axis in range(x.ndim) if axis != kept)
    if slab > 0 and not math.isnan(slab) and not any(map(math.isnan, x.chunks[kept])):
        limit = parse_bytes(dask.config.get("array.chunk-size"))
        spec[kept] = _split(x.chunks[kept], max(1, limit // slab))
    rechunked: da.Array = x.rechunk(spec)
    return rechunked


def _single(blocks: Any) -> np.ndarray:
    """The one block behind the nested lists that blockwise passes for the
    merged axes (each is whole, so each list holds one element)."""
    while isinstance(blocks, list):
        (blocks,) = blocks
    block: np.ndarray = blocks
    return block


def _flatten_block(blocks: Any, data_format: DataFormat,
                   conversion: Dict[str, Any]) -> np.ndarray:
    return api.batch_flatten(_single(blocks), data_format=data_format,
                             num_threads=_BLOCK_THREADS, **conversion)


def _flatten_dims_block(blocks: Any, start: int, end: int,
                        conversion: Dict[str, Any]) -> np.ndarray:
    return api.flatten(_single(blocks), start, end, num_threads=_BLOCK_THREADS, **conversion)


def _conversion(x: da.Array, channel_axis: int, dtype: Any, casting: Any, scale: Any,
                offset: Any) -> Tuple[Dict[str, Any], np.dtype, bool]:
    """The conversion arguments checked now (not on the workers): the block
    function's keywords, the result dtype, and whether the factors are per
    channel (then ``channel_axis`` must be whole in each block)."""
    channels = x.shape[channel_axis] if x.ndim else 1
    per_channel = any(f is not None and np.ndim(f) == 1 and len(f) != 1 for f in (scale, offset))
    if per_channel and math.isnan(channels):
        _check_known(x, range(channel_axis, channel_axis + 1))
    checked = resolve(x.dtype, dtype, casting, scale, offset, channels)
    keywords = dict(dtype=dtype, casting=casting, scale=scale, offset=offset)
    return keywords, x.dtype if checked is None else checked.dtype, per_channel


def _blockwise(*args: Any, **kwargs: Any) -> da.Array:
    """``da.blockwise``, with the return type dask does not annotate."""
    result: da.Array = da.blockwise(*args, **kwargs)
    return result


def _merge_axes(x: da.Array, start: int, end: int, block_function: Any,
                *args: Any, token: str, dtype: np.dtype) -> da.Array:
    """Axes ``start`` to ``end`` of ``x`` merged into one, by ``block_function``
    on each block; the axes after ``start`` must be whole in every block.

    ``blockwise`` with ``concatenate=False``: ``map_blocks(drop_axis=...)``
    would concatenate each block with itself first, one extra copy of it.
    """
    inner = math.prod(x.shape[start + 1:end + 1])
    return _blockwise(
        block_function, tuple(range(start + 1)) + tuple(range(end + 1, x.ndim)),
        x, tuple(range(x.ndim)), *[part for arg in args for part in (arg, None)],
        adjust_chunks={start: lambda chunk: chunk * inner}, concatenate=False,
        token=token, dtype=dtype,
        meta=np.empty((0,) * (x.ndim - end + start), dtype=dtype))


def batch_flatten(x: da.Array, *, data_format: DataFormat = "channels_last",
                  dtype: Optional[DTypeLike] = None, casting: Casting = "same_kind",
                  scale: Optional[Factor] = None,
                  offset: Optional[Factor] = None) -> da.Array:
    """Flatten all axes but the first of a dask array, lazily.

    ``(batch, d1, ..., dk) -> (batch, d1*...*dk)`` as :func:`pyflat.batch_flatten`;
    ``(batch,)`` gives ``(batch, 1)``.

    Parameters
    ----------
    x : dask.array.Array
        At least 1-d, with numpy blocks.
    data_format : {"channels_last", "channels_first"}
        ``"channels_first"`` moves axis 1 to the end before flattening.
    dtype, casting, scale, offset
        As for :func:`pyflat.batch_flatten`, converting each block in its
        copy; checked here, before anything is computed.

    Returns
    -------
    dask.array.Array
        Chunked along the batch axis only, of ``dtype`` (default ``x``'s).  When the
        feature axes of ``x`` are already whole in each block, the batch
        chunks are ``x``'s and no data moves between workers; otherwise the
        feature axes are rechunked first (see the module docstring).
    """
    x = _check_dask_array(x)
    data_format = api.check_data_format(data_format)
    if x.ndim == 0:
        raise ValueError("x: expected at least 1 dimension (the batch axis), "
                         "got a 0-d array")
    features = range(1, x.ndim)
    _check_known(x, features)
    channel_axis = 1 if data_format == "channels_first" and x.ndim > 2 else x.ndim - 1
    conversion, result, per_channel = _conversion(x, channel_axis, dtype, casting, scale, offset)
    x = _whole(x, 0, features)
    if x.ndim == 1:
        if per_channel:  # one factor per element of the batch axis: it must be whole
            x = x.rechunk(-1)
        return _blockwise(_flatten_block, (0, 1), x, (0,), data_format, None, conversion, None,
                          new_axes={1: 1}, token="pyflat-batch_flatten",
                          dtype=result, meta=np.empty((0, 0), dtype=result))
    return _merge_axes(x, 1, x.ndim - 1, _flatten_block, data_format, conversion,
                       token="pyflat-batch_flatten", dtype=result)


def flatten(x: da.Array, start_dim: int = 0, end_dim: int = -1, *,
            dtype: Optional[DTypeLike] = None, casting: Casting = "same_kind",
            scale: Optional[Factor] = None, offset: Optional[Factor] = None) -> da.Array:
    """Merge axes ``start_dim`` to ``end_dim`` (inclusive) of a dask array into
    one, lazily, as :func:`pyflat.flatten` (and ``torch.flatten``) does.

    Only the axes after ``start_dim`` up to ``end_dim`` need to be whole in
    each block (they are rechunked when they are not): the chunks of
    ``start_dim`` itself are kept, each multiplied by the size of the merged
    axes after it.  A 0-d input gives shape ``(1,)``; merging a single axis,
    without conversion, returns ``x`` itself.  ``dtype``, ``casting``,
    ``scale`` and ``offset`` are as for :func:`pyflat.flatten` (per-channel
    factors apply along the last axis, which is then made whole in each
    block too).
    """
    x = _check_dask_array(x)
    api.flatten_shape(x.shape, start_dim, end_dim)  # checks the dims as numpy does
    ndim = max(x.ndim, 1)
    start = api.normalize_dim(start_dim, "start_dim", ndim)
    end = api.normalize_dim(end_dim, "end_dim", ndim)
    conversion, result, per_channel = _conversion(x, x.ndim - 1, dtype, casting, scale, offset)
    if x.ndim == 0:
        return _blockwise(_flatten_dims_block, (0,), x, (), 0, None, 0, None, conversion, None,
                          new_axes={0: 1}, token="pyflat-flatten",
                          dtype=result, meta=np.empty((0,), dtype=result))
    if start == end and result == x.dtype and scale is None and offset is None:
        return x
    merged = range(start + 1, end + 1)
    _check_known(x, merged)
    x = _whole(x, start, merged)
    if per_channel and len(x.chunks[-1]) > 1:
        x = x.rechunk({x.ndim - 1: -1})
    return _merge_axes(x, start, end, _flatten_dims_block, start, end, conversion,
                       token="pyflat-flatten", dtype=result)
