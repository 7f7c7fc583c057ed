"""The .npy header reader and writer: versions, corrupt headers, and the
refusal of anything that would need pickle, with proof that nothing ran."""

import os
import struct

import numpy as np
import pytest

from pyflat.npyfile import NpyFormatError, encode_header, read_header


def _save(path, a, version=None):
    with open(path, "wb") as f:
        np.lib.format.write_array(f, a, version=version, allow_pickle=True)


def _read(path):
    with open(path, "rb", buffering=0) as f:
        return read_header(f, "src")


def _raw_npy(path, header_text: bytes, data: bytes = b"", version=(1, 0)):
    """A .npy with a header of our choosing (numpy would refuse to write it)."""
    length_format = "<H" if version == (1, 0) else "<I"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY" + bytes(version) + struct.pack(length_format, len(header_text))
                + header_text + data)


@pytest.mark.parametrize("version", [(1, 0), (2, 0), (3, 0)])
@pytest.mark.parametrize("order", ["C", "F"])
def test_reads_every_version_and_order(tmp_path, version, order):
    a = np.asarray(np.arange(24, dtype=">i4").reshape(2, 3, 4), order=order)
    path = tmp_path / "a.npy"
    _save(path, a, version)
    header = _read(path)
    assert header.version == version
    assert header.shape == (2, 3, 4)
    assert header.dtype == np.dtype(">i4")
    assert header.fortran_order is (order == "F")
    with open(path, "rb") as f:
        f.seek(header.data_offset)
        data = f.read()
    assert data == a.tobytes(order="A")


def test_unicode_field_names_need_version_3(tmp_path):
    dtype = np.dtype([("température", "<f4"), ("日", "<i2", (2,))])
    head = encode_header(dtype, (5, 1))
    assert head[6:8] == bytes([3, 0])
    assert len(head) % 64 == 0
    path = tmp_path / "o.npy"
    path.write_bytes(head + np.zeros((5, 1), dtype).tobytes())
    assert np.load(path).dtype == dtype
    assert _read(path).version == (3, 0)


@pytest.mark.parametrize("dtype, shape, version", [
    (np.dtype("<f8"), (3, 7), (1, 0)),
    (np.dtype([(f"field_{i:05d}_" + "x" * 40, "<f4") for i in range(1500)]), (2, 1), (2, 0)),
])
def test_encode_header_picks_the_oldest_version_numpy_reads(tmp_path, dtype, shape, version):
    head = encode_header(dtype, shape)
    assert tuple(head[6:8]) == version
    assert len(head) % 64 == 0
    path = tmp_path / "o.npy"
    path.write_bytes(head + np.zeros(shape, dtype).tobytes())
    loaded = np.load(path, max_header_size=2**20)
    assert loaded.shape == shape and loaded.dtype == dtype and loaded.flags.c_contiguous
    assert _read(path).shape == shape


