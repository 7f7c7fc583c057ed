"""flatten_file: the same bytes as numpy for every layout, dtype and chunk
size; nothing left behind or overwritten on errors; clear errors for bad input."""

import hashlib
import math
import os
import pathlib
import sys
import tempfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pyflat
from pyflat import flatten_file
from pyflat.npyfile import NpyFormatError


def reference(a, data_format="channels_last"):
    if data_format == "channels_first" and a.ndim > 2:
        a = np.moveaxis(a, 1, -1)
    return np.ascontiguousarray(a).reshape(a.shape[0], math.prod(a.shape[1:]))


def save(path, a, version=None):
    with open(path, "wb") as f:
        np.lib.format.write_array(f, a, version=version)


def check(tmp_path, a, data_format="channels_last", chunk_bytes=2**20, version=None):
    src, dst = tmp_path / "src.npy", tmp_path / "dst.npy"
    save(src, a, version)
    result = flatten_file(src, dst, data_format=data_format, chunk_bytes=chunk_bytes,
                          overwrite=True, progress=False)
    expected = reference(a, data_format)
    got = np.load(dst)
    assert got.shape == expected.shape and got.dtype == a.dtype
    assert got.tobytes() == expected.tobytes()
    assert result.shape == expected.shape and result.nbytes == expected.nbytes
    return result


def _scratch_folder():
    """A folder in memory where there is one: fsync costs nothing there, and
    these tests are about the bytes, not durability."""
    return tempfile.TemporaryDirectory(dir="/dev/shm" if os.path.isdir("/dev/shm") else None)


@pytest.fixture
def scratch():
    with _scratch_folder() as folder:
        yield pathlib.Path(folder)


def listing(folder):
    return sorted(os.listdir(folder))


def digest(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


DTYPES = [np.float32, ">i2", np.complex128, np.bool_, "U3", "datetime64[ms]",
          [("x", "<f4"), ("rgb", "u1", (3,))]]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("chunk_bytes", [1, 100, 2**20])
def test_same_bytes_as_numpy(scratch, dtype, order, data_format, chunk_bytes):
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 255, size=(7, 3, 4, 5) + (np.dtype(dtype).itemsize,), dtype=np.uint8)
    a = np.asarray(raw.view(dtype).reshape(7, 3, 4, 5), order=order)
    check(scratch, a, data_format, chunk_bytes)


@pytest.mark.parametrize("version", [(1, 0), (2, 0), (3, 0)])
def test_header_versions(scratch, version):
    a = np.asfortranarray(np.arange(6 * 5 * 4, dtype=np.float64).reshape(6, 5, 4))
    check(scratch, a, "channels_first", 64, version)


def test_fortran_order_many_tiles_realistic_chunk(scratch):
    rng = np.random.default_rng(1)
    a = np.asfortranarray(rng.random((3000, 3, 20, 20), dtype=np.float32))
    check(scratch, a, "channels_first", 2**20)
    check(scratch, a, "channels_last", 100_000)


def test_rows_larger_than_the_chunk(scratch):
    a = np.arange(4 * 3 * 50 * 7, dtype=np.int32).reshape(4, 3, 50, 7)
    check(scratch, a, "channels_first", 256)
    check(scratch, np.asfortranarray(a), "channels_first", 256)


@pytest.mark.parametrize("shape", [(5,), (0,), (0, 3, 2), (4, 0, 2), (1, 1, 1, 1), (3, 1)])
@pytest.mark.parametrize("order", ["C", "F"])
def test_edge_shapes(scratch, shape, order):
    a = np.asarray(np.arange(math.prod(shape), dtype=np.uint16).reshape(shape), order=order)
    check(scratch, a, "channels_first", 4)


def test_zero_itemsize(scratch):
    check(scratch, np.zeros((4, 3), dtype=[]))


@settings(max_examples=120, deadline=None)
@given(shape=st.lists(st.integers(0, 6), min_size=1, max_size=5).map(tuple),
       order=st.sampled_from("CF"),
       data_format=st.sampled_from(["channels_last", "channels_first"]),
       dtype=st.sampled_from(["u1", "<f4", ">f8"]),
       chunk_bytes=st.integers(1, 600))
