"""``pyflat bench --fuzz``: the layout distribution (generation only, cheap),
the traffic count, the verification against numpy and a CI-sized run.  No
timing is asserted."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import pyflat
from pyflat import _kernel
from pyflat.bench import main
from pyflat.bench.cases import select_cases
from pyflat.bench.fuzz import (ITEMSIZE_CLASSES, KINDS, MAX_BYTES, MIN_BYTES, FuzzLayout, draw,
                               flattened_view, itemsize_class, layouts)
from pyflat.bench.fuzz_command import parse_sizes
from pyflat.bench.fuzz_run import (FuzzSettings, ThreadedMemcpy, WrongResult, measure,
                                   source_lines)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
DRAWS = 600
SMALL = (16 << 10, 64 << 10)


@pytest.fixture(scope="module")
def population() -> list[FuzzLayout]:
    return [draw(2024, i) for i in range(DRAWS)]


def numpy_flatten(layout: FuzzLayout, a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(flattened_view(layout, a)).reshape(a.shape[0], -1)


def byte_span(layout: FuzzLayout) -> tuple[int, int]:
    """(first, one past the last) byte of the buffer the layout's elements touch."""
    low = sum(min(0, (n - 1) * s) for n, s in zip(layout.shape, layout.strides))
    high = sum(max(0, (n - 1) * s) for n, s in zip(layout.shape, layout.strides))
    return layout.offset + low, layout.offset + high + layout.itemsize


def c_contiguous(shape: tuple, strides: tuple, itemsize: int) -> bool:
    expected = itemsize
    for n, s in zip(reversed(shape), reversed(strides)):
        if n != 1 and s != expected:
            return False
        expected *= n
    return True


# -- determinism -------------------------------------------------------------------

def test_same_seed_same_layouts_and_bytes():
    def summary(seed):
        return [(layout, a.shape, a.strides, a.dtype, a.tobytes())
                for layout, a in layouts(seed, 4, *SMALL)]
    assert summary(7) == summary(7)
    assert summary(7) != summary(8)


def test_fill_words_wrap_at_2_to_the_32(monkeypatch):
    """The fill's words are (k + salt) * 2654435761 modulo 2**32, also in
    chunks that start past 2**32 (seed 8675309's layout 1: a salt near 2**32
    and 100 MB to fill made the fill overflow)."""
    from pyflat.bench import fuzz
    monkeypatch.setattr(fuzz, "FILL_CHUNK", 4)  # chunks start at k + salt = 2**32 - 6, -2, +2
    buffer = np.empty(4 * 10 + 1, np.uint8)
    fuzz._fill(buffer, 2**32 - 6)
    expected = [(k + 2**32 - 6) % 2**32 * 2654435761 % 2**32 for k in range(10)]
    assert buffer[:40].view(np.uint32).tolist() == expected and buffer[40] == 0x5A


def test_a_layout_does_not_depend_on_the_count_or_start():
    assert [draw(3, i) for i in range(5)] == [layout for layout, _ in layouts(3, 5)]
    assert [layout for layout, _ in layouts(3, 2, start=3)] == [draw(3, 3), draw(3, 4)]


def test_other_seeds_give_other_layouts():
    assert [draw(1, i) for i in range(10)] != [draw(2, i) for i in range(10)]


def test_bad_sizes_name_the_parameters():
    with pytest.raises(ValueError, match="min_bytes, max_bytes"):
        draw(0, 0, 2 << 20, 1 << 20)
    with pytest.raises(ValueError, match="min_bytes"):
        draw(0, 0, 0, 1 << 20)


# -- the distribution: every feature the issue lists, over a few hundred draws -------

def test_every_layout_needs_a_copy_and_fits_its_buffer(population):
    for layout in population:
        assert MIN_BYTES <= layout.output_bytes <= MAX_BYTES, layout
        shape, strides = layout.view_strides()
        assert not c_contiguous(shape, strides, layout.itemsize), layout
        first, end = byte_span(layout)
        assert 0 <= first and end <= layout.buffer_bytes, layout
        assert layout.buffer_bytes <= 4 * layout.output_bytes + (1 << 20), layout
        assert 0 not in layout.shape


