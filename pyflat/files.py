"""``flatten_file``: flatten a ``.npy`` on disk into a ``(batch, features)``
``.npy``, with memory bounded by the chunk size rather than the file size.

The source is read in tiles (see :mod:`pyflat.tiles`) into one reused buffer,
each tile is flattened by :func:`pyflat.batch_flatten` into a second reused
buffer and written at its place in the output, which appears under its name
only when complete (see :mod:`pyflat.atomic`).
"""

from __future__ import annotations

import errno
import math
import operator
import os
import stat
import time
from dataclasses import dataclass
from typing import Any, BinaryIO, Callable, Optional, Tuple, Union

import numpy as np

from numpy.typing import DTypeLike

from .api import Casting, DataFormat, Factor, batch_flatten, channels_last_view, check_data_format
from .atomic import name_max, atomic_output
from .convert import Conversion, check_casting, resolve
from .npyfile import NpyHeader, NpyFormatError, encode_header, read_header
from .progress import Progress, check_progress, reporter
from .tiles import Tile, TileGrid, physical_axes, read_runs

__all__ = ["flatten_file", "FlattenResult"]

PathLike = Union[str, bytes, "os.PathLike[str]"]

DEFAULT_CHUNK_BYTES = 64 * 2**20


@dataclass(frozen=True)
class FlattenResult:
    """What :func:`flatten_file` did."""

    src: str
    dst: str
    shape: Tuple[int, int]   # of the output
    dtype: np.dtype
    nbytes: int              # data bytes written (without the header)
    seconds: float           # from opening the source to the fsync'd rename

    @property
    def mb_per_s(self) -> float:
        return self.nbytes / 1e6 / self.seconds if self.seconds > 0 else math.inf

    def summary(self) -> str:
        """One line: rows, columns, MB, seconds and MB/s."""
        return (f"{self.dst}: {self.shape[0]} rows x {self.shape[1]} {self.dtype}, "
                f"{self.nbytes / 1e6:.1f} MB in {self.seconds:.2f} s "
                f"({self.mb_per_s:.0f} MB/s)")


def _path(path: Any, name: str) -> str:
    try:
        return os.fsdecode(os.fspath(path))
    except TypeError:
        raise TypeError(f"{name}: expected a path (str, bytes or os.PathLike), "
                        f"got {type(path).__name__}") from None


def _check_chunk_bytes(chunk_bytes: Any) -> int:
    if isinstance(chunk_bytes, (bool, np.bool_)):
        raise TypeError(f"chunk_bytes: expected a positive integer, got {chunk_bytes!r}")
    try:
        value = operator.index(chunk_bytes)
    except TypeError:
        raise TypeError(f"chunk_bytes: expected a positive integer, got "
                        f"{type(chunk_bytes).__name__}") from None
    if value < 1:
        raise ValueError(f"chunk_bytes: expected a positive integer, got {value}")
    return value


def _renamed(exc: OSError, name: str) -> OSError:
    """``exc`` as the same kind of error, ``errno`` and ``filename`` kept, with
    a message naming the parameter."""
    return type(exc)(exc.errno, f"{name}: {exc.strerror or exc}", exc.filename,
                     None, exc.filename2)


def _stat_source(src: str) -> os.stat_result:
    try:
        info = os.stat(src)
    except OSError as exc:
        raise _renamed(exc, "src") from exc
    if not stat.S_ISREG(info.st_mode):
        raise NpyFormatError(f"src {src!r}: not a regular file")
    return info


def _open_source(src: str) -> Tuple[BinaryIO, NpyHeader]:
    try:
        f = open(src, "rb", buffering=0)
    except OSError as exc:
        raise _renamed(exc, "src") from exc
    try:
        return f, read_header(f, "src")
    except BaseException:
        f.close()
        raise


_KINDS = {stat.S_IFIFO: "FIFO (named pipe)", stat.S_IFCHR: "character device",
          stat.S_IFBLK: "block device", stat.S_IFSOCK: "socket"}


