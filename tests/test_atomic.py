"""atomic_output: the file appears complete or not at all."""

import os
import stat

import pytest

from pyflat.atomic import atomic_output


def _write(fd, data):
    assert os.write(fd, data) == len(data)


def test_appears_complete_with_the_usual_permissions(tmp_path):
    dst = tmp_path / "out.bin"
    with atomic_output(str(dst), overwrite=False) as fd:
        _write(fd, b"abc")
        assert not dst.exists()  # not before the block completes
    assert dst.read_bytes() == b"abc"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(dst.stat().st_mode) == 0o666 & ~umask
    assert os.listdir(tmp_path) == ["out.bin"]


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_an_error_leaves_neither_dst_nor_temporary(tmp_path, error):
    dst = tmp_path / "out.bin"
    dst.write_bytes(b"old")
    with pytest.raises(error):
        with atomic_output(str(dst), overwrite=True) as fd:
            _write(fd, b"half")
            raise error()
    assert dst.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.bin"]


def test_overwrite_replaces(tmp_path):
    dst = tmp_path / "out.bin"
    dst.write_bytes(b"old")
    with atomic_output(str(dst), overwrite=True) as fd:
        _write(fd, b"new")
    assert dst.read_bytes() == b"new"


def test_file_systems_without_hard_links(tmp_path, monkeypatch):
    def no_links(*args):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    dst = tmp_path / "out.bin"
    with atomic_output(str(dst), overwrite=False) as fd:
        _write(fd, b"abc")
    assert dst.read_bytes() == b"abc"
    assert os.listdir(tmp_path) == ["out.bin"]
    with pytest.raises(FileExistsError, match="appeared while flattening"):
        with atomic_output(str(dst), overwrite=False) as fd:
            _write(fd, b"xyz")
    assert dst.read_bytes() == b"abc"
    assert os.listdir(tmp_path) == ["out.bin"]


def test_a_missing_folder_names_dst(tmp_path):
    with pytest.raises(FileNotFoundError, match="dst: cannot create a file in"):
        with atomic_output(str(tmp_path / "no" / "out.bin"), overwrite=False):
            pass