def test_itemsizes_1_to_32_and_every_dtype_family(population):
    dtypes = [layout.dtype for layout in population]
    assert {d.itemsize for d in dtypes} == set(range(1, 33))
    assert {d.kind for d in dtypes if not d.fields} >= {"b", "i", "u", "f", "c", "S", "U", "V"}
    records = [d for d in dtypes if d.fields]
    assert records and any(d.itemsize % 2 for d in records)  # packed, odd-sized records
    assert {np.dtype(np.complex64), np.dtype(np.complex128), np.dtype(np.bool_)} <= set(dtypes)


def test_dimensions_2_to_6_and_tiny_inner_dimensions(population):
    assert {len(layout.shape) for layout in population} == {2, 3, 4, 5, 6}
    inner = [layout.view_strides()[0][-1] for layout in population]
    assert {2, 3, 4} <= set(inner)
    tiny_blocks = [layout for layout in population
                   if len(layout.shape) >= 3 and all(2 <= n <= 4 for n in layout.shape[1:])]
    assert len(tiny_blocks) >= 5


def test_kinds_and_memory_orders(population):
    by_kind = {kind: [layout for layout in population if layout.kind == kind] for kind in KINDS}
    assert all(len(found) >= 20 for found in by_kind.values()), \
        {kind: len(found) for kind, found in by_kind.items()}

    def moving(layout):  # (axis, |stride|) of the axes that move, broadcast left out
        return [(k, abs(s)) for k, (n, s) in enumerate(zip(layout.shape, layout.strides))
                if n > 1 and s != 0]

    # Fortran order: strides grow with the axis
    fortran = [layout for layout in by_kind["fortran"] if len(moving(layout)) >= 3]
    assert fortran and all(
        [s for _, s in moving(layout)] == sorted(s for _, s in moving(layout))
        for layout in fortran)
    # The batch axis moved: some other axis has a larger stride
    moved = [layout for layout in population
             if max(moving(layout), key=lambda ks: ks[1])[0] != 0]
    assert any(layout.kind == "batch_moved" for layout in moved)
    assert all(layout.order[0] != 0 for layout in by_kind["batch_moved"])
    assert all(sorted(layout.order) == list(range(len(layout.shape))) for layout in population)


def test_slices_steps_reversals_broadcasts_and_channels_first(population):
    steps = {abs(s) for layout in population for s in layout.steps}
    assert steps == {1, 2, 3, 4}
    assert any(s < 0 for layout in population for s in layout.strides)  # reversed axes
    assert any(0 < st for layout in population for st in layout.starts)   # offsets
    broadcast = [layout for layout in population if layout.broadcast_axis is not None]
    assert broadcast and all(layout.strides[layout.broadcast_axis] == 0 for layout in broadcast)
    assert not any(layout.broadcast_axis is None and 0 in layout.strides
                   for layout in population)
    cf = [layout for layout in population if layout.data_format == "channels_first"]
    assert any(len(layout.shape) >= 3 for layout in cf)
    # a step on the innermost memory axis is a stride of step x itemsize
    stepped = [layout for layout in population
               if abs(layout.steps[layout.order[-1]]) > 1 and layout.broadcast_axis is None]
    assert stepped and all(
        abs(layout.strides[layout.order[-1]]) == abs(layout.steps[layout.order[-1]])
        * layout.itemsize for layout in stepped)


def test_output_sizes_span_the_range(population):
    sizes = [layout.output_bytes for layout in population]
    assert min(sizes) < 2 * MIN_BYTES and max(sizes) > MAX_BYTES / 2
    small = [draw(1, i, *SMALL).output_bytes for i in range(50)]
    assert all(SMALL[0] <= size <= SMALL[1] for size in small)


def test_made_arrays_are_the_layouts_described():
    for layout, a in layouts(11, 30, *SMALL):
        assert a.shape == layout.shape and a.strides == layout.strides
        assert a.dtype == layout.dtype
        base = a.base
        while base.base is not None:
            base = base.base
        assert a.__array_interface__["data"][0] - base.ctypes.data == layout.offset
        assert a.flags.writeable == (layout.broadcast_axis is None)
        if layout.dtype == np.bool_:
            assert set(np.unique(a.view(np.uint8))) <= {0, 1}
        assert itemsize_class(layout.itemsize) in ITEMSIZE_CLASSES


# -- the traffic: distinct source lines ------------------------------------------------

