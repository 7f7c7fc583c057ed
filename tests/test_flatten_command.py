"""``pyflat flatten``: results, one-line errors with exit status 2, progress
only on a terminal, no DST after SIGKILL or Ctrl-C, and memory bounded by the
chunk size (peak RSS of the real command in a subprocess)."""

import fcntl
import hashlib
import math
import os
import pathlib
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time

import numpy as np
import pytest

from pyflat.cli import main

ROOT = pathlib.Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
MIB = 2**20


def reference(a, data_format="channels_last"):
    if data_format == "channels_first" and a.ndim > 2:
        a = np.moveaxis(a, 1, -1)
    return np.ascontiguousarray(a).reshape(a.shape[0], math.prod(a.shape[1:]))


def command(*args):
    return [sys.executable, "-m", "pyflat", "flatten", *map(str, args)]


def digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(MIB), b""):
            h.update(block)
    return h.hexdigest()


def test_flattens_and_prints_a_summary(tmp_path, capsys):
    a = np.asfortranarray(np.arange(40 * 3 * 4 * 5, dtype=np.float32).reshape(40, 3, 4, 5))
    np.save(tmp_path / "src.npy", a)
    status = main(["flatten", str(tmp_path / "src.npy"), str(tmp_path / "dst.npy"),
                   "--data-format", "channels_first", "--chunk-mb", "0.001"])
    out, err = capsys.readouterr()
    assert status == 0 and err == ""
    assert np.load(tmp_path / "dst.npy").tobytes() == reference(a, "channels_first").tobytes()
    assert out.count("\n") == 1
    assert "40 rows x 60 float32, 0.0 MB in" in out and "MB/s" in out


def test_listed_in_pyflat_help(capsys):
    assert main(["--help"]) == 0
    assert "flatten" in capsys.readouterr().out


def test_python_m_pyflat_flatten(tmp_path):
    np.save(tmp_path / "src.npy", np.ones((3, 2, 2), np.int8))
    done = subprocess.run(command(tmp_path / "src.npy", tmp_path / "dst.npy"),
                          capture_output=True, text=True, env=ENV, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # not a terminal: no bar
    assert np.load(tmp_path / "dst.npy").shape == (3, 4)


# Bad input: one line on stderr, exit status 2, DST untouched.

def _case(tmp_path, name):
    """(SRC, DST, extra args, expected message) for each bad-input case."""
    src, dst = tmp_path / "src.npy", tmp_path / "dst.npy"
    np.save(src, np.arange(24, dtype=np.float32).reshape(2, 3, 4))
    data = src.read_bytes()
    if name == "missing src":
        return tmp_path / "nope.npy", dst, [], "No such file"
    if name == "same file":
        return src, src, ["--overwrite"], "same file as src"
    if name == "same file via symlink":
        (tmp_path / "link.npy").symlink_to(src)
        return src, tmp_path / "link.npy", ["--overwrite"], "same file as src"
    if name == "existing dst":
        dst.write_bytes(b"precious")
        return src, dst, [], "exists; pass overwrite=True (--overwrite)"
    bad = tmp_path / "bad.npy"
    if name == "truncated":
        bad.write_bytes(data[:-1])
        message = "truncated: the header announces 96 bytes"
    elif name == "corrupt magic":
        bad.write_bytes(b"\x00" + data[1:])
        message = "not a .npy file"
    elif name == "corrupt header":
        bad.write_bytes(data.replace(b"'descr'", b"'descx'"))
        message = "corrupt header"
    elif name == "0-d":
        np.save(bad, np.int64(7))
        message = "0-d array"
    elif name == "object dtype":
        np.save(bad, np.array([1, "x"], dtype=object), allow_pickle=True)
        message = "never unpickles"
    return bad, dst, [], message


CASES = ["missing src", "same file", "same file via symlink", "existing dst", "truncated",
         "corrupt magic", "corrupt header", "0-d", "object dtype"]


@pytest.mark.parametrize("name", CASES)
def test_bad_input_one_line_exit_2(tmp_path, capsys, name):
    src, dst, extra, message = _case(tmp_path, name)
    dst_before = dst.read_bytes() if dst.exists() else None
    listing = sorted(os.listdir(tmp_path))
    status = main(["flatten", str(src), str(dst), *extra])
    out, err = capsys.readouterr()
    assert status == 2 and out == ""
    assert err.startswith("pyflat flatten: error: ") and err.count("\n") == 1
    assert message in err
    assert sorted(os.listdir(tmp_path)) == listing
    assert (dst.read_bytes() if dst.exists() else None) == dst_before


def test_a_bad_file_in_a_real_process_gives_no_traceback(tmp_path):
    src, dst, _, message = _case(tmp_path, "truncated")
    done = subprocess.run(command(src, dst), capture_output=True, text=True, env=ENV,
                          timeout=60)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and message in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("args, message", [
    (["--chunk-mb"], "--chunk-mb: expected one argument"),
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["--chunk-mb", "0"], "--chunk-mb: expected a positive number of MiB, got '0'"),
    (["--chunk-mb", "lots"], "--chunk-mb: expected a positive number of MiB"),
    (["--chunk-mb", "nan"], "--chunk-mb: expected a positive number of MiB"),
    (["--data-format", "NCHW"], "--data-format: invalid choice: 'NCHW'"),
])
def test_bad_options_exit_2(tmp_path, capsys, args, message):
    np.save(tmp_path / "src.npy", np.zeros((2, 2)))
    with pytest.raises(SystemExit) as info:
        main(["flatten", str(tmp_path / "src.npy"), str(tmp_path / "dst.npy"), *args])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("pyflat flatten: error: ") and err.count("\n") == 1
    assert message in err
    assert not (tmp_path / "dst.npy").exists()


