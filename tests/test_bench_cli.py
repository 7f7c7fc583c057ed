"""``pyflat bench``: the catalog, the implementations, the measurements and
the command line, at the scaled-down (--quick) sizes."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pyflat.bench import main
from pyflat.bench.cases import CASES, case_names, channels_last_view, select_cases
from pyflat.bench.impls import Impl, ParallelMemcpy, default_impls, import_torch
from pyflat.bench.runner import Settings, peak_bytes, run
from pyflat.cli import main as pyflat_main

ROOT = Path(__file__).resolve().parents[1]
ISSUE_CASES = {"nchw_f32_cf", "nhwc_view_f32", "sliced_f32", "uint8_images_cf", "fortran_f64",
               "neg_stride_f32", "batch_stride_f64", "f16_seq_slice", "contiguous_f32",
               "small_f32"}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def numpy_flatten(a: np.ndarray, data_format: str) -> np.ndarray:
    return np.ascontiguousarray(channels_last_view(a, data_format)).reshape(a.shape[0], -1)


def same_bytes(result, reference: np.ndarray) -> bool:
    result = np.asarray(result)
    return (result.shape == reference.shape and result.dtype == reference.dtype
            and result.tobytes() == reference.tobytes())


# -- the catalog ---------------------------------------------------------------

def test_catalog_holds_the_issue_cases_once_each():
    names = case_names()
    assert len(names) == len(set(names))
    assert ISSUE_CASES <= set(names)
    kinds = {np.dtype(c.dtype).kind for c in CASES}
    assert {"b", "c", "u", "f"} <= kinds  # boolean masks, complex, images, floats
    assert any(len(c.shape) == 5 for c in CASES)  # video


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_quick_inputs_are_smaller_and_of_the_described_kind(case):
    a = case.make(quick=True)
    assert a.dtype == case.dtype
    assert case.data_format in ("channels_last", "channels_first")
    assert math.prod(case.quick_shape) <= math.prod(case.shape)
    assert len(case.quick_shape) == len(case.shape)
    np.testing.assert_array_equal(a, case.make(quick=True))  # reproducible


def test_layouts_are_the_ones_named():
    by_name = {c.name: c.make(quick=True) for c in select_cases(
        ["contiguous_f32", "fortran_f64", "neg_stride_f32", "nhwc_view_f32", "sliced_f32"])}
    assert by_name["contiguous_f32"].flags.c_contiguous
    fortran = by_name["fortran_f64"]
    assert fortran.flags.f_contiguous and not fortran.flags.c_contiguous
    assert by_name["neg_stride_f32"].strides[1] < 0
    assert not by_name["nhwc_view_f32"].flags.c_contiguous
    assert not by_name["sliced_f32"].flags.c_contiguous


def test_select_cases_names_the_unknown_ones():
    assert [c.name for c in select_cases(["small_f32", "nchw_f32_cf"])] == \
        ["nchw_f32_cf", "small_f32"]  # catalog order
    with pytest.raises(ValueError, match=r"'nope'.*'nada'.*known cases: nchw_f32_cf"):
        select_cases(["nope", "small_f32", "nada"])
    with pytest.raises(ValueError, match="at least one"):
        select_cases(["", " "])


# -- the implementations -------------------------------------------------------

@pytest.mark.parametrize("name", ["small_f32", "neg_stride_f32", "bool_masks_cf",
                                  "audio_stereo_cf", "complex64_cf", "fortran_f64"])
def test_every_implementation_matches_numpy(name):
    case, = select_cases([name])
    a = case.make(quick=True)
    reference = numpy_flatten(a, case.data_format)
    for impl in default_impls([1, 2]):
        work = impl.work(a, case.data_format)
        if work is None:
            assert impl.name == "torch" and min(a.strides) < 0
            continue
        with impl.setting(impl.threads):
            result = work()
        if impl.name == "memcpy":
            assert result is None
        else:
            assert same_bytes(result, reference), impl.label


@pytest.mark.parametrize("threads", [1, 2, 3, 7])
def test_parallel_memcpy_copies_every_byte(threads):
    copy = ParallelMemcpy(1001, threads)
    copy.src[:] = np.random.default_rng(threads).integers(0, 256, 1001, dtype=np.uint8)
    copy()
    np.testing.assert_array_equal(copy.dst, copy.src)


def test_torch_rows_only_with_torch():
    without = default_impls([1, 2], torch=None)
    assert "torch" not in {i.name for i in without}
    assert {(i.name, i.threads) for i in without} == {
        ("pyflat", 1), ("pyflat", 2), ("pyflat-kernel", 1), ("pyflat-kernel", 2),
        ("numpy", 1), ("memcpy", 1), ("memcpy", 2)}
    torch = import_torch()
    if torch is not None:
        counts = {i.threads for i in default_impls([1], torch) if i.name == "torch"}
        assert counts == {1, torch.get_num_threads()}


def test_torch_thread_setting_is_restored():
    torch = import_torch()
    if torch is None:
        pytest.skip("torch is not installed")
    before = torch.get_num_threads()
    impl = next(i for i in default_impls([1], torch) if i.name == "torch" and i.threads == 1)
    with impl.setting(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


def test_peak_bytes_sees_numpy_allocations():
    assert 10**6 <= peak_bytes(lambda: np.empty(10**6, np.uint8)) < 10**6 + 10**4
    assert peak_bytes(lambda: None) < 10**4


def test_every_case_runs_and_is_checked():
    impls = default_impls([1, 2], torch=None)
    infos, records = run(CASES, impls, Settings(quick=True, repeat=1, min_seconds=0))
    assert [c.name for c in infos] == case_names()
    assert len(records) == len(CASES) * len(impls)
    for c in infos:
        rows = [r for r in records if r.case == c.name]
        pyflat_1 = next(r for r in rows if r.impl == "pyflat" and r.threads == 1)
        kernel_1 = next(r for r in rows if r.impl == "pyflat-kernel" and r.threads == 1)
        if c.zero_copy:  # a view: nothing allocated
            assert pyflat_1.peak_bytes < 10**4
        else:  # only the output is allocated (and a few small objects)
            assert c.output_bytes <= pyflat_1.peak_bytes < c.output_bytes + 10**4
        assert kernel_1.peak_bytes < 10**4  # into out=: nothing
    zero_copy = {c.name for c in infos if c.zero_copy}
    assert zero_copy == {"contiguous_f32", "f32_2d_cf"}  # issue 11, reproducer 8


def test_a_wrong_result_is_an_error(tmp_path, monkeypatch, capsys):
    wrong = Impl("wrong", 1, lambda a, data_format, threads:
                 lambda: np.zeros((a.shape[0], a[0].size), a.dtype))
    monkeypatch.setattr("pyflat.bench.command.default_impls", lambda threads, torch: [wrong])
    target = tmp_path / "r.json"
    assert main(["--quick", "--cases", "small_f32", "--json", str(target)]) == 1
    assert "wrong x1 gave a wrong result for case small_f32" in capsys.readouterr().err
    assert not target.exists()


# -- the command line ----------------------------------------------------------

def test_quick_run_writes_json_png_and_markdown(tmp_path, capsys):
    paths = {k: tmp_path / f"out.{k}" for k in ("json", "png", "md")}
    assert main(["--quick", "--cases", "small_f32", "--threads", "2", "--json",
                 str(paths["json"]), "--plot", str(paths["png"]), "--markdown",
                 str(paths["md"])]) == 0
    out = capsys.readouterr().out
    for header in ("case", "impl", "threads", "GB/s", "of memcpy", "vs numpy", "peak alloc"):
        assert header in out

    doc = json.loads(paths["json"].read_text())
    assert {"cpu", "cores", "python", "numpy", "torch", "pyflat"} <= doc["machine"].keys()
    assert doc["machine"]["cores"] == os.cpu_count()
    assert doc["machine"]["numpy"] == np.__version__
    results = doc["results"]
    keys = [(r["case"], r["impl"], r["threads"]) for r in results]
    assert len(keys) == len(set(keys))  # one record per (case, impl, threads)
    expected = {("small_f32", i.name, i.threads) for i in default_impls([2])}
    assert set(keys) == expected
    small, = select_cases(["small_f32"])
    moved = 2 * small.make(quick=True).nbytes
    memcpy = {r["threads"]: r["gbps"] for r in results if r["impl"] == "memcpy"}
    numpy_seconds = next(r["seconds"] for r in results if r["impl"] == "numpy")
    for r in results:
        assert {"case", "impl", "threads", "seconds", "gbps", "bytes"} <= r.keys()
        assert r["bytes"] == moved and r["seconds"] > 0
        assert r["gbps"] == pytest.approx(moved / r["seconds"] / 1e9)
        limit = max(g for t, g in memcpy.items() if t <= r["threads"])
        assert r["fraction_of_memcpy"] == pytest.approx(r["gbps"] / limit)
        assert r["speedup_vs_numpy"] == pytest.approx(numpy_seconds / r["seconds"])

    png = paths["png"].read_bytes()
    assert png.startswith(PNG_MAGIC)
    import matplotlib.image
    height, width, _ = matplotlib.image.imread(paths["png"]).shape
    assert height > 100 and width > 100

    md = paths["md"].read_text()
    assert "](out.png)" in md and "| small_f32 |" in md and doc["machine"]["cpu"] in md


def test_unknown_case_exits_2_naming_it_and_leaves_files_alone(tmp_path, capsys):
    target = tmp_path / "r.json"
    target.write_text("keep")
    with pytest.raises(SystemExit) as exit_:
        main(["--cases", "small_f32,nope", "--json", str(target)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "--cases" in err and "'nope'" in err and "small_f32" in err
    assert target.read_text() == "keep"


@pytest.mark.parametrize("argv, option", [
    (["--threads", "0"], "--threads"),
    (["--threads", "two"], "--threads"),
    (["--repeat", "0"], "--repeat"),
    (["--json", "/nonexistent-dir/r.json"], "--json"),
    (["--plot", "."], "--plot"),
])
def test_bad_options_exit_2_before_measuring(argv, option, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--quick", "--cases", "small_f32", *argv])
    assert exit_.value.code == 2
    captured = capsys.readouterr()
    assert option in captured.err and captured.out == ""


def test_pyflat_lists_bench(capsys):
    assert pyflat_main(["--help"]) == 0
    assert "bench" in capsys.readouterr().out


@pytest.mark.parametrize("command", [["-m", "pyflat", "bench"], ["-m", "pyflat.bench"]])
def test_entry_points(command):
    listing = subprocess.run([sys.executable, *command, "--list"], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout
    assert all(name in listing for name in case_names())
    ran = subprocess.run([sys.executable, *command, "--quick", "--cases", "small_f32",
                          "--no-torch"], cwd=ROOT, capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr
    for impl in ("pyflat", "pyflat-kernel", "numpy", "memcpy"):
        assert re.search(rf"\s{impl}\s+1\s", ran.stdout), impl
    assert "torch" not in ran.stdout