class _Armed:
    """Unpickling this runs ``os.mkdir(marker)``: proof of any unpickling."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def _armed_npy(tmp_path, dtype=object):
    marker = tmp_path / "unpickled"
    a = np.empty(3, dtype=dtype)
    if a.dtype.names:
        a["obj"] = _Armed(marker)
    else:
        a[:] = [_Armed(marker)] * 3
    path = tmp_path / "armed.npy"
    np.save(path, a, allow_pickle=True)
    # The payload is live: numpy's pickle loading does run it...
    np.load(path, allow_pickle=True)
    assert marker.is_dir()
    marker.rmdir()
    return path, marker


@pytest.mark.parametrize("dtype", [object, [("x", "<f4"), ("obj", "O")]])
def test_object_dtypes_are_refused_without_unpickling(tmp_path, dtype):
    path, marker = _armed_npy(tmp_path, dtype)
    with pytest.raises(NpyFormatError, match=r"src .*Python objects.*never unpickles"):
        _read(path)
    assert not marker.exists(), "the pickle payload ran"


def test_header_with_code_is_not_evaluated(tmp_path):
    marker = tmp_path / "evaluated"
    text = (b"{'descr': __import__('os').mkdir(%r), 'fortran_order': False, "
            b"'shape': (1,), }\n" % str(marker).encode())
    path = tmp_path / "code.npy"
    _raw_npy(path, text, b"\0" * 8)
    with pytest.raises(NpyFormatError, match="corrupt header: not a dict literal"):
        _read(path)
    assert not marker.exists()


@pytest.mark.parametrize("content, message", [
    (b"", "not a .npy file"),
    (b"\x93NUMP", "not a .npy file"),
    (b"PK\x03\x04 a zip, not an npy", "not a .npy file"),
    (b"\x93NUMPY\x04\x00", r"unsupported \.npy format version 4\.0"),
    (b"\x93NUMPY\x01\x00\x10", "truncated header length"),
    (b"\x93NUMPY\x01\x00\x40\x00{'descr'", "truncated header: expected 64 bytes"),
    (b"\x93NUMPY\x02\x00\xff\xff\xff\x7f", "claims 2147483647 bytes"),
])
def test_corrupt_prefixes(tmp_path, content, message):
    path = tmp_path / "bad.npy"
    path.write_bytes(content)
    with pytest.raises(NpyFormatError, match=message):
        _read(path)


@pytest.mark.parametrize("text, message", [
    (b"{'descr': '<f4', 'fortran_order': False}", "expected a dict with the keys"),
    (b"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}",
     "expected a dict with the keys"),
    (b"[1, 2, 3]", "expected a dict with the keys"),
    (b"{'descr': '<f4', 'fortran_order': False, 'shape': (2,", "not a dict literal"),
    (b"{'descr': '<f4', 'fortran_order': 'no', 'shape': (2,)}", "'fortran_order' must be"),
    (b"{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}", "'shape' must be"),
    (b"{'descr': '<f4', 'fortran_order': False, 'shape': [2]}", "'shape' must be"),
    (b"{'descr': '<f4', 'fortran_order': False, 'shape': (2.0,)}", "'shape' must be"),
    (b"{'descr': '<f4', 'fortran_order': False, 'shape': (True,)}", "'shape' must be"),
    (b"{'descr': 'not a dtype', 'fortran_order': False, 'shape': (2,)}",
     "is not a dtype description"),
    (b"{'descr': 3, 'fortran_order': False, 'shape': (2,)}", "is not a dtype description"),
    (b"{'descr': '\xff\xfe', 'fortran_order': False, 'shape': (2,)}", "not a dtype"),
])
def test_corrupt_header_dicts(tmp_path, text, message):
    path = tmp_path / "bad.npy"
    _raw_npy(path, text + b"\n", b"\0" * 64)
    with pytest.raises(NpyFormatError, match=message):
        _read(path)


def test_bad_utf8_in_a_version_3_header(tmp_path):
    path = tmp_path / "bad.npy"
    _raw_npy(path, b"{'descr': '\xff', 'fortran_order': False, 'shape': (2,)}\n",
             b"\0" * 64, version=(3, 0))
    with pytest.raises(NpyFormatError, match="corrupt header: not utf8"):
        _read(path)


def test_file_shorter_than_its_header_says(tmp_path):
    path = tmp_path / "short.npy"
    np.save(path, np.zeros((10, 10), np.float64))
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) - 1)
    with pytest.raises(NpyFormatError, match="truncated: the header announces 800 bytes "
                                             "of data, the file holds 799"):
        _read(path)


def test_messages_are_one_line_even_for_long_garbage(tmp_path):
    path = tmp_path / "bad.npy"
    _raw_npy(path, b"{'descr':\n\n" + b"x" * 5000 + b"\n")
    with pytest.raises(NpyFormatError) as info:
        _read(path)
    assert "\n" not in str(info.value) and len(str(info.value)) < 300