# Progress: a bar on a terminal only.

def _stderr_through_a_terminal(args):
    """Run the command with stderr on a pseudo-terminal; what it wrote there."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    proc = subprocess.Popen(command(*args), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=slave, env=ENV)
    os.close(slave)
    chunks = []
    while True:
        ready, _, _ = select.select([master], [], [], 60)
        try:
            data = os.read(master, 4096) if ready else b""
        except OSError:  # EIO: the terminal's other side is closed
            data = b""
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(timeout=60) == 0
    return b"".join(chunks).decode(errors="replace")


def test_progress_bar_on_a_terminal_and_not_with_no_progress(tmp_path):
    pytest.importorskip("tqdm")  # in the [test] extra; optional at run time only
    np.save(tmp_path / "src.npy", np.zeros((100, 1000), np.float32))
    shown = _stderr_through_a_terminal([tmp_path / "src.npy", tmp_path / "a.npy",
                                        "--chunk-mb", "0.01"])
    assert "%|" in shown and "400k" in shown
    hidden = _stderr_through_a_terminal([tmp_path / "src.npy", tmp_path / "b.npy",
                                         "--no-progress"])
    assert hidden == ""


# Interrupted runs: nothing under DST's name, the source unchanged.

def _slow_source(folder):
    """A Fortran-order file that takes seconds to flatten with tiny chunks."""
    src = folder / "src.npy"
    a = np.lib.format.open_memmap(src, mode="w+", dtype=np.float32, shape=(4096, 4096),
                                  fortran_order=True)
    a[:] = np.arange(4096, dtype=np.float32)
    a.flush()
    del a
    return src


def default_signals():
    """In a child about to be signalled: the default dispositions, which a
    test run started under nohup or as a background job would otherwise
    pass on as ignored (the command then rightly keeps SIGHUP or SIGINT
    ignored, and finishes)."""
    for signum in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)


def _start_and_wait_until_writing(src, dst):
    proc = subprocess.Popen(command(src, dst, "--chunk-mb", "0.01"), env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=default_signals)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        temporary = [p for p in dst.parent.iterdir() if p.name.startswith(".pyflat-")]
        if temporary and temporary[0].stat().st_size > 4 * MIB:  # well into the data
            return proc
        time.sleep(0.005)
    proc.kill()
    pytest.fail("the command finished (or hung) before it could be interrupted")


@pytest.fixture(scope="module")
def slow_source(tmp_path_factory):
    return _slow_source(tmp_path_factory.mktemp("slow"))


def test_sigkill_mid_run_leaves_no_dst_and_the_source_unchanged(slow_source, tmp_path):
    before = digest(slow_source)
    dst = tmp_path / "dst.npy"
    proc = _start_and_wait_until_writing(slow_source, dst)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL
    assert not os.path.lexists(dst)
    assert digest(slow_source) == before
    # Only the hidden temporary can stay behind: nothing cleans up after SIGKILL.
    assert all(p.name.startswith(".pyflat-") and p.name.endswith("-dst.npy.tmp")
               for p in tmp_path.iterdir())


def test_ctrl_c_mid_run_leaves_no_dst_and_no_temporary_file(slow_source, tmp_path):
    before = digest(slow_source)
    dst = tmp_path / "dst.npy"
    proc = _start_and_wait_until_writing(slow_source, dst)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert err == "pyflat flatten: interrupted; DST left untouched\n"
    assert list(tmp_path.iterdir()) == []
    assert digest(slow_source) == before


# Memory: bounded by the chunk size, not the file size.

# Started from a small interpreter: a child forked from this big test process
# would count this process's memory in its peak RSS (ru_maxrss spans the fork).
_MEASURE = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, usage = os.wait4(child.pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)
"""


def _peak_rss_mb(args):
    """Run the command; its exit status and peak resident set size in MB."""
    done = subprocess.run([sys.executable, "-c", _MEASURE, *command(*args)], env=ENV,
                          capture_output=True, text=True, check=True)
    status, kib = map(int, done.stdout.split())
    return status, kib / 1024


