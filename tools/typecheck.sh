#!/usr/bin/env bash
# Static types: `mypy --strict` (settings in pyproject.toml, [tool.mypy]) over
# the package, and over tests/typing/, which pins what users' code sees
# (result types follow the input, data_format is a Literal).
# Needs mypy in the active Python: pip install mypy
set -euo pipefail
cd "$(dirname "$0")/.."
python -m mypy -p pyflat
python -m mypy tests/typing
