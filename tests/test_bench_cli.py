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


def test_issue_11_reproducers_have_the_reported_layouts():
    made = {c.name: (c, c.make(quick=True)) for c in select_cases(
        ["int16_drop_first_col", "void3_reversed", "void12_transposed", "tiny_blocks_f32",
         "f16_step2", "f32_reversed_inner", "int16_stereo_cf", "uint8_tiny_perm", "f32_2d_cf"])}
    case, a = made["int16_drop_first_col"]
    assert a.shape[1:] == (99,) and a.strides == (200, 2)          # 198-byte runs
    case, a = made["void3_reversed"]
    assert a.dtype == np.dtype("V3") and a.strides[1] < 0 and a.shape[2:] == (28, 3)
    assert a.strides[2:] == (9, 3)                                 # 252-byte runs
    case, a = made["void12_transposed"]
    assert a.dtype.itemsize == 12 and a.strides[1:] == (12, 12 * 64)
    case, a = made["tiny_blocks_f32"]
    assert a.shape[1:] == (4, 3) and a.strides[1:] == (4, 16)
    case, a = made["f16_step2"]
    assert a.dtype == np.float16 and a.strides[-1] == 4
    case, a = made["f32_reversed_inner"]
    assert a.strides[-1] == -4
    case, a = made["int16_stereo_cf"]
    assert a.shape[1] == 2 and case.data_format == "channels_first" and a.dtype == np.int16
    case, a = made["uint8_tiny_perm"]
    assert a.shape[1:] == (2, 2, 3) and a.strides[1:] == (1, 6, 2)
    case, a = made["f32_2d_cf"]
    assert a.ndim == 2 and a.flags.c_contiguous and case.data_format == "channels_first"


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
        work = impl.work(a, case)
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


def test_every_copy_case_runs_and_is_checked():
    """(The conversion cases: test_bench_convert.py.)"""
    copies = [c for c in CASES if c.convert is None]
    impls = default_impls([1, 2], torch=None)
    infos, records = run(copies, impls, Settings(quick=True, repeat=1, min_seconds=0))
    assert [c.name for c in infos] == [c.name for c in copies]
    assert len(records) == len(copies) * len(impls)
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
    monkeypatch.chdir(tmp_path)
    wrong = Impl("wrong", 1, lambda a, case, threads:
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
        assert len(r["repeats"]) == 3  # --quick: 3 repetitions, every one kept
        assert r["seconds"] == min(r["repeats"])
        spread = r["seconds_spread"]
        assert spread["min"] <= spread["median"] <= spread["max"] == max(r["repeats"])
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


def test_pyflat_without_a_command_exits_2_with_the_usage(capsys):
    assert pyflat_main([]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "expected a command" in captured.err and "usage: pyflat" in captured.err


@pytest.mark.parametrize("option", ["--version", "-V"])
def test_pyflat_version(option, capsys):
    import pyflat
    assert pyflat_main([option]) == 0
    assert capsys.readouterr().out == f"pyflat {pyflat.__version__}\n"


def test_quick_run_writes_json_and_plot_by_default(tmp_path, monkeypatch, capsys):
    """Into ./pyflat-bench, saying where; the table explains its labels."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("pyflat.bench.command.import_torch", lambda: None)
    assert main(["--quick", "--cases", "small_f32,neg_stride_f32", "--repeat", "2"]) == 0
    out = capsys.readouterr().out
    folder = tmp_path / "pyflat-bench"
    assert f"wrote {folder / 'results.json'}" in out
    assert f"wrote {folder / 'results.png'}" in out
    assert (folder / "results.png").read_bytes().startswith(PNG_MAGIC)
    doc = json.loads((folder / "results.json").read_text())
    assert {r["case"] for r in doc["results"]} == {"small_f32", "neg_stride_f32"}
    assert all(len(r["repeats"]) == 2 for r in doc["results"])
    assert "torch: not installed" in out and doc["notes"] == [
        "torch: not installed, so not compared (pip install torch)"]
    for label in ("pyflat-kernel", "x1, x2", "peak alloc", "0.00x out", "of memcpy",
                  "vs numpy"):
        assert label in out, label
    assert "pyflat-kernel" in doc["definitions"] and "peak alloc" in doc["definitions"]


def test_table_says_why_torch_has_no_row(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    assert main(["--quick", "--cases", "neg_stride_f32", "--repeat", "1",
                 "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    count = torch.get_num_threads()
    labels = "torch x1" + (f", torch x{count}" if count > 1 else "")
    assert (f"Not measured: {labels}: no row for neg_stride_f32: negative strides "
            "(torch tensors cannot have them)") in out


def test_no_torch_is_said(tmp_path, capsys):
    assert main(["--quick", "--cases", "small_f32", "--repeat", "1", "--no-torch",
                 "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "Not measured: torch: left out (--no-torch)" in out
    assert not re.search(r"\storch\s+\d+\s", out)


def test_explicit_paths_leave_the_default_folder_alone(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["--quick", "--cases", "small_f32", "--repeat", "1", "--no-torch",
                 "--json", "r.json", "--plot", "r.png"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json", "r.png"]


def test_unwritable_out_exits_2_before_measuring(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(SystemExit) as exit_:
        main(["--quick", "--cases", "small_f32", "--out", str(blocker / "sub")])
    assert exit_.value.code == 2
    assert "--out" in capsys.readouterr().err


def test_without_matplotlib_it_says_there_is_no_plot(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("pyflat.bench.command._has_matplotlib", lambda: False)
    assert main(["--quick", "--cases", "small_f32", "--repeat", "1", "--no-torch",
                 "--out", str(tmp_path)]) == 0
    assert "no plot: matplotlib is not installed" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


@pytest.mark.parametrize("command", [["-m", "pyflat", "bench"], ["-m", "pyflat.bench"]])
def test_entry_points(command, tmp_path):
    listing = subprocess.run([sys.executable, *command, "--list"], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout
    assert all(name in listing for name in case_names())
    ran = subprocess.run([sys.executable, *command, "--quick", "--cases", "small_f32",
                          "--no-torch", "--out", str(tmp_path)], cwd=ROOT,
                         capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr
    for impl in ("pyflat", "pyflat-kernel", "numpy", "memcpy"):
        assert re.search(rf"\s{impl}\s+1\s", ran.stdout), impl
    assert not re.search(r"\storch\s+\d+\s", ran.stdout)
    assert (tmp_path / "results.json").exists()


def test_pyflat_command_exit_codes():
    def pyflat(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "pyflat", *args], cwd=ROOT,
                              capture_output=True, text=True)
    assert pyflat().returncode == 2
    assert pyflat("nope").returncode == 2
    version = pyflat("--version")
    assert version.returncode == 0 and re.fullmatch(r"pyflat \S+\n", version.stdout)


def test_results_are_written_through_pyflats_atomic_writer(tmp_path, monkeypatch):
    from pyflat.bench import output
    opened = []
    real = output.atomic_output

    def spy(path, overwrite):
        opened.append((path, overwrite))
        return real(path, overwrite)

    monkeypatch.setattr(output, "atomic_output", spy)
    target = tmp_path / "new" / "r.json"
    output.write_atomic(str(target), "first")
    output.write_atomic(str(target), b"second")
    assert target.read_bytes() == b"second"
    assert opened == [(str(target), True)] * 2
    assert os.listdir(target.parent) == ["r.json"]  # no temporary file left
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask
