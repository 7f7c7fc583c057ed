"""``.npy`` headers (format versions 1.0, 2.0 and 3.0), read and written
without ever unpickling.

A header is a Python dict literal.  It is parsed with :func:`ast.literal_eval`,
which builds literals and runs nothing, and its dtype is built from the literal
description.  Arrays that would need pickle (object dtypes, or structured
dtypes with an object field) are refused before a byte of their data is read.
"""

from __future__ import annotations

import ast
import importlib
import io
import math
import os
import struct
from dataclasses import dataclass
from typing import Any, BinaryIO, Callable, Dict, Optional, Tuple

import numpy as np

__all__ = ["NpyFormatError", "NpyHeader", "read_header", "encode_header"]

MAGIC = b"\x93NUMPY"
# The header-length field of each version, and the header's text encoding.
_LENGTH_FORMATS = {(1, 0): "<H", (2, 0): "<I", (3, 0): "<I"}
_ENCODINGS = {(1, 0): "latin1", (2, 0): "latin1", (3, 0): "utf8"}
_KEYS = {"descr", "fortran_order", "shape"}
_ALIGN = 64               # numpy pads headers so that data starts 64-byte aligned
MAX_HEADER_BYTES = 1 << 20  # generous: numpy's own reader refuses more than 10000 by default
# numpy's limits: dimensions (NPY_MAXDIMS: 64 from numpy 2, 32 before) and bytes.
MAX_DIMS = 64 if np.lib.NumpyVersion(np.__version__) >= "2.0.0" else 32
_INTP_MAX = int(np.iinfo(np.intp).max)


class NpyFormatError(ValueError):
    """A file that is not a ``.npy`` pyflat can read; the message names the
    parameter, the file and what is wrong with it."""


@dataclass(frozen=True)
class NpyHeader:
    """What a ``.npy`` header says about the array that follows it."""

    shape: Tuple[int, ...]
    dtype: np.dtype
    fortran_order: bool
    data_offset: int          # bytes from the start of the file to the data
    version: Tuple[int, int]

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize


def _short(text: object, limit: int = 60) -> str:
    """A one-line, bounded repr of something read from a file, for messages."""
    r = repr(text)
    return r if len(r) <= limit else r[:limit] + "..."


def _read_exactly(f: BinaryIO, count: int, what: str, where: str) -> bytes:
    data = f.read(count)
    if len(data) != count:
        raise NpyFormatError(f"{where}: truncated {what}: expected {count} bytes, "
                             f"the file ends after {len(data)}")
    return data


def _parse_dict(text: str, where: str) -> Dict[str, Any]:
    try:
        header = ast.literal_eval(text)
    except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError):
        raise NpyFormatError(f"{where}: corrupt header: not a dict literal: "
                             f"{_short(text.strip())}") from None
    if not isinstance(header, dict) or set(header) != _KEYS:
        raise NpyFormatError(f"{where}: corrupt header: expected a dict with the keys "
                             f"'descr', 'fortran_order' and 'shape', got {_short(header)}")
    return header


def _parse_shape(shape: object, where: str) -> Tuple[int, ...]:
    if (not isinstance(shape, tuple)
            or not all(type(d) is int and d >= 0 for d in shape)):
        raise NpyFormatError(f"{where}: corrupt header: 'shape' must be a tuple of "
                             f"non-negative integers, got {_short(shape)}")
    if len(shape) > MAX_DIMS:
        raise NpyFormatError(f"{where}: the header's shape has {len(shape)} dimensions; "
                             f"numpy allows at most {MAX_DIMS}")
    return shape


def _check_size(shape: Tuple[int, ...], dtype: np.dtype[Any], where: str) -> None:
    """numpy's own rule: the product of the non-zero dimensions, times the
    itemsize, fits in an ``intp`` (a zero dimension does not excuse a huge
    one: numpy could not load, nor create, the flattened result)."""
    size = max(dtype.itemsize, 1)
    for d in shape:
        size *= max(d, 1)
        if size > _INTP_MAX:
            raise NpyFormatError(f"{where}: the header's shape {_short(shape)} of {dtype} "
                                 f"is too large for numpy (more than {_INTP_MAX} bytes, "
                                 f"counting zero dimensions as 1)")


def _parse_dtype(descr: Any, where: str) -> np.dtype[Any]:
    try:
        dtype = np.lib.format.descr_to_dtype(descr)
    except Exception:  # numpy raises several kinds for malformed descriptions
        raise NpyFormatError(f"{where}: corrupt header: {_short(descr)} is not a "
                             f"dtype description") from None
    if dtype.subdtype is not None:
        raise NpyFormatError(f"{where}: the header's dtype {_short(descr)} is a subarray "
                             f"type; numpy writes its dimensions into 'shape' and cannot "
                             f"load such a header")
    if dtype.hasobject:
        raise NpyFormatError(f"{where}: dtype {dtype} holds Python objects, whose data "
                             f"is a pickle; pyflat never unpickles (it can run "
                             f"arbitrary code) and only reads fixed-size dtypes")
    return dtype


