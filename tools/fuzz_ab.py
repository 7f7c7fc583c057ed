"""Before / after on the fuzz layouts a change affects (a development aid).

Step 1, ``plans``: print the explain() text of every layout of some seeds,
one JSON line each, with the build on PYTHONPATH.  Step 2, ``measure``:
measure the given layouts exactly as ``pyflat bench --fuzz`` does (kernel,
memcpy, numpy, pyflat; best of interleaved rounds) and write JSON lines.
Run both with the old build and the new one; layouts whose plan changed are
the ones to measure, and the two measure files compare layout by layout.

    PYTHONPATH=OLD python tools/fuzz_ab.py plans 11 12 13 777 > old.plans
    PYTHONPATH=NEW python tools/fuzz_ab.py plans 11 12 13 777 > new.plans
    python tools/fuzz_ab.py changed old.plans new.plans > changed.txt
    PYTHONPATH=OLD python tools/fuzz_ab.py measure changed.txt > old.json
    PYTHONPATH=NEW python tools/fuzz_ab.py measure changed.txt > new.json
    python tools/fuzz_ab.py compare old.json new.json

A whole seed, before and after, alternating the builds every 25 layouts so
that the machine's drift falls on both alike (``measure`` takes a thread
count after the file; ``summary`` gives a file's distribution):

    for start in $(seq 0 25 275); do
        seq $start $((start + 24)) | sed 's/^/SEED /' > chunk.txt
        PYTHONPATH=OLD python tools/fuzz_ab.py measure chunk.txt 1 >> old.json
        PYTHONPATH=NEW python tools/fuzz_ab.py measure chunk.txt 1 >> new.json
    done
    python tools/fuzz_ab.py summary old.json; python tools/fuzz_ab.py summary new.json

When the machine is noisy, ``vs-numpy`` prints the kernel's speed over
numpy's, both timed in one process in interleaved rounds, as the fuzz times them,
one line per run; ``medians`` compares two builds' lines layout by layout
(median of the runs of each):

    for run in 1 2 3; do
        PYTHONPATH=OLD python tools/fuzz_ab.py vs-numpy changed.txt >> old.txt
        PYTHONPATH=NEW python tools/fuzz_ab.py vs-numpy changed.txt >> new.txt
    done
    python tools/fuzz_ab.py medians old.txt new.txt
"""
from __future__ import annotations

import json
import sys

import numpy as np


def plans(seeds: list[int], count: int = 300) -> None:
    import pyflat
    from pyflat.bench import fuzz
    for seed in seeds:
        for index in range(count):
            layout = fuzz.draw(seed, index)
            a = fuzz.make_array(layout)
            text = str(pyflat.explain(a, data_format=layout.data_format, num_threads=1))
            print(json.dumps({"seed": seed, "index": index, "plan": text}), flush=True)
            del a


def changed(old_path: str, new_path: str) -> None:
    old = {(r["seed"], r["index"]): r["plan"] for r in map(json.loads, open(old_path))}
    for r in map(json.loads, open(new_path)):
        if old.get((r["seed"], r["index"])) != r["plan"]:
            print(r["seed"], r["index"])


def measure(path: str, threads: str = "1") -> None:
    from pyflat.bench import fuzz
    from pyflat.bench.fuzz_run import FuzzSettings, ThreadedMemcpy, measure as measure_one
    memcpy = ThreadedMemcpy(int(threads))
    for line in open(path):
        seed, index = map(int, line.split())
        settings = FuzzSettings(seed, 1, int(threads), fuzz.MIN_BYTES, fuzz.MAX_BYTES,
                                start=index)
        layout = fuzz.draw(seed, index)
        r = measure_one(layout, fuzz.make_array(layout), settings, memcpy)
        print(json.dumps({"seed": seed, "index": index, "limit": r.fraction_of_limit(),
                          "vs_numpy": r.speedup_vs_numpy, "kernel": r.plan_kernel,
                          "description": layout.description}), flush=True)
    memcpy.close()


def vs_numpy(path: str) -> None:
    from pyflat.bench import fuzz
    from pyflat.bench.fuzz_run import FuzzSettings, best_times, kernel_copy

    for line in open(path):
        seed, index = map(int, line.split())
        layout = fuzz.draw(seed, index)
        view = fuzz.flattened_view(layout, fuzz.make_array(layout))
        out = np.ascontiguousarray(view).reshape(len(view), -1).copy()  # never the input itself
        best = best_times({"kernel": lambda: kernel_copy(view, out, 1),
                           "numpy": lambda: np.ascontiguousarray(view)},
                          FuzzSettings.repeat, FuzzSettings.min_seconds)
        print(seed, index, f"{best['numpy'] / best['kernel']:.4f}", flush=True)


def medians(old_path: str, new_path: str) -> None:
    def load(path: str) -> dict[tuple[int, int], float]:
        runs: dict[tuple[int, int], list[float]] = {}
        for line in open(path):
            seed, index, ratio = line.split()
            runs.setdefault((int(seed), int(index)), []).append(float(ratio))
        return {key: float(np.median(v)) for key, v in runs.items()}
    old, new = load(old_path), load(new_path)
    ratios = []
    for key in old:
        if key in new:
            ratios.append(new[key] / old[key])
            print(f"{key[0]}/{key[1]}: kernel vs numpy {old[key]:.2f}x -> {new[key]:.2f}x")
    print_ratios(ratios, "new / old kernel vs numpy")


def print_ratios(ratios: list[float], what: str) -> None:
    if ratios:
        print(f"{len(ratios)} layouts: {what}, geomean "
              f"{float(np.exp(np.mean(np.log(ratios)))):.2f}, min {min(ratios):.2f}, "
              f"max {max(ratios):.2f}; slower (< 0.95): {sum(x < 0.95 for x in ratios)}")


def compare(old_path: str, new_path: str) -> None:
    old = {(r["seed"], r["index"]): r for r in map(json.loads, open(old_path))}
    ratios = []
    for r in map(json.loads, open(new_path)):
        o = old[(r["seed"], r["index"])]
        ratios.append(r["limit"] / o["limit"])
        print(f"{r['seed']}/{r['index']}: limit {o['limit']:.3f} -> {r['limit']:.3f}, "
              f"vs numpy {o['vs_numpy']:.2f}x -> {r['vs_numpy']:.2f}x  {r['description']}")
    print_ratios(ratios, "new / old fraction of the limit")


def summary(path: str) -> None:
    rows = [json.loads(line) for line in open(path)]
    limit = np.array([r["limit"] for r in rows])
    vs_numpy = np.array([r["vs_numpy"] for r in rows])
    print(f"{len(rows)} layouts: kernel min / p10 / median of the limit "
          f"{limit.min():.3f} / {np.percentile(limit, 10):.3f} / {np.median(limit):.3f}; "
          f"pyflat slower than numpy on {int((vs_numpy < 1).sum())} "
          f"({int((vs_numpy < 0.95).sum())} by more than 5%), lowest {vs_numpy.min():.2f}x")


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    if command == "plans":
        plans([int(s) for s in args])
    elif command == "changed":
        changed(*args)
    elif command == "measure":
        measure(*args)
    elif command == "vs-numpy":
        vs_numpy(*args)
    elif command == "medians":
        medians(*args)
    elif command == "compare":
        compare(*args)
    elif command == "summary":
        summary(*args)
    else:
        sys.exit(__doc__)
