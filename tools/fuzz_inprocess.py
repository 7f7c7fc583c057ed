"""Variants of the kernel timed alternately in one process (a development aid).

The fuzz's per-layout figures swing by 30% and more between runs on a
shared machine, and a kernel-against-numpy ratio adds numpy's own noise.
Here each layout's variants run on the same buffers, in the same process,
in alternating order, best of seven rounds: the noise floor (two identical
variants) is a few percent per layout.  The variants are environment
settings that a temporary getenv() hook in the build reads (remove the
hook before committing).  Plans are cached: a hook read while planning must
also go into the plan cache's key (the settings array of pf_plan_make), or
every variant runs the first variant's plan.

    PYTHONPATH=. python tools/fuzz_inprocess.py LIST 'old:HOOK=0' 'new:' > ab.jsonl
    python tools/fuzz_inprocess.py summary ab.jsonl old

Calls repeat on the same buffers, so a layout of a few MB runs from the
cache on a quiet machine, where the fuzz (which times memcpy, numpy and
pyflat between the kernel's calls) and other processes sharing the cache
leave much of it in memory: 65537 #218 took 0.24 ms from the cache and 2.1 to
2.6 ms in the fuzz.  ``--cold`` times single calls, each after writing a
buffer larger than the last-level cache, for changes (prefetching) that act
only on data in memory:

    PYTHONPATH=. python tools/fuzz_inprocess.py --cold LIST 'old:HOOK=0' 'new:'

LIST holds "SEED INDEX" lines (tools/fuzz_ab.py changed writes them); each
output line is a layout's best seconds per call for each variant.
"""
from __future__ import annotations

import json
import math
import os
import sys
import time

import numpy as np


EVICT_BYTES = 96 << 20  # beyond this machine's 32 MB last-level cache


def measure(list_path: str, variants: list[str], cold: bool = False) -> None:
    from pyflat import _kernel
    from pyflat.bench import fuzz
    configs = []
    for text in variants:
        name, _, settings = text.partition(":")
        configs.append((name, dict(kv.split("=", 1) for kv in settings.split() if "=" in kv)))
    keys = {key for _, env in configs for key in env}

    def use(env: dict[str, str]) -> None:
        for key in keys:
            os.environ.pop(key, None)
        os.environ.update(env)

    scratch = np.ones(EVICT_BYTES // 8) if cold else None

    def evict() -> None:
        if scratch is not None:
            np.add(scratch, 1.0, out=scratch)

    for line in open(list_path):
        if not line.strip():
            continue
        seed, index = map(int, line.split())
        layout = fuzz.draw(seed, index)
        view = fuzz.flattened_view(layout, fuzz.make_array(layout))
        out = np.empty(view.size, view.dtype)
        out.view(np.uint8).fill(1)
        use({})
        _kernel.copy_into(view, out, 1, 0)
        start = time.perf_counter()
        _kernel.copy_into(view, out, 1, 0)
        calls = 1 if cold else max(1, int(0.01 / max(time.perf_counter() - start, 1e-7)))
        best = {name: math.inf for name, _ in configs}
        for round_ in range(7):
            for name, env in configs if round_ % 2 == 0 else configs[::-1]:
                use(env)
                _kernel.copy_into(view, out, 1, 0)
                evict()
                start = time.perf_counter()
                for _ in range(calls):
                    _kernel.copy_into(view, out, 1, 0)
                best[name] = min(best[name], (time.perf_counter() - start) / calls)
        use({})
        print(json.dumps({"seed": seed, "index": index, **best}), flush=True)


def summary(path: str, base: str) -> None:
    rows = [json.loads(line) for line in open(path)]
    for name in rows[0]:
        if name in ("seed", "index", base):
            continue
        ratios = [row[base] / row[name] for row in rows]
        mean = math.exp(sum(map(math.log, ratios)) / len(ratios))
        print(f"{name} over {base}: {len(ratios)} layouts, {mean:.3f}x faster by geometric mean, "
              f"{min(ratios):.2f}x to {max(ratios):.2f}x; "
              f"{sum(r < 0.95 for r in ratios)} slower and {sum(r > 1.05 for r in ratios)} faster by 5%")


if __name__ == "__main__":
    if sys.argv[1] == "summary":
        summary(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "--cold":
        measure(sys.argv[2], sys.argv[3:], cold=True)
    else:
        measure(sys.argv[1], sys.argv[2:])
