"""What the package says about itself: its version, its platform check, its
license and type marker, and that importing it stays light."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import pyflat
from pyflat import _platform, _version

ROOT = Path(__file__).resolve().parents[1]


def test_version_is_the_package_metadata_or_pyproject():
    from importlib.metadata import PackageNotFoundError, version
    try:
        expected = version("pyflat")
    except PackageNotFoundError:  # a source tree, not installed
        expected = _version._from_source_tree()
    assert pyflat.__version__ == expected != _version.UNKNOWN


def test_version_fallback_reads_the_project_table(tmp_path, monkeypatch):
    package = tmp_path / "pyflat"
    package.mkdir()
    (tmp_path / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["x"]\n\n[project]\nname = "pyflat"\n'
        'version = "9.8.7"\n\n[tool.other]\nversion = "0"\n')
    monkeypatch.setattr(_version, "__file__", str(package / "_version.py"))
    assert _version._from_source_tree() == "9.8.7"
    (tmp_path / "pyproject.toml").unlink()
    assert _version._from_source_tree() == _version.UNKNOWN


def test_this_platform_is_supported():
    assert _platform.unsupported_reason() is None


def test_a_platform_without_positional_io_is_refused_by_name(monkeypatch):
    monkeypatch.delattr(os, "preadv")
    assert "os.preadv" in _platform.unsupported_reason()
    with pytest.raises(ImportError, match=r"os\.preadv.*tested on Linux x86-64 and aarch64"):
        _platform.check_platform()


def test_a_non_posix_platform_is_refused(monkeypatch):
    monkeypatch.setattr(os, "name", "nt")
    monkeypatch.setattr(sys, "platform", "win32")
    assert "POSIX" in _platform.unsupported_reason()
    assert "win32" in _platform.unsupported_reason()


def test_license_and_type_marker_ship():
    assert "MIT License" in (ROOT / "LICENSE").read_text()
    assert "Copyright (c) 2026 the pyflat developers" in (ROOT / "LICENSE").read_text()
    assert (Path(pyflat.__file__).parent / "py.typed").exists()


def test_import_is_light():
    """``import pyflat`` must not pay for optional libraries."""
    code = ("import sys, pyflat; print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] "
            "in ('tqdm', 'matplotlib', 'dask', 'torch', 'threadpoolctl', 'sklearn') "
            "or m == 'importlib.metadata')))")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == ""