def _big_source(path, megabytes, fortran_order):
    """A float32 (n, 3, 100, 100) file of about ``megabytes``, written in pieces."""
    n = int(megabytes * 1e6 // (3 * 100 * 100 * 4))
    a = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, 3, 100, 100),
                                  fortran_order=fortran_order)
    for start in range(0, n, 200):
        stop = min(n, start + 200)
        a[start:stop] = np.arange(start, stop, dtype=np.float32)[:, None, None, None]
        a[start:stop, :, 7, 11] += np.arange(3, dtype=np.float32)
    a.flush()
    return a


def _check_memory(tmp_path, megabytes, chunk_mb, fortran_order):
    src, dst = tmp_path / "src.npy", tmp_path / "dst.npy"
    a = _big_source(src, megabytes, fortran_order)
    tiny = tmp_path / "tiny.npy"
    np.save(tiny, a[:2])
    status, baseline = _peak_rss_mb([tiny, tmp_path / "tiny_out.npy", "--data-format",
                                     "channels_first", "--chunk-mb", chunk_mb])
    assert status == 0
    status, peak = _peak_rss_mb([src, dst, "--data-format", "channels_first",
                                 "--chunk-mb", chunk_mb])
    assert status == 0
    print(f"\n{megabytes} MB file, --chunk-mb {chunk_mb}: peak RSS {peak:.0f} MB "
          f"(interpreter and imports: {baseline:.0f} MB)")
    assert peak < 100 + 4 * chunk_mb
    assert peak - baseline < 3 * chunk_mb  # two buffers of a chunk, and some slack
    out = np.load(dst, mmap_mode="r")
    for start in range(0, len(a), 500):
        np.testing.assert_array_equal(out[start:start + 500],
                                      reference(a[start:start + 500], "channels_first"))
    return src, dst


@pytest.mark.parametrize("fortran_order", [False, True], ids=["C", "F"])
def test_memory_is_bounded_by_the_chunk(tmp_path, fortran_order):
    _check_memory(tmp_path, 120, 8, fortran_order)


def _seconds(args):
    start = time.perf_counter()
    subprocess.run(args, check=True, env=ENV, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


@pytest.mark.slow
def test_memory_600_mb_and_speed_against_cp(tmp_path):
    """The issue's figures: run with ``pytest -m slow -s -k 600``."""
    src, dst = _check_memory(tmp_path, 600, 32, False)
    size = os.path.getsize(src) / 1e6
    digest(src)  # page cache warm
    copy = tmp_path / "copy.npy"
    cp = _seconds(["cp", src, copy])
    cp_sync = cp + _seconds(["sync", copy])
    os.remove(copy)
    os.remove(dst)  # replacing a file would time the file system freeing the old one
    ours = _seconds(command(src, dst, "--data-format", "channels_first", "--chunk-mb", 32))
    print(f"{size:.0f} MB: cp {size / cp:.0f} MB/s, cp + sync {size / cp_sync:.0f} MB/s, "
          f"pyflat flatten (fsync'd, whole process) {size / ours:.0f} MB/s")


# --- --dtype, --casting, --scale, --offset (issue 14) ---------------------------------

def test_dtype_scale_and_offset_convert_the_output(tmp_path, capsys):
    import pyflat
    x = (np.arange(6 * 3 * 5 * 4) % 251).astype(np.uint8).reshape(6, 3, 5, 4)
    src, dst = tmp_path / "x.npy", tmp_path / "y.npy"
    np.save(src, np.asfortranarray(x))
    assert main(["flatten", str(src), str(dst), "--data-format", "channels_first",
                 "--dtype", "float32", "--scale", "0.5,0.25,2", "--offset=-1",
                 "--chunk-mb", "0.0001", "--no-progress"]) == 0
    want = pyflat.batch_flatten(x, data_format="channels_first", dtype=np.float32,
                                scale=[0.5, 0.25, 2.0], offset=-1.0)
    assert np.load(dst).tobytes() == want.tobytes() and np.load(dst).dtype == np.float32
    assert "float32" in capsys.readouterr().out


def test_dtype_refused_by_casting_is_a_one_line_error(tmp_path, capsys):
    src, dst = tmp_path / "x.npy", tmp_path / "y.npy"
    np.save(src, np.ones((4, 3)))
    assert main(["flatten", str(src), str(dst), "--dtype", "int16"]) == 2
    err = capsys.readouterr().err
    assert "casting" in err and len(err.strip().splitlines()) == 1 and not dst.exists()
    assert main(["flatten", str(src), str(dst), "--dtype", "int16", "--casting", "unsafe",
                 "--no-progress"]) == 0
    assert np.load(dst).dtype == np.int16
    with pytest.raises(SystemExit) as exit_status:  # argparse's error, one line too
        main(["flatten", str(src), str(dst), "--dtype", "float32", "--scale", "x"])
    assert exit_status.value.code == 2 and "--scale" in capsys.readouterr().err
    assert main(["flatten", str(src), str(dst), "--dtype", "float32", "--scale", "1,2",
                 "--overwrite"]) == 2
    assert "scale" in capsys.readouterr().err