def _check_destination(dst: str, source: os.stat_result, overwrite: bool) -> str:
    """Refuse a DST that must not be written, before a byte is read; the path
    to write: DST, or the file a symbolic link DST points to."""
    name = os.path.basename(dst)
    if not dst:
        raise ValueError("dst: is an empty path; expected the name of a .npy file")
    if name in ("", ".", ".."):
        raise IsADirectoryError(errno.EISDIR, "dst: names a folder, expected the name "
                                              "of a file in one", dst)
    target = dst
    if os.path.islink(dst):  # written through, as numpy.save and cp do
        target = os.path.realpath(dst)
        if not os.path.lexists(target):
            raise FileExistsError(errno.EEXIST, f"dst: is a symbolic link to a missing "
                                                f"file ({target!r}); not written through",
                                  dst)
    try:
        info: Optional[os.stat_result] = os.stat(target)
    except OSError:
        info = None
    if info is not None and os.path.samestat(info, source):
        raise ValueError(f"dst {dst!r}: is the same file as src; flattening in place "
                         f"would destroy the source")
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise IsADirectoryError(errno.EISDIR, "dst: is a directory", dst)
    if info is not None and not stat.S_ISREG(info.st_mode):
        kind = _KINDS.get(stat.S_IFMT(info.st_mode), "special file")
        raise ValueError(f"dst {dst!r}: is a {kind}, not a regular file; pyflat only "
                         f"writes (or replaces) regular files")
    if not overwrite and os.path.lexists(dst):
        raise FileExistsError(errno.EEXIST, "dst: exists; pass overwrite=True "
                                            "(--overwrite) to replace it", dst)
    folder = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(folder):
        raise FileNotFoundError(errno.ENOENT, f"dst: no such folder {folder!r}", dst)
    limit = name_max(folder)
    length = len(os.fsencode(os.path.basename(target)))
    if length > limit:
        raise OSError(errno.ENAMETOOLONG, f"dst: file name too long ({length} bytes; "
                                          f"the file system allows {limit})", dst)
    return target


def _pread_exactly(fd: int, buffer: np.ndarray, offset: int) -> None:
    """Fill ``buffer`` from ``offset`` of the source."""
    view = buffer.data  # a uint8 buffer: slicing counts bytes
    while view:
        count = os.preadv(fd, [view], offset)
        if count == 0:
            raise NpyFormatError("src: the file ended early (was it truncated while "
                                 "being read?)")
        view, offset = view[count:], offset + count


def _pwrite_all(fd: int, buffer: Any, offset: int) -> None:
    """Write all of ``buffer`` (bytes-like) at ``offset`` of the output."""
    view = memoryview(buffer)
    while view:
        try:
            count = os.pwrite(fd, view, offset)
        except OSError as exc:  # no space left, quota, I/O error
            raise _renamed(exc, "dst: writing the temporary file failed") from exc
        view, offset = view[count:], offset + count


def _write_tile(fd: int, flat: np.ndarray, tile: Tile, features: int, itemsize: int,
                data_offset: int) -> None:
    """Write the flattened ``tile`` at its rows and columns of the output."""
    row_bytes = features * itemsize
    if tile.cols == (0, features):  # whole rows: one write
        _pwrite_all(fd, flat, data_offset + tile.rows[0] * row_bytes)
        return
    width = (tile.cols[1] - tile.cols[0]) * itemsize
    for k, row in enumerate(range(*tile.rows)):
        _pwrite_all(fd, flat[k * width:(k + 1) * width],
                    data_offset + row * row_bytes + tile.cols[0] * itemsize)


def _start_writeback(fd: int, offset: int, length: int) -> None:
    """Have the kernel write a finished band of rows to disk now, without
    waiting, and drop it from the page cache once written.  The disk then
    works while the next tiles are flattened (the final fsync has little
    left), and an output larger than memory does not push everything else
    out of the cache."""
    if hasattr(os, "posix_fadvise"):
        os.posix_fadvise(fd, offset, length, os.POSIX_FADV_DONTNEED)