def test_property_against_numpy(shape, order, data_format, dtype, chunk_bytes):
    a = np.asarray(np.arange(math.prod(shape)).astype(dtype).reshape(shape), order=order)
    with _scratch_folder() as folder:
        check(pathlib.Path(folder), a, data_format, chunk_bytes)


def test_output_is_a_plain_c_order_npy_and_the_result_describes_it(tmp_path):
    a = np.asfortranarray(np.ones((10, 2, 3), np.float32))
    result = check(tmp_path, a)
    dst = tmp_path / "dst.npy"
    with open(dst, "rb") as f:
        assert np.lib.format.read_magic(f) == (1, 0)
        shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(f)
    assert (shape, fortran_order, dtype) == ((10, 6), False, np.float32)
    assert result.src == str(tmp_path / "src.npy") and result.dst == str(dst)
    line = result.summary()
    assert "\n" not in line and "10 rows x 6 float32" in line and "MB/s" in line


def test_overwrite_replaces_and_the_source_is_untouched(tmp_path):
    src, dst = tmp_path / "src.npy", tmp_path / "dst.npy"
    np.save(src, np.arange(12).reshape(3, 4, 1))
    dst.write_bytes(b"old")
    before = digest(src)
    flatten_file(src, dst, overwrite=True, progress=False)
    assert np.load(dst).shape == (3, 4)
    assert digest(src) == before
    assert listing(tmp_path) == ["dst.npy", "src.npy"]


def test_progress_callback_sees_every_byte(tmp_path):
    src, dst = tmp_path / "src.npy", tmp_path / "dst.npy"
    np.save(src, np.zeros((100, 10), np.float64))
    calls = []
    flatten_file(src, dst, chunk_bytes=800, progress=lambda done, total: calls.append((done, total)))
    assert len(calls) == 10
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    assert calls[-1] == (8000, 8000)


def test_progress_true_draws_a_tqdm_bar(tmp_path, capsys):
    pytest.importorskip("tqdm")  # in the [test] extra; optional at run time only
    src = tmp_path / "src.npy"
    np.save(src, np.zeros((100, 10), np.float64))
    flatten_file(src, tmp_path / "dst.npy", chunk_bytes=800, progress=True)
    assert "8.00k" in capsys.readouterr().err


def test_without_tqdm_auto_progress_is_silent_and_true_is_an_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm now fails
    monkeypatch.setattr("pyflat.progress._stderr_is_terminal", lambda: True)
    src = tmp_path / "src.npy"
    np.save(src, np.zeros((10, 10)))
    flatten_file(src, tmp_path / "a.npy")
    assert capsys.readouterr().err == ""
    with pytest.raises(ImportError, match="progress=True needs tqdm"):
        flatten_file(src, tmp_path / "b.npy", progress=True)
    assert not (tmp_path / "b.npy").exists()


# Errors in the middle of a run: nothing under DST's name, no temporary file.

class Boom(Exception):
    pass


@pytest.mark.parametrize("error", [Boom, KeyboardInterrupt])
@pytest.mark.parametrize("existing_dst", [False, True])
def test_an_error_mid_run_leaves_nothing_behind(tmp_path, error, existing_dst):
    src, dst = tmp_path / "src.npy", tmp_path / "dst.npy"
    np.save(src, np.arange(1000.0).reshape(100, 10))
    if existing_dst:
        dst.write_bytes(b"precious")
    before = listing(tmp_path)
    source_digest = digest(src)

    def fail_on_third_chunk(done, total):
        if done >= 3 * 80:
            raise error()

    with pytest.raises(error):
        flatten_file(src, dst, chunk_bytes=80, overwrite=existing_dst,
                     progress=fail_on_third_chunk)
    assert listing(tmp_path) == before
    assert digest(src) == source_digest
    if existing_dst:
        assert dst.read_bytes() == b"precious"


def test_a_dst_appearing_mid_run_is_not_clobbered(tmp_path):
    src, dst = tmp_path / "src.npy", tmp_path / "dst.npy"
    np.save(src, np.zeros((10, 10)))

    def intruder(done, total):
        if not dst.exists():
            dst.write_bytes(b"someone else's")

    with pytest.raises(FileExistsError, match=r"dst: appeared while flattening.*dst\.npy"):
        flatten_file(src, dst, chunk_bytes=80, progress=intruder)
    assert dst.read_bytes() == b"someone else's"
    assert listing(tmp_path) == ["dst.npy", "src.npy"]