def read_header(f: BinaryIO, name: str = "src") -> NpyHeader:
    """Read and check the header of the ``.npy`` open as ``f`` (at offset 0).

    Also checks that the file holds all the data the header announces.
    ``name`` is the parameter the file came from, for error messages.

    Raises
    ------
    NpyFormatError
        Bad magic, unknown version, truncated or corrupt header, an object
        dtype, or a file shorter than its header says.
    """
    where = f"{name} {getattr(f, 'name', '<stream>')!r}"
    prefix = f.read(len(MAGIC) + 2)
    if len(prefix) < len(MAGIC) + 2 or prefix[:len(MAGIC)] != MAGIC:
        raise NpyFormatError(f"{where}: not a .npy file (it does not start with the "
                             f"magic bytes {MAGIC!r})")
    version = (prefix[-2], prefix[-1])
    if version not in _LENGTH_FORMATS:
        raise NpyFormatError(f"{where}: unsupported .npy format version "
                             f"{version[0]}.{version[1]} (expected 1.0, 2.0 or 3.0)")
    length_format = _LENGTH_FORMATS[version]
    (length,) = struct.unpack(length_format, _read_exactly(
        f, struct.calcsize(length_format), "header length", where))
    if length > MAX_HEADER_BYTES:
        raise NpyFormatError(f"{where}: corrupt header: it claims {length} bytes, "
                             f"more than the {MAX_HEADER_BYTES} allowed")
    raw = _read_exactly(f, length, "header", where)
    try:
        text = raw.decode(_ENCODINGS[version])
    except UnicodeDecodeError:
        raise NpyFormatError(f"{where}: corrupt header: not "
                             f"{_ENCODINGS[version]} text") from None
    fields = _parse_dict(text, where)
    if not isinstance(fields["fortran_order"], bool):
        raise NpyFormatError(f"{where}: corrupt header: 'fortran_order' must be True or "
                             f"False, got {_short(fields['fortran_order'])}")
    header = NpyHeader(shape=_parse_shape(fields["shape"], where),
                       dtype=_parse_dtype(fields["descr"], where),
                       fortran_order=fields["fortran_order"],
                       data_offset=len(prefix) + struct.calcsize(length_format) + length,
                       version=version)
    _check_size(header.shape, header.dtype, where)
    available = os.fstat(f.fileno()).st_size - header.data_offset
    if available < header.nbytes:
        raise NpyFormatError(f"{where}: truncated: the header announces "
                             f"{header.nbytes} bytes of data, the file holds "
                             f"{max(available, 0)}")
    return header


def _write_header_3_0() -> Optional[Callable[[Any, Dict[str, Any], Tuple[int, int]], None]]:
    """numpy's writer for format 3.0, which numpy only has as a private function
    (``numpy.save`` uses it for non-latin1 field names)."""
    for module in ("numpy.lib._format_impl", "numpy.lib.format"):
        try:
            writer = getattr(importlib.import_module(module), "_write_array_header")
        except (ImportError, AttributeError):
            continue
        return writer  # type: ignore[no-any-return]
    return None


def encode_header(dtype: np.dtype[Any], shape: Tuple[int, ...]) -> bytes:
    """The header of a C-order ``.npy`` of ``dtype`` and ``shape``, in the
    oldest format version that can hold it, written by ``numpy.lib.format``:
    byte for byte what ``numpy.save`` writes."""
    fields = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False,
              "shape": tuple(int(d) for d in shape)}
    for writer in (np.lib.format.write_array_header_1_0,
                   np.lib.format.write_array_header_2_0):
        buffer = io.BytesIO()
        try:
            writer(buffer, fields)
            return buffer.getvalue()
        except ValueError:  # too long for the version, or not latin1 (UnicodeEncodeError)
            continue
    writer_3_0 = _write_header_3_0()
    if writer_3_0 is None:  # not in this numpy: the format's rules, by hand
        return _wrap_3_0(repr(fields))
    buffer = io.BytesIO()
    writer_3_0(buffer, fields, (3, 0))
    return buffer.getvalue()


def _wrap_3_0(text: str) -> bytes:
    body = text.encode("utf8")
    prefix = len(MAGIC) + 2 + 4
    body += b" " * (-(prefix + len(body) + 1) % _ALIGN) + b"\n"
    return MAGIC + bytes((3, 0)) + struct.pack("<I", len(body)) + body
