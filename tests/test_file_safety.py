"""Out-of-core safety (issue 12, items 10-15; issue 15, item 6's file part):
what DST may be, permissions, signals, what is reported once DST has its
name, DST checked before a byte is read, .npy headers checked up front and
written as numpy writes them, OSErrors that keep errno and filename."""

from __future__ import annotations

import errno
import io
import os
import signal
import stat
import struct
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest

import pyflat
from pyflat import atomic, flatten_file
from pyflat.atomic import NotDurableError, NotDurableInterrupt
from pyflat.cli import main
from pyflat.npyfile import NpyFormatError, encode_header

from test_flatten_command import ENV, MIB, command, default_signals, digest, reference


@pytest.fixture
def src(tmp_path):
    path = tmp_path / "src.npy"
    np.save(path, np.arange(24, dtype=np.float32).reshape(2, 3, 4))
    return path


def listing(folder):
    return sorted(os.listdir(folder))


def umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


# --- 10. DST that is not a regular file; symbolic links --------------------------------

def special_files(folder):
    fifo = folder / "fifo"
    os.mkfifo(fifo)
    made = {"fifo": fifo}
    try:
        os.mknod(folder / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))  # /dev/null's twin
        made["char device"] = folder / "null"
    except PermissionError:
        pass  # not root: the FIFO stands for special files
    return made


