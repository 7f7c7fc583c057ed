#!/bin/sh
# Issue 13's per-call table before and after: the same script
# (pyflat/bench/overhead.py) run on an older tree and on this one, one after
# the other, twice.  Read the pyflat/numpy ratios; absolute times on a shared
# machine are noise.  Usage: bench/overhead_before_after.sh [BASE_COMMIT]
# (default 8fb9543, the tree before issue 13).  Needs an in-place build here
# (python setup.py build_ext --inplace); the old tree borrows its extension.
set -eu
base=${1:-8fb9543}
here=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python}
old=$(mktemp -d)
trap 'rm -rf "$old"' EXIT
git -C "$here" archive "$base" pyflat | tar -x -C "$old"
cp "$here"/pyflat/_pyflat*.so "$old/pyflat/"
cp "$here/pyflat/bench/overhead.py" "$old/pyflat/bench/overhead.py"
for run in 1 2; do
    echo "== before ($base), run $run"
    (cd "$old" && PYTHONPATH="$old" "$python" -m pyflat.bench.overhead --markdown)
    echo "== after ($(git -C "$here" rev-parse --short HEAD)), run $run"
    (cd "$here" && PYTHONPATH="$here" "$python" -m pyflat.bench.overhead --markdown)
done