class _Armed:
    """Unpickling this runs ``os.mkdir(marker)``: proof of any unpickling."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_a_pickled_npy_is_refused_and_nothing_is_unpickled(tmp_path):
    marker = tmp_path / "unpickled"
    src, dst = tmp_path / "armed.npy", tmp_path / "dst.npy"
    np.save(src, np.array([_Armed(marker), 1], dtype=object), allow_pickle=True)
    np.load(src, allow_pickle=True)  # the payload is live: numpy runs it...
    assert marker.is_dir()
    marker.rmdir()
    with pytest.raises(NpyFormatError, match="holds Python objects.*never unpickles"):
        flatten_file(src, dst, progress=False)
    assert not marker.exists(), "the pickle payload ran"  # ...pyflat does not
    assert listing(tmp_path) == ["armed.npy"]


# Bad input: each a clear exception naming the parameter; DST untouched.

def _bad_files(tmp_path):
    """name -> (path of a bad source, exception, message pattern)."""
    good = np.arange(60, dtype=np.float32).reshape(5, 3, 4)
    files = {}

    def make(name, mutate):
        path = tmp_path / f"{name}.npy"
        np.save(path, good)
        data = bytearray(path.read_bytes())
        path.write_bytes(mutate(data))
        return path

    files["truncated"] = (make("truncated", lambda d: d[:-4]), NpyFormatError,
                          r"src .*truncated: the header announces 240 bytes")
    files["bad magic"] = (make("magic", lambda d: b"\x93NUMPX" + d[6:]), NpyFormatError,
                          r"src .*not a \.npy file")
    files["corrupt dict"] = (make("dict", lambda d: d.replace(b"'shape'", b"'shapf'")),
                             NpyFormatError, r"src .*corrupt header")
    files["cut header"] = (make("cut", lambda d: d[:40]), NpyFormatError,
                           r"src .*truncated header")
    files["empty"] = (make("empty", lambda d: b""), NpyFormatError, "not a .npy file")
    zero_d = tmp_path / "zero_d.npy"
    np.save(zero_d, np.float32(3))
    files["0-d"] = (zero_d, ValueError, r"src .*0-d array; expected at least 1 dimension")
    objects = tmp_path / "objects.npy"
    np.save(objects, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    files["object dtype"] = (objects, NpyFormatError, "never unpickles")
    files["missing"] = (tmp_path / "missing.npy", FileNotFoundError,
                        r"src: No such file.*missing\.npy")
    files["a directory"] = (tmp_path, NpyFormatError, "src .*not a regular file")
    return files


BAD_FILES = ["truncated", "bad magic", "corrupt dict", "cut header", "empty", "0-d",
             "object dtype", "missing", "a directory"]


@pytest.mark.parametrize("case", BAD_FILES)
def test_bad_source_files(tmp_path, case):
    folder = tmp_path / "in"
    folder.mkdir()
    src, exc, message = _bad_files(folder)[case]
    dst = tmp_path / "dst.npy"
    dst.write_bytes(b"precious")
    with pytest.raises(exc, match=message) as info:
        flatten_file(src, dst, overwrite=True, progress=False)
    assert "\n" not in str(info.value)
    assert dst.read_bytes() == b"precious"
    assert listing(tmp_path) == ["dst.npy", "in"]


@pytest.fixture
def src(tmp_path):
    path = tmp_path / "src.npy"
    np.save(path, np.zeros((4, 3, 2), np.float32))
    return path


@pytest.mark.parametrize("spelling", ["same", "relative", "symlink", "hardlink"])
@pytest.mark.parametrize("overwrite", [False, True])
def test_src_and_dst_the_same_file_is_refused(src, tmp_path, monkeypatch, spelling, overwrite):
    before = digest(src)
    if spelling == "same":
        dst = src
    elif spelling == "relative":
        monkeypatch.chdir(tmp_path)
        os.mkdir("sub")
        dst = os.path.join("sub", "..", "src.npy")
    elif spelling == "symlink":
        dst = tmp_path / "link.npy"
        dst.symlink_to(src)
    else:
        dst = tmp_path / "hard.npy"
        os.link(src, dst)
    with pytest.raises(ValueError, match="dst .*is the same file as src"):
        flatten_file(src, dst, overwrite=overwrite, progress=False)
    assert digest(src) == before


def test_existing_dst_is_refused_without_overwrite(src, tmp_path):
    dst = tmp_path / "dst.npy"
    dst.write_bytes(b"precious")
    with pytest.raises(FileExistsError, match=r"dst: exists; pass overwrite=True"):
        flatten_file(src, dst, progress=False)
    assert dst.read_bytes() == b"precious"


def test_dangling_symlink_dst_is_an_existing_dst(src, tmp_path):
    dst = tmp_path / "dst.npy"
    dst.symlink_to(tmp_path / "nowhere")
    with pytest.raises(FileExistsError):
        flatten_file(src, dst, progress=False)


def test_dst_problems(src, tmp_path):
    with pytest.raises(IsADirectoryError, match="dst: is a directory"):
        flatten_file(src, tmp_path, overwrite=True, progress=False)
    with pytest.raises(FileNotFoundError, match="dst: no such folder"):
        flatten_file(src, tmp_path / "nope" / "dst.npy", progress=False)


@pytest.mark.parametrize("kwargs, exc, message", [
    ({"chunk_bytes": 0}, ValueError, "chunk_bytes: expected a positive integer, got 0"),
    ({"chunk_bytes": -5}, ValueError, "chunk_bytes: expected a positive integer"),
    ({"chunk_bytes": 1.5}, TypeError, "chunk_bytes: expected a positive integer, got float"),
    ({"chunk_bytes": "32"}, TypeError, "chunk_bytes"),
    ({"chunk_bytes": True}, TypeError, "chunk_bytes"),
    ({"data_format": "NCHW"}, ValueError, "data_format: expected 'channels_last' or"),
    ({"overwrite": "yes"}, TypeError, "overwrite: expected True or False"),
    ({"progress": "yes"}, TypeError, "progress: expected None, True, False or a callable"),
])
def test_bad_arguments(src, tmp_path, kwargs, exc, message):
    with pytest.raises(exc, match=message):
        flatten_file(src, tmp_path / "dst.npy", **kwargs)
    assert listing(tmp_path) == ["src.npy"]


def test_bad_paths(src):
    with pytest.raises(TypeError, match="src: expected a path"):
        flatten_file(3, "x.npy")
    with pytest.raises(TypeError, match="dst: expected a path"):
        flatten_file(src, None)


def test_exported():
    assert pyflat.flatten_file is flatten_file
    assert "flatten_file" in pyflat.__all__


# --- conversion (issue 14) ------------------------------------------------------

@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
@pytest.mark.parametrize("chunk_bytes", [1, 100, 2**20])
@pytest.mark.parametrize("src_dtype, dtype", [(np.uint8, np.float32), (np.float64, np.float16),
                                              (np.int16, np.int64), (np.float32, np.complex64)])
def test_converts_as_batch_flatten_does(tmp_path, order, data_format, chunk_bytes, src_dtype,
                                        dtype):
    rng = np.random.default_rng(14)
    a = np.asarray(rng.integers(0, 200, (5, 3, 4, 6)), dtype=src_dtype, order=order)
    channels = 3 if data_format == "channels_first" else 6
    kwargs = dict(dtype=dtype, scale=list(range(1, channels + 1)), offset=2)
    src, dst = tmp_path / "src.npy", tmp_path / "dst.npy"
    save(src, a)
    result = flatten_file(src, dst, data_format=data_format, chunk_bytes=chunk_bytes,
                          progress=False, **kwargs)
    want = pyflat.batch_flatten(a, data_format=data_format, **kwargs)
    got = np.load(dst)
    assert got.dtype == np.dtype(dtype) and got.tobytes() == want.tobytes()
    assert result.dtype == np.dtype(dtype) and result.nbytes == want.nbytes


def test_conversion_errors_leave_no_destination(tmp_path):
    src, dst = tmp_path / "src.npy", tmp_path / "dst.npy"
    save(src, np.ones((4, 3)))
    for kwargs, exc, words in [(dict(dtype=np.int8), TypeError, "casting"),
                               (dict(casting="maybe"), ValueError, "casting"),
                               (dict(dtype=np.float32, offset=[1.0, 2.0]), ValueError, "offset"),
                               (dict(dtype=object, casting="unsafe"), ValueError, "dtype")]:
        with pytest.raises(exc, match=words):
            flatten_file(src, dst, progress=False, **kwargs)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["src.npy"]