def test_special_file_dst_is_refused_even_with_overwrite(src, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    made = special_files(out)
    for kind, path in made.items():
        mode = os.lstat(path).st_mode
        with pytest.raises(ValueError, match=r"dst .*is a .*not a regular file"):
            flatten_file(src, path, overwrite=True, progress=False)
        assert os.lstat(path).st_mode == mode, kind  # still the same special file
        assert main(["flatten", str(src), str(path), "--overwrite"]) == 2
    assert not any(name.startswith(".pyflat-") for name in listing(out))


def test_cli_refuses_a_fifo_with_one_line_and_status_2(src, tmp_path, capsys):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert main(["flatten", str(src), str(fifo), "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "FIFO" in err and "not a regular file" in err
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_symlink_dst_is_written_through_to_its_target(src, tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    target = store / "features.npy"
    target.write_bytes(b"old")
    os.chmod(target, 0o640)
    link = tmp_path / "link.npy"
    link.symlink_to(target)
    with pytest.raises(FileExistsError):  # an existing DST, as any other
        flatten_file(src, link, progress=False)
    result = flatten_file(src, link, overwrite=True, progress=False)
    assert os.path.islink(link) and os.readlink(link) == str(target)
    assert np.array_equal(np.load(target), reference(np.load(src)))
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o640
    assert result.dst == str(link)
    assert listing(store) == ["features.npy"] and listing(tmp_path) == ["link.npy", "src.npy",
                                                                       "store"]


def test_symlink_to_a_special_file_or_nothing_is_refused(src, tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    to_fifo = tmp_path / "to_fifo.npy"
    to_fifo.symlink_to(fifo)
    with pytest.raises(ValueError, match="FIFO"):
        flatten_file(src, to_fifo, overwrite=True, progress=False)
    dangling = tmp_path / "dangling.npy"
    dangling.symlink_to(tmp_path / "nowhere.npy")
    with pytest.raises(FileExistsError, match="symbolic link to a missing file"):
        flatten_file(src, dangling, overwrite=True, progress=False)
    assert not os.path.lexists(tmp_path / "nowhere.npy")


# --- 11. permission bits ----------------------------------------------------------------------

@pytest.mark.parametrize("mode", [0o600, 0o640, 0o444, 0o755])
def test_overwrite_keeps_the_replaced_files_permission_bits(src, tmp_path, mode):
    dst = tmp_path / "dst.npy"
    dst.write_bytes(b"old")
    os.chmod(dst, mode)
    flatten_file(src, dst, overwrite=True, progress=False)
    assert stat.S_IMODE(os.stat(dst).st_mode) == mode
    assert np.array_equal(np.load(dst), reference(np.load(src)))


def test_new_files_get_the_mode_numpy_save_gives(src, tmp_path):
    np.save(tmp_path / "by_numpy.npy", np.zeros(3))
    flatten_file(src, tmp_path / "by_pyflat.npy", progress=False)
    modes = {stat.S_IMODE(os.stat(tmp_path / name).st_mode)
             for name in ("by_numpy.npy", "by_pyflat.npy")}
    assert modes == {0o666 & ~umask()}


def test_the_temporary_of_a_private_file_is_private(tmp_path):
    src = tmp_path / "src.npy"
    np.save(src, np.zeros((50, 10)))
    dst = tmp_path / "secret.npy"
    dst.write_bytes(b"old")
    os.chmod(dst, 0o600)
    seen = []

    def look(done, total):
        seen.extend(stat.S_IMODE(os.stat(tmp_path / name).st_mode)
                    for name in os.listdir(tmp_path) if name.startswith(".pyflat-"))

    flatten_file(src, dst, overwrite=True, chunk_bytes=800, progress=look)
    assert seen and set(seen) == {0o600}


# --- 12. signals: SIGTERM and SIGHUP clean up as Ctrl-C does -----------------------------------

def _slow_source(folder):
    path = folder / "slow.npy"
    a = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(2048, 4096),
                                  fortran_order=True)
    a[:] = 1.0
    a.flush()
    del a
    return path


def _temporaries(folder):
    return [p for p in folder.iterdir() if p.name.startswith(".pyflat-")]


def _start_and_wait_until_writing(src, dst):
    proc = subprocess.Popen(command(src, dst, "--chunk-mb", "0.01"), env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=default_signals)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        found = _temporaries(dst.parent)
        if found and found[0].stat().st_size > 2 * MIB:
            return proc
        time.sleep(0.005)
    proc.kill()
    pytest.fail("the command finished (or hung) before it could be signalled")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_sigterm_and_sighup_remove_the_temporary_file(tmp_path, signum):
    src = _slow_source(tmp_path)
    before = digest(src)
    out = tmp_path / "out"
    out.mkdir()
    dst = out / "dst.npy"
    proc = _start_and_wait_until_writing(src, dst)
    proc.send_signal(signum)
    proc.communicate(timeout=60)
    assert proc.returncode == -signum  # killed by the signal, as without pyflat
    assert listing(out) == []
    assert digest(src) == before


def test_an_applications_own_sigterm_handler_is_left_alone(tmp_path):
    code = f"""
import os, signal, numpy as np, pyflat
got = []
signal.signal(signal.SIGTERM, lambda signum, frame: got.append(signum))
np.save({str(tmp_path / 's.npy')!r}, np.zeros((100, 10)))
def poke(done, total):
    if not got:
        os.kill(os.getpid(), signal.SIGTERM)
pyflat.flatten_file({str(tmp_path / 's.npy')!r}, {str(tmp_path / 'd.npy')!r},
                    chunk_bytes=800, progress=poke)
print(got == [signal.SIGTERM], signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL)
"""
    done = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True,
                          text=True, timeout=60)
    assert done.stdout.split() == ["True", "True"], done.stderr
    assert (tmp_path / "d.npy").exists()


def test_handlers_are_restored_after_the_call(src, tmp_path):
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)}
    flatten_file(src, tmp_path / "dst.npy", progress=False)
    assert {s: signal.getsignal(s) for s in before} == before


def test_temporary_names_are_recognisable(tmp_path):
    name = atomic.temporary_name(str(tmp_path), "features.npy")
    assert name.startswith(".pyflat-") and name.endswith("-features.npy.tmp")
    import fnmatch
    assert fnmatch.fnmatch(name, atomic.TEMPORARY_GLOB)


# --- 13. a failure once DST has its name ---------------------------------------------------------

def test_folder_fsync_failure_reports_dst_complete(src, tmp_path, monkeypatch, capsys):
    def refuse(folder):
        raise PermissionError(errno.EACCES, "Permission denied", folder)

    monkeypatch.setattr(atomic, "_fsync_folder", refuse)
    dst = tmp_path / "dst.npy"
    with pytest.raises(NotDurableError, match="complete, but its durability is not "
                                              "confirmed") as info:
        flatten_file(src, dst, progress=False)
    assert isinstance(info.value, OSError) and info.value.errno == errno.EACCES
    assert np.array_equal(np.load(dst), reference(np.load(src)))  # DST is complete
    assert listing(tmp_path) == ["dst.npy", "src.npy"]
    os.unlink(dst)
    assert main(["flatten", str(src), str(dst)]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "complete" in err and "not confirmed" in err
    assert dst.exists()


def test_ctrl_c_during_the_folder_fsync_reports_dst_complete(src, tmp_path, monkeypatch,
                                                               capsys):
    def interrupted(folder):
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic, "_fsync_folder", interrupted)
    dst = tmp_path / "dst.npy"
    with pytest.raises(NotDurableInterrupt):  # a KeyboardInterrupt, with the truth
        flatten_file(src, dst, progress=False)
    assert np.array_equal(np.load(dst), reference(np.load(src)))
    os.unlink(dst)
    assert main(["flatten", str(src), str(dst)]) == 3
    assert "complete" in capsys.readouterr().err


def test_failure_between_link_and_unlink_is_reported_as_published(src, tmp_path, monkeypatch):
    """A signal right after the hard link: DST exists complete, so say so."""
    real_unlink = os.unlink
    calls = []

    def unlink_once_interrupted(path, *args, **kwargs):
        if not calls and ".pyflat-" in str(path):
            calls.append(path)
            raise KeyboardInterrupt
        return real_unlink(path, *args, **kwargs)

    monkeypatch.setattr(atomic.os, "unlink", unlink_once_interrupted)
    dst = tmp_path / "dst.npy"
    with pytest.raises(NotDurableInterrupt):
        flatten_file(src, dst, progress=False)
    assert np.array_equal(np.load(dst), reference(np.load(src)))
    assert listing(tmp_path) == ["dst.npy", "src.npy"]


# --- 14. DST checked before a byte is read; long names ------------------------------------------

@pytest.mark.parametrize("dst, exc, message", [
    ("", ValueError, "dst: is an empty path"),
    ("{tmp}/out.npy/", IsADirectoryError, "dst: names a folder"),
    ("{tmp}/.", IsADirectoryError, "dst: names a folder"),
    ("{tmp}/" + "x" * 256, OSError, "dst: file name too long"),
])
def test_bad_dst_is_refused_before_reading(tmp_path, monkeypatch, dst, exc, message):
    src = tmp_path / "src.npy"
    np.save(src, np.zeros((4, 3)))
    opened = []
    real_open = open

    def watch_open(path, *args, **kwargs):
        opened.append(path)
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", watch_open)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(exc, match=message):
        flatten_file(src, dst.format(tmp=tmp_path), progress=False)
    assert opened == []  # SRC not even opened
    assert listing(tmp_path) == ["src.npy"]


@pytest.mark.parametrize("length", [242, 250, 255])
def test_every_name_the_file_system_accepts_works(src, tmp_path, length):
    assert os.pathconf(tmp_path, "PC_NAME_MAX") >= 255
    dst = tmp_path / ("y" * (length - 4) + ".npy")
    flatten_file(src, dst, progress=False)
    assert np.array_equal(np.load(dst), reference(np.load(src)))
    flatten_file(src, dst, overwrite=True, progress=False)
    assert listing(tmp_path) == sorted([dst.name, "src.npy"])


def test_long_multibyte_names_work(src, tmp_path):
    dst = tmp_path / ("é" * 125 + ".npy")  # 254 bytes in UTF-8
    flatten_file(src, dst, progress=False)
    assert np.array_equal(np.load(dst), reference(np.load(src)))
    name = atomic.temporary_name(str(tmp_path), dst.name)
    assert len(os.fsencode(name)) <= 255
    name.encode("utf-8")  # cut between characters, not inside one


# --- 15. headers checked completely, up front, naming SRC -------------------------------------------

def raw_npy(path, header_text, data=b"", version=(1, 0)):
    body = header_text.encode("latin1")
    fmt = "<H" if version == (1, 0) else "<I"
    prefix = 6 + 2 + struct.calcsize(fmt)
    body += b" " * (-(prefix + len(body) + 1) % 64) + b"\n"
    path.write_bytes(b"\x93NUMPY" + bytes(version) + struct.pack(fmt, len(body)) + body + data)
    return path


@pytest.mark.parametrize("header, message", [
    ("{'descr': '<f4', 'fortran_order': False, 'shape': (1,) * 65, }",
     "65 dimensions; numpy allows at most 64"),
    ("{'descr': ('<i4', (2,)), 'fortran_order': False, 'shape': (3,), }",
     "subarray"),
    ("{'descr': '<f8', 'fortran_order': False, 'shape': (0, 2**70), }", "too large"),
    ("{'descr': '<f8', 'fortran_order': False, 'shape': (0, 2**62), }", "too large"),
    ("{'descr': '<u1', 'fortran_order': False, 'shape': (2**40, 2**40), }", "too large"),
])
def test_bad_headers_are_refused_up_front_naming_src(tmp_path, header, message):
    src = raw_npy(tmp_path / "bad.npy", header.replace("(1,) * 65", repr((1,) * 65))
                  .replace("2**70", str(2**70)).replace("2**62", str(2**62))
                  .replace("2**40", str(2**40)))
    dst = tmp_path / "dst.npy"
    with pytest.raises(NpyFormatError, match=message) as info:
        flatten_file(src, dst, progress=False)
    assert "src" in str(info.value) and "bad.npy" in str(info.value)
    assert "\n" not in str(info.value)
    assert listing(tmp_path) == ["bad.npy"]


def test_a_zero_size_header_numpy_can_hold_is_accepted(tmp_path):
    src = raw_npy(tmp_path / "empty.npy",
                  f"{{'descr': '|i1', 'fortran_order': False, 'shape': (0, {2**30}, 4), }}")
    flatten_file(src, tmp_path / "dst.npy", progress=False)
    loaded = np.load(tmp_path / "dst.npy")
    assert loaded.shape == (0, 2**32) and loaded.dtype == np.int8


def test_64_dimensions_work(tmp_path):
    a = np.arange(6, dtype=np.int16).reshape((2, 3) + (1,) * 62)
    src = tmp_path / "deep.npy"
    np.save(src, a)
    flatten_file(src, tmp_path / "dst.npy", progress=False)
    assert np.array_equal(np.load(tmp_path / "dst.npy"), a.reshape(2, 3))


# --- issue 15, item 6: headers byte-identical to numpy's ---------------------------------------------

def numpy_header(a):
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # numpy notes format 2.0 / 3.0
        np.save(buffer, a)
    data = buffer.getvalue()
    return data[:len(data) - a.nbytes]


@pytest.mark.parametrize("dtype", [
    "<f8", ">i2", "|b1", "<U3", "|S5", "<M8[ms]", "<c16", "V7",
    [("x", "<f4"), ("rgb", "u1", (3,))],
    [("é", "<f4"), ("ü", "<i2")],                                    # format 3.0
    [(f"field_{i:05d}_" + "x" * 40, "<f4") for i in range(1500)],   # format 2.0
], ids=lambda d: str(d)[:40])
@pytest.mark.parametrize("shape", [(0, 1), (3, 1), (2, 7), (5, 123456)])
def test_headers_are_byte_identical_to_numpy_save(dtype, shape):
    dtype = np.dtype(dtype)
    if dtype.itemsize * np.prod(shape) > 2**24:
        shape = shape[:1] + (3,)
    assert encode_header(dtype, shape) == numpy_header(np.zeros(shape, dtype))


@pytest.mark.parametrize("shape", [(0, 2**62), (2**40, 0), (2**31, 5)])
def test_headers_of_huge_shapes_are_byte_identical_to_numpy_save(shape):
    dtype = np.dtype("V0")  # zero bytes an element: numpy can save any shape of it
    assert encode_header(dtype, shape) == numpy_header(np.zeros(shape, dtype))


# --- issue 15, item 6: OSErrors keep errno and filename ----------------------------------------------

def test_missing_src_keeps_errno_and_filename(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError) as info:
        flatten_file("missing.npy", "out.npy", progress=False)
    assert info.value.errno == errno.ENOENT and info.value.filename == "missing.npy"
    assert "src" in str(info.value)


def test_dst_oserrors_keep_errno_and_filename(src, tmp_path):
    existing = tmp_path / "existing.npy"
    existing.write_bytes(b"x")
    with pytest.raises(FileExistsError) as info:
        flatten_file(src, existing, progress=False)
    assert info.value.errno == errno.EEXIST and info.value.filename == str(existing)
    with pytest.raises(IsADirectoryError) as info:
        flatten_file(src, tmp_path, overwrite=True, progress=False)
    assert info.value.errno == errno.EISDIR and info.value.filename == str(tmp_path)
    nowhere = tmp_path / "no" / "dst.npy"
    with pytest.raises(FileNotFoundError) as info:
        flatten_file(src, nowhere, progress=False)
    assert info.value.errno == errno.ENOENT and info.value.filename == str(nowhere)


def test_write_errors_keep_errno(src, tmp_path, monkeypatch):
    def full(fd, data, offset):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "pwrite", full)
    with pytest.raises(OSError) as info:
        flatten_file(src, tmp_path / "dst.npy", progress=False)
    assert info.value.errno == errno.ENOSPC and "dst" in str(info.value)
    assert listing(tmp_path) == ["src.npy"]