def brute_force_lines(a: np.ndarray) -> int:
    address = a.__array_interface__["data"][0]
    index = np.indices(a.shape).reshape(a.ndim, -1)
    starts = address + (np.array(a.strides)[:, None] * index).sum(axis=0)
    lines = set()
    for start in starts.tolist():
        lines.update(range(start // 64, (start + a.itemsize - 1) // 64 + 1))
    return len(lines)


def test_source_lines_are_exact_on_fuzzed_layouts():
    for layout, a in layouts(5, 40, 2000, 20000):
        assert source_lines(a) == brute_force_lines(a), layout.description


def test_source_lines_of_simple_layouts():
    buffer = np.zeros(64 * 1000 + 64, np.uint8)
    skip = -buffer.ctypes.data % 64
    aligned = buffer[skip:skip + 64 * 1000]
    assert source_lines(aligned.view(np.float32)) == 1000
    assert source_lines(aligned.view(np.float32)[::16]) == 1000  # one float per line
    assert source_lines(aligned.view(np.float32)[::32]) == 500
    assert source_lines(np.broadcast_to(aligned.view(np.float64)[:1], (1000, 8))) == 1
    assert source_lines(aligned[60:68].view("V8")) == 2  # one element across two lines


# -- measuring: results checked against numpy -------------------------------------------

@pytest.mark.parametrize("threads", [1, 3])
def test_threaded_memcpy_copies_every_byte(threads):
    memcpy = ThreadedMemcpy(threads)
    src = np.random.default_rng(threads).integers(0, 256, 5001, dtype=np.uint8)
    try:
        for count in (1, threads):
            dst = np.zeros(5001, np.uint8)
            memcpy.work(src, dst, count)()
            assert dst.tobytes() == src.tobytes()
        with pytest.raises(ValueError, match="src, dst"):
            memcpy.work(src, dst[1:])
        with pytest.raises(ValueError, match="threads"):
            memcpy.work(src, dst, threads + 1)
    finally:
        memcpy.close()


@pytest.mark.parametrize("threads", [1, 2])
def test_measure_verifies_and_times_every_implementation(threads):
    settings = FuzzSettings(seed=9, count=4, threads=threads, min_bytes=SMALL[0],
                            max_bytes=SMALL[1], repeat=1, min_seconds=0)
    memcpy = ThreadedMemcpy(threads)
    try:
        for layout, a in layouts(9, 4, *SMALL):
            result = measure(layout, a, settings, memcpy)
            assert set(result.seconds) == {"kernel", "memcpy", "numpy", "pyflat"} | (
                {"memcpy_1"} if threads > 1 else set())
            assert all(0 < s < math.inf for s in result.seconds.values())
            assert math.isclose(result.fraction_of_limit(),
                                min(result.seconds.get("memcpy_1", math.inf),
                                    result.seconds["memcpy"]) * result.traffic
                                / result.seconds["kernel"])
            assert result.plan_kernel == pyflat.explain(
                a, data_format=layout.data_format, num_threads=threads).kernel
    finally:
        memcpy.close()


def test_a_wrong_kernel_result_is_an_error(monkeypatch):
    def wrong(view, out, threads):
        out.reshape(-1).view(np.uint8).fill(0)
    monkeypatch.setattr("pyflat.bench.fuzz_run.kernel_copy", wrong)
    layout, a = next(layouts(4, 1, *SMALL))
    settings = FuzzSettings(4, 1, 1, *SMALL, repeat=1, min_seconds=0)
    with pytest.raises(WrongResult, match="kernel gave a wrong result on fuzz layout 4/0"):
        measure(layout, a, settings, ThreadedMemcpy(1))


def test_a_wrong_pyflat_result_is_an_error(monkeypatch):
    real = pyflat.batch_flatten
    monkeypatch.setattr("pyflat.batch_flatten",
                        lambda a, **kw: real(a, **kw)[::-1].copy())
    layout, a = next(layouts(4, 1, *SMALL))
    settings = FuzzSettings(4, 1, 1, *SMALL, repeat=1, min_seconds=0)
    with pytest.raises(WrongResult, match="batch_flatten gave a wrong result"):
        measure(layout, a, settings, ThreadedMemcpy(1))


def test_the_kernel_copies_fuzzed_layouts_exactly():
    for layout, a in layouts(12, 25, 4000, 60000):
        view = flattened_view(layout, a)
        out = np.empty((a.shape[0], math.prod(a.shape[1:])), a.dtype)
        assert _kernel.copy_into(view, out, num_threads=2, decline_simple_below=0)
        assert out.tobytes() == numpy_flatten(layout, a).tobytes(), layout.description


@pytest.mark.parametrize("name", ["int16_drop_first_col", "void3_reversed", "void12_transposed",
                                  "tiny_blocks_f32", "f16_step2", "f32_reversed_inner",
                                  "int16_stereo_cf", "uint8_tiny_perm", "f32_2d_cf"])
def test_issue_11_reproducers_are_copied_exactly(name):
    case, = select_cases([name])
    a = case.make(quick=True)
    view = np.moveaxis(a, 1, -1) if case.data_format == "channels_first" and a.ndim > 2 else a
    reference = np.ascontiguousarray(view).reshape(a.shape[0], -1)
    for threads in (1, 2):
        result = pyflat.batch_flatten(a, data_format=case.data_format, num_threads=threads)
        assert result.tobytes() == reference.tobytes()
        out = np.empty_like(reference)
        assert _kernel.copy_into(view, out, num_threads=threads, decline_simple_below=0)
        assert out.tobytes() == reference.tobytes()
    if name == "f32_2d_cf":  # nothing to move: a view
        assert np.shares_memory(pyflat.batch_flatten(a, data_format="channels_first"), a)


# -- the command line --------------------------------------------------------------

def test_ci_sized_fuzz_run_writes_json_and_plot(tmp_path, capsys):
    report, png, page = tmp_path / "fuzz.json", tmp_path / "fuzz.png", tmp_path / "FUZZ.md"
    argv = ["--fuzz", "3", "--seed", "5", "--fuzz-sizes", "16K-64K", "--threads", "1",
            "--repeat", "1", "--json", str(report), "--plot", str(png),
            "--markdown", str(page)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "3 layouts of seed 5" in out and "slower on" in out and "pyflat plan:" in out
    data = json.loads(report.read_text())
    assert data["settings"] == {"seed": 5, "count": 3, "threads": 1, "min_bytes": 16 << 10,
                                "max_bytes": 64 << 10, "repeat": 1, "min_seconds": 2e-3,
                                "start": 0}
    assert [entry["description"] for entry in data["layouts"]] == \
        [draw(5, i, 16 << 10, 64 << 10).description for i in range(3)]
    for entry in data["layouts"]:
        layout = draw(5, entry["index"], 16 << 10, 64 << 10)
        assert entry["shape"] == list(layout.shape) and entry["strides"] == list(layout.strides)
        assert entry["dtype"] == str(layout.dtype) and entry["kind"] == layout.kind
        assert entry["itemsize"] == layout.itemsize
        assert entry["output_bytes"] == layout.output_bytes
        assert set(entry["seconds"]) == {"kernel", "memcpy", "numpy", "pyflat"}
        assert math.isclose(entry["fraction_of_limit"]["kernel"],
                            entry["limit_seconds"] / entry["seconds"]["kernel"])
        assert math.isclose(entry["speedup_vs_numpy"]["pyflat"],
                            entry["seconds"]["numpy"] / entry["seconds"]["pyflat"])
    worst = [entry for entry in data["layouts"] if entry["explain"]]
    assert len(worst) == 3 and all("pyflat plan:" in entry["explain"] for entry in worst)
    summary = data["summary"]
    assert summary["layouts"] == 3
    assert summary["slower_than_numpy"] == sum(
        entry["speedup_vs_numpy"]["pyflat"] < 1 for entry in data["layouts"])
    assert set(summary["slower_than_numpy_layouts"]) == {
        entry["index"] for entry in data["layouts"] if entry["speedup_vs_numpy"]["pyflat"] < 1}
    assert png.read_bytes().startswith(PNG_MAGIC)
    text = page.read_text()
    assert "pyflat bench --fuzz 3 --seed 5" in text and "](fuzz.png)" in text
    distribution = text.split("## The distribution")[1]
    assert "log-uniform" in distribution
    assert "``" not in distribution and ":data:" not in distribution  # reST made Markdown
    assert text.count("pyflat plan:") == 3


def test_pyflat_bench_fuzz_through_the_pyflat_command(tmp_path, capsys):
    from pyflat.cli import main as pyflat_main
    report = tmp_path / "one.json"
    assert pyflat_main(["bench", "--fuzz", "1", "--fuzz-start", "6", "--quick",
                        "--fuzz-sizes", "16K-32K", "--repeat", "1", "--json", str(report)]) == 0
    assert "1 layouts of seed 0" in capsys.readouterr().out
    entry, = json.loads(report.read_text())["layouts"]
    assert entry["index"] == 6
    assert entry["description"] == draw(0, 6, 16 << 10, 32 << 10).description


@pytest.mark.parametrize("argv, option", [
    (["--fuzz", "0"], "--fuzz"),
    (["--fuzz", "x"], "--fuzz"),
    (["--fuzz", "2", "--seed", "-1"], "--seed"),
    (["--fuzz", "2", "--fuzz-sizes", "2M-1M"], "--fuzz-sizes"),
    (["--fuzz", "2", "--fuzz-sizes", "big"], "--fuzz-sizes"),
    (["--fuzz", "2", "--threads", "1,2"], "--threads"),
    (["--fuzz", "2", "--cases", "small_f32"], "--cases"),
    (["--seed", "3"], "--seed"),
    (["--fuzz-sizes", "1M-2M"], "--fuzz-sizes"),
    (["--fuzz-start", "4"], "--fuzz-start"),
    (["--fuzz", "1", "--fuzz-start", "x"], "--fuzz-start"),
])
def test_bad_fuzz_options_exit_2_naming_the_option(argv, option, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert option in capsys.readouterr().err


def test_parse_sizes():
    assert parse_sizes("1M-64M") == (1 << 20, 64 << 20)
    assert parse_sizes("16K-1.5M") == (16 << 10, 3 << 19)
    assert parse_sizes("100-100") == (100, 100)


def test_rounds_time_memcpy_at_both_ends_and_stop_between_repeat_and_3x():
    from pyflat.bench.fuzz_run import MORE_ROUNDS, best_times
    counts = {"memcpy": 0, "kernel": 0}

    def counter(name):
        def work():
            counts[name] += 1
        return work
    best = best_times({name: counter(name) for name in counts}, repeat=2, min_seconds=0)
    # One warm-up call each; then each timing is a loop of one call (min_seconds
    # 0) run twice, the first untimed (the steady state of the caches).
    assert (counts["kernel"] - 1) % 2 == 0
    rounds = (counts["kernel"] - 1) // 2
    assert 2 <= rounds <= 2 * MORE_ROUNDS
    assert counts["memcpy"] - 1 == 2 * 2 * rounds
    assert set(best) == {"memcpy", "kernel"} and all(0 < s < 1 for s in best.values())


def test_layouts_handed_to_numpy_are_counted(monkeypatch):
    from types import SimpleNamespace

    from pyflat.bench.fuzz_report import FuzzReport
    settings = FuzzSettings(4, 2, 1, *SMALL, repeat=1, min_seconds=0)
    memcpy = ThreadedMemcpy(1)
    results = []
    for k, (layout, a) in enumerate(layouts(4, 2, *SMALL)):
        monkeypatch.setattr("pyflat.explain", lambda *args, k=k, **kw: SimpleNamespace(
            kernel="transpose", numpy_faster=k == 1))
        results.append(measure(layout, a, settings, memcpy))
    memcpy.close()
    assert [r.numpy_faster for r in results] == [False, True]
    report = FuzzReport("today", "pyflat bench --fuzz 2", {}, settings, results)
    assert report.summary()["handed_to_numpy"] == 1
    assert "handed to numpy by the cost model: 1 of 2" in report.text()


def test_summary_groups_by_kind_and_itemsize():
    from types import SimpleNamespace

    from pyflat.bench.fuzz_report import FuzzReport
    from pyflat.bench.fuzz_run import FuzzResult
    big = (2 << 20, 4 << 20)
    results = []
    for k, layout in enumerate(draw(8, i, *big) for i in range(12)):
        seconds = {"kernel": 1.0 + k, "memcpy": 1.0, "numpy": 1.0, "pyflat": 0.5 + k % 2}
        results.append(FuzzResult(layout, layout.output_bytes // 64, seconds, "transpose"))
    report = FuzzReport("today", "x", {}, SimpleNamespace(), results)
    by_kind = report.summary()["by_kind"]
    assert sum(g["layouts"] for g in by_kind.values()) == 12
    for kind, group in by_kind.items():
        mine = [r for r in results if r.layout.kind == kind]
        assert group["layouts"] == len(mine)
        assert group["kernel_median_fraction"] == float(np.median(
            [r.fraction_of_limit() for r in mine]))
        assert group["slower_than_numpy_beyond_tolerance"] == sum(
            r.seconds["pyflat"] > 1.05 for r in mine)
    by_size = report.summary()["by_itemsize_class"]
    assert sum(g["layouts"] for g in by_size.values()) == 12