def _read_box(src_fd: int, header: NpyHeader, tile: Tile, buffer: np.ndarray) -> np.ndarray:
    """Read the tile's source box into ``buffer``; the box as an array (a
    view of ``buffer`` with the source's axes)."""
    itemsize = header.dtype.itemsize
    extents = [hi - lo for lo, hi in tile.box]
    position = 0
    for offset, length in read_runs(header.shape, tile.box, header.fortran_order):
        end = position + length * itemsize
        _pread_exactly(src_fd, buffer[position:end], header.data_offset + offset * itemsize)
        position = end
    order = physical_axes(len(extents), header.fortran_order)
    packed = buffer[:position].view(header.dtype).reshape([extents[a] for a in order])
    return packed.transpose(np.argsort(order))


def _tile_factor(factor: Optional[np.ndarray], tile: Tile, channel_axis: int
                 ) -> Optional[np.ndarray]:
    """A per-channel factor's values for the channels in ``tile``'s box."""
    if factor is None or len(factor) == 1:
        return factor
    low, high = tile.box[channel_axis]
    return factor[low:high]


def _copy_tiles(src_fd: int, header: NpyHeader, dst_fd: int, data_offset: int,
                data_format: DataFormat, conversion: Optional[Conversion], chunk_bytes: int,
                update: Callable[[int], None]) -> None:
    """Flatten the source's data into the destination, one tile at a time,
    through two buffers allocated once: the source box, the flat tile
    (converted, with ``conversion``)."""
    dtype, itemsize = header.dtype, header.dtype.itemsize
    result = dtype if conversion is None else conversion.dtype
    grid = TileGrid(header.shape, header.fortran_order, data_format,
                    chunk_bytes // max(itemsize, result.itemsize))
    rows, cols = grid.tile_size
    packed_buffer = np.empty(rows * cols * itemsize, np.uint8)
    flat_buffer = np.empty(rows * cols * result.itemsize, np.uint8)  # untouched by plain copies
    channel_axis = len(header.shape) - 1
    if data_format == "channels_first" and len(header.shape) > 2:
        channel_axis = 1
    for tile in grid:
        box = _read_box(src_fd, header, tile, packed_buffer)
        flat = packed_buffer[:box.nbytes]
        if conversion is not None:
            flat = flat_buffer[:box.size * result.itemsize]
            batch_flatten(box, data_format=data_format, dtype=result, casting="unsafe",
                          scale=_tile_factor(conversion.scale, tile, channel_axis),
                          offset=_tile_factor(conversion.offset, tile, channel_axis),
                          out=flat.view(result).reshape(tile.shape))
        elif not channels_last_view(box, data_format).flags.c_contiguous:
            flat = flat_buffer[:box.nbytes]
            batch_flatten(box, data_format=data_format,
                          out=flat.view(dtype).reshape(tile.shape))
        _write_tile(dst_fd, flat, tile, grid.features, result.itemsize, data_offset)
        if tile.cols[1] == grid.features:  # the last tile of a band of rows
            row_bytes = grid.features * result.itemsize
            _start_writeback(dst_fd, data_offset + tile.rows[0] * row_bytes,
                             (tile.rows[1] - tile.rows[0]) * row_bytes)
        update(box.nbytes)


def flatten_file(src: PathLike, dst: PathLike, *, data_format: DataFormat = "channels_last",
                 dtype: Optional[DTypeLike] = None, casting: Casting = "same_kind",
                 scale: Optional[Factor] = None, offset: Optional[Factor] = None,
                 chunk_bytes: int = DEFAULT_CHUNK_BYTES, overwrite: bool = False,
                 progress: Progress = None) -> FlattenResult:
    """Flatten the array in the ``.npy`` file ``src`` into a new ``.npy`` ``dst``
    of shape ``(batch, features)``, as :func:`pyflat.batch_flatten` would, with
    memory bounded by ``chunk_bytes`` rather than by the file's size.

    Parameters
    ----------
    src : path
        A ``.npy`` file (format 1.0, 2.0 or 3.0, C or Fortran order) of any
        fixed-size dtype with at least one dimension.  Object dtypes are
        refused: reading them would mean unpickling, which is never done.
    dst : path
        Where to write the result.  It is written to a temporary file in the
        same folder, fsync'd, and renamed to ``dst`` only when complete: on
        any error or interruption ``dst`` is not created (or not replaced).
    data_format : {"channels_last", "channels_first"}
        As for :func:`pyflat.batch_flatten`.
    dtype, casting, scale, offset
        As for :func:`pyflat.batch_flatten`: the output is converted in the
        copy of each chunk (``dst`` holds ``dtype``).  Checked before ``dst``
        is created.
    chunk_bytes : int
        The size of a chunk (a tile of the output).  Two buffers of this size
        are the memory used besides the interpreter's.
    overwrite : bool
        Replace an existing ``dst``; refused by default.  ``dst`` being the
        same file as ``src`` is always refused.
    progress : None, bool or callable
        ``None``: a tqdm bar on stderr when tqdm is installed and stderr is a
        terminal.  ``False``: silent.  ``True``: a bar even when stderr is not
        a terminal (needs tqdm).  A callable is called as
        ``progress(done_bytes, total_bytes)`` after each chunk.

    Returns
    -------
    FlattenResult
        Paths, output shape and dtype, bytes and seconds; ``summary()`` gives
        them as one line.

    Raises
    ------
    NpyFormatError (a ValueError)
        ``src`` is not a readable ``.npy``: bad magic, corrupt or truncated
        header, a file shorter than its header says, an object dtype.
    ValueError, TypeError
        A bad argument, a 0-d array, or ``dst`` the same file as ``src``.
    OSError
        ``src`` missing or unreadable, ``dst`` existing (FileExistsError),
        a directory, in a missing folder, or not writable.
    """
    src, dst = _path(src, "src"), _path(dst, "dst")
    data_format = check_data_format(data_format)
    casting = check_casting(casting)  # (dtype and factors need the source's dtype: below)
    chunk_bytes = _check_chunk_bytes(chunk_bytes)
    if not isinstance(overwrite, (bool, np.bool_)):
        raise TypeError(f"overwrite: expected True or False, got {overwrite!r}")
    progress = check_progress(progress)

    start = time.perf_counter()
    target = _check_destination(dst, _stat_source(src), bool(overwrite))
    source, header = _open_source(src)
    with source:
        if not header.shape:
            raise ValueError(f"src {src!r}: holds a 0-d array; expected at least 1 "
                             f"dimension (the batch axis)")
        # The same file as checked above (not swapped meanwhile).
        _check_destination(dst, os.fstat(source.fileno()), bool(overwrite))
        shape = (header.shape[0], math.prod(header.shape[1:]))
        channels = header.shape[1 if data_format == "channels_first" and len(header.shape) > 2
                                else -1]
        conversion = resolve(header.dtype, dtype, casting, scale, offset, channels)
        result = header.dtype if conversion is None else conversion.dtype
        if result.hasobject:
            raise ValueError(f"dtype: {result} holds Python objects, which a .npy file "
                             f"stores pickled; pyflat never writes them")
        file_header = encode_header(result, shape)
        with atomic_output(target, bool(overwrite)) as fd:
            _pwrite_all(fd, file_header, 0)
            if header.nbytes:
                with reporter(progress, header.nbytes, os.path.basename(dst)) as update:
                    _copy_tiles(source.fileno(), header, fd, len(file_header),
                                data_format, conversion, chunk_bytes, update)
    return FlattenResult(src=src, dst=dst, shape=shape, dtype=result,
                         nbytes=math.prod(shape) * result.itemsize,
                         seconds=time.perf_counter() - start)