def test_unreadable_folder_keeps_errno(src, tmp_path):
    if os.geteuid() == 0:
        pytest.skip("root reads everything")
    locked = tmp_path / "locked"
    locked.mkdir()
    os.chmod(locked, 0)
    try:
        with pytest.raises(PermissionError) as info:
            flatten_file(locked / "x.npy", tmp_path / "dst.npy", progress=False)
        assert info.value.errno == errno.EACCES and info.value.filename is not None
    finally:
        os.chmod(locked, 0o700)


# --- 6. data_format read case-insensitively here too ---------------------------------------------

def test_flatten_file_and_the_command_read_data_format_like_keras(tmp_path):
    a = np.arange(2 * 3 * 4 * 5, dtype=np.int32).reshape(2, 3, 4, 5)
    src = tmp_path / "src.npy"
    np.save(src, a)
    flatten_file(src, tmp_path / "a.npy", data_format="Channels_First", chunk_bytes=64,
                 progress=False)
    assert np.array_equal(np.load(tmp_path / "a.npy"), reference(a, "channels_first"))
    assert main(["flatten", str(src), str(tmp_path / "b.npy"), "--data-format",
                 "CHANNELS_FIRST", "--no-progress"]) == 0
    assert np.array_equal(np.load(tmp_path / "b.npy"), reference(a, "channels_first"))
