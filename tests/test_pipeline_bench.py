"""``pyflat bench --pipeline`` runs, CI-sized, and checks every result
against numpy (no timing assertions: the benchmark reports the ratios)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pyflat.bench import command, impls, overhead, pipeline


def test_workloads_are_the_issue_sizes():
    ws = {w.name: w for w in pipeline.workloads()}
    cifar = ws["cifar_u8_cf_b32"].a
    assert cifar.shape == (32, 3, 32, 32) and cifar.dtype == np.uint8
    tab = ws["tabular_f64_b128"].a
    assert tab.shape == (128, 20, 6) and tab.dtype == np.float64 and not tab.flags.c_contiguous
    assert {w.batch for w in ws.values()} == {1, 32, 128, 1024}


def test_measure_batches_checks_and_reports_items_per_second():
    ws = pipeline.workloads((1, 4))
    rows = pipeline.measure_batches(ws, torch=None, repeat=1, loop_s=1e-4)
    assert [r.workload for r in rows] == [w.name for w in ws]
    for r in rows:
        assert set(r.items_per_s) == {"pyflat", "numpy"} and all(v > 0 for v in r.items_per_s.values())


def test_a_wrong_result_is_caught(monkeypatch):
    w = pipeline.workloads((2,))[0]
    monkeypatch.setattr(pipeline.pyflat, "batch_flatten",
                        lambda a, data_format: np.zeros((len(a), a[0].size), a.dtype))
    with pytest.raises(AssertionError, match="differs from numpy"):
        pipeline.measure_batches([w], repeat=1, loop_s=1e-4)


def test_overhead_table_checks_results():
    rows = overhead.measure(overhead.table_cases()[:2], repeat=1, loop_s=1e-4)
    assert len(rows) == 2 and all(r.pyflat_ns > 0 and r.numpy_ns > 0 for r in rows)
    assert "pyflat / numpy" in overhead.format_rows(rows)
    cases = overhead.sweep_cases((256,))
    overhead.measure(cases, repeat=1, loop_s=1e-5)  # every sweep layout agrees with numpy


def test_command_without_torch(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(pipeline, "import_torch", lambda: None)
    monkeypatch.setattr(pipeline, "BATCHES", (1, 4))
    monkeypatch.setattr(pipeline, "QUICK_BATCHES", (1, 4))
    results, md = tmp_path / "p.json", tmp_path / "R.md"
    md.write_text("# results\n\nkept\n")
    argv = ["--pipeline", "--quick", "--repeat", "1", "--json", str(results),
            "--markdown", str(md)]
    assert command.main(argv) == 0
    captured = capsys.readouterr()
    assert "torch is not installed" in captured.err and "skipped" in captured.err
    data = json.loads(results.read_text())
    assert data["loader"] is None and len(data["calls"]) == len(overhead.table_cases())
    text = md.read_text()
    assert text.startswith("# results\n\nkept\n") and text.count(pipeline.SECTION_START) == 1
    assert command.main(argv) == 0  # rewrites its section, keeps the rest
    assert md.read_text().count(pipeline.SECTION_START) == 1
    assert "kept" in md.read_text()


def test_merge_section():
    section = f"{pipeline.SECTION_START}\nnew\n{pipeline.SECTION_END}\n"
    old = f"head\n\n{pipeline.SECTION_START}\nold\n{pipeline.SECTION_END}\ntail\n"
    assert pipeline.merge_section(old, section) == f"head\n\n{section}tail\n"
    assert pipeline.merge_section("", section) == section
    assert pipeline.merge_section("head\n", section) == f"head\n\n{section}"


def test_dataloader_with_two_workers_when_torch_is_installed():
    torch = impls.import_torch()
    if torch is None:
        pytest.skip("torch is not installed (the benchmark skips this part too)")
    result = pipeline.measure_loader(torch, samples=256, batch=64, num_workers=2, epochs=1)
    assert set(result.items_per_s) == {"pyflat", "numpy"} and result.ratio() > 0


def test_plot_when_matplotlib_is_installed(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    monkeypatch.setattr(pipeline, "import_torch", lambda: None)
    monkeypatch.setattr(pipeline, "QUICK_BATCHES", (1, 4))
    png, md = tmp_path / "p.png", tmp_path / "R.md"
    assert pipeline.main(["--quick", "--repeat", "1", "--plot", str(png),
                          "--markdown", str(md)]) == 0
    assert png.read_bytes().startswith(b"\x89PNG")
    assert "](p.png)" in md.read_text()


def test_the_main_report_keeps_the_pipeline_section(tmp_path):
    md = tmp_path / "R.md"
    section = f"{pipeline.SECTION_START}\n## pipes\n{pipeline.SECTION_END}\n"
    md.write_text("# old report\n\n" + section)
    kept = pipeline.keep_section(str(md), "# new report\n")
    assert kept.startswith("# new report\n") and kept.count(pipeline.SECTION_START) == 1
    assert "## pipes" in kept and "old report" not in kept
    assert pipeline.keep_section(str(tmp_path / "none.md"), "# new\n") == "# new\n"
