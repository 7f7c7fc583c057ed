"""``import pyflat`` stays light: none of the optional heavy libraries (issue 13)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

HEAVY = ("tqdm", "matplotlib", "dask", "torch", "pandas", "polars", "sklearn", "keras")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_import_pyflat_loads_no_optional_library():
    code = ("import json, sys, pyflat; pyflat.batch_flatten(__import__('numpy').zeros((2, 3)));"
            f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))")
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True)
    assert json.loads(out.stdout) == []
