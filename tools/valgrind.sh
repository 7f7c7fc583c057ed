#!/usr/bin/env bash
# valgrind memcheck over a subset of the tests: the layout fuzzer (every
# kernel, SIMD level, streaming and thread setting) and the bad-input catalog.
# Python's own allocator is switched off so memcheck sees every block.
# CPython itself reports a few uninitialised-value errors (e.g. in
# int.from_bytes at start-up) and cffi keeps a few module objects from
# import to exit, so what counts is errors and definite leaks with a frame in
# pyflat's C code (csrc/*.c, pf_* functions); the script exits 1 if any.
#
#   tools/valgrind.sh [layouts]        (default 300; build in place first)
set -euo pipefail
cd "$(dirname "$0")/.."
layouts=${1:-300}
logs=${VALGRIND_LOGS:-/tmp}
memcheck=(valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite
          --track-origins=no --num-callers=40)
export PYTHONMALLOC=malloc PYTHONPATH=.
python=$(python3 -c 'import sys; print(sys.executable)')  # not a wrapper script
"${memcheck[@]}" --log-file="$logs/valgrind-fuzz.log" \
    "$python" tests/fuzz_layouts.py --layouts "$layouts" --large 1 --seed 11
"${memcheck[@]}" --log-file="$logs/valgrind-catalog.log" \
    "$python" -m pytest -q -p no:cacheprovider tests/test_bad_inputs.py

status=0
for log in "$logs/valgrind-fuzz.log" "$logs/valgrind-catalog.log"; do
    # One report per block of lines between blank ==pid== lines.
    ours=$(awk -v ours='(plan|kernels|pool|simd|micro_x86)[.]c:|: pf_[a-z_0-9]+ ' '
                /^==[0-9]+== $/ { if (block ~ ours) n++; block = ""; next }
                { block = block $0 "\n" }
                END { if (block ~ ours) n++; print n + 0 }' "$log")
    echo "$log: $(grep -h 'ERROR SUMMARY' "$log" | sed 's/==[0-9]*== //'); with a pyflat frame: $ours"
    [ "$ours" -eq 0 ] || status=1
done
exit $status
