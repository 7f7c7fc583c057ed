"""``pyflat.__version__``: the installed distribution's version.

Read from the package metadata (pyproject.toml is its one source), on first
access only: importlib.metadata costs tens of milliseconds to import.
"""

from __future__ import annotations

import os
import re

__all__ = ["version"]

UNKNOWN = "0+unknown"


def _from_source_tree() -> str:
    """The version in pyproject.toml beside the package, for a source tree that
    is not installed (``PYTHONPATH=. python ...``)."""
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "pyproject.toml")
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return UNKNOWN
    project = re.search(r"^\[project\]$(.*?)(?=^\[|\Z)", text, re.M | re.S)
    found = project and re.search(r'^version\s*=\s*"([^"]+)"', project.group(1), re.M)
    return found.group(1) if found else UNKNOWN


def version() -> str:
    from importlib.metadata import PackageNotFoundError, version as installed
    try:
        return installed("pyflat")
    except PackageNotFoundError:
        return _from_source_tree()
