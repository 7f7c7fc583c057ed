"""``pyflat bench``'s conversion cases (issue 14): the catalog entries, the
exact reference, the peers' expressions, the runner's checks and figures,
the report and ``--conversions``; at the scaled-down (--quick) sizes, with
no timing assertions."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import pyflat
from pyflat.bench import main
from pyflat.bench.cases import MEAN, STD, case_names, conversion_cases, select_cases
from pyflat.bench.conversion import close_enough, exact_result
from pyflat.bench.impls import default_impls, import_torch
from pyflat.bench.report import CONVERSIONS, Report
from pyflat.bench.runner import Record, Settings, WrongResult, run

NAMES = ["uint8_nchw_to_f32", "uint8_nchw_normalize", "f64_fortran_to_f32",
         "int16_audio_to_f32"]
QUICK = Settings(quick=True, repeat=1, min_seconds=0)


def flat_channels_last(a: np.ndarray, data_format: str) -> np.ndarray:
    """The flattened channels_last result, computed independently of the
    bench's helpers."""
    if data_format == "channels_first":
        a = np.moveaxis(a, 1, -1)
    return np.ascontiguousarray(a).reshape(len(a), -1)


def independent_reference(case, a: np.ndarray) -> np.ndarray:
    """pyflat's meaning spelt out on the flat result: factor of destination
    element k is factor[k % C], each step in the result dtype."""
    flat = flat_channels_last(a, case.data_format)
    dtype = case.convert.dtype
    channels = a.shape[1] if case.data_format == "channels_first" else a.shape[-1]
    result = flat.astype(dtype)
    for factor, op in ((case.convert.scale, np.multiply), (case.convert.offset, np.add)):
        if factor is not None:
            values = np.asarray(factor, dtype).reshape(-1)
            per_element = values[np.arange(flat.shape[1]) % channels] if values.size > 1 \
                else values
            result = op(result, per_element)
    return result


# -- the catalog ---------------------------------------------------------------

def test_the_issue_cases_are_in_the_catalog():
    assert [c.name for c in conversion_cases()] == NAMES
    assert set(NAMES) <= set(case_names())
    images, normalize, table, audio = select_cases(NAMES)
    for case in (images, normalize):
        assert case.dtype == np.uint8 and case.data_format == "channels_first"
        assert len(case.shape) == 4 and case.shape[1] == 3
        assert case.convert.dtype == np.float32
    assert images.convert.scale == 1 / 255 and images.convert.offset is None
    assert normalize.convert.scale == pytest.approx([1 / (255 * s) for s in STD])
    assert normalize.convert.offset == pytest.approx([-m / s for m, s in zip(MEAN, STD)])
    a = table.make(quick=True)
    assert a.dtype == np.float64 and a.flags.f_contiguous and not a.flags.c_contiguous
    assert table.convert.dtype == np.float32 and table.convert.scale is None
    assert audio.dtype == np.int16 and audio.data_format == "channels_first"
    assert audio.shape[1] == 2 and audio.convert.scale == 1 / 32768
    for case in (images, normalize, table, audio):  # realistic outputs, 10 to 40 MB
        assert 10e6 <= math.prod(case.shape) * case.result_dtype.itemsize <= 40e6
        assert math.prod(case.quick_shape) * 4 <= math.prod(case.shape)


@pytest.mark.parametrize("name", NAMES)
def test_exact_result_is_pyflats_meaning(name):
    case, = select_cases([name])
    a = case.make(quick=True)
    flat = np.ascontiguousarray(np.moveaxis(a, 1, -1) if case.data_format == "channels_first"
                                else a)
    result = exact_result(flat, case.convert)
    expected = independent_reference(case, a)
    assert result.dtype == expected.dtype and result.flags.c_contiguous
    assert result.shape == expected.shape and result.tobytes() == expected.tobytes()


def test_a_peer_is_close_but_not_pyflats_meaning():
    """x / 255 rounds differently from x * float32(1/255): close, not equal."""
    case, = select_cases(["uint8_nchw_to_f32"])
    a = case.make(quick=True)
    reference = independent_reference(case, a)
    peer = case.convert.numpy(a)
    assert close_enough(peer, reference)
    assert peer.tobytes() != reference.tobytes()


def test_close_enough_rejects_wrong_layouts_scales_and_dtypes():
    case, = select_cases(["uint8_nchw_normalize"])
    a = case.make(quick=True)
    reference = independent_reference(case, a)
    unpermuted = (a.reshape(len(a), -1).astype(np.float32) / 255 - 0.45) / 0.225
    assert not close_enough(unpermuted, reference)
    assert not close_enough(reference * np.float32(1.001), reference)
    assert not close_enough(reference.astype(np.float64), reference)
    assert not close_enough(np.asfortranarray(reference), reference)


@pytest.mark.parametrize("name", NAMES)
def test_peers_compute_the_case(name):
    case, = select_cases([name])
    a = case.make(quick=True)
    reference = independent_reference(case, a)
    assert close_enough(case.convert.numpy(a), reference)
    torch = import_torch()
    if torch is not None:
        result = case.convert.torch(torch, torch.from_numpy(a)).numpy()
        assert close_enough(result, reference)


# -- the runner ----------------------------------------------------------------

def check_figures(infos, records) -> None:
    by_case = {c.name: c for c in infos}
    for r in records:
        c = by_case[r.case]
        assert r.bytes == (2 * c.output_bytes if r.impl == "memcpy"
                           else c.input_bytes + c.output_bytes)
        memcpy = max(m.gbps for m in records if m.case == r.case and m.impl == "memcpy"
                     and m.threads <= r.threads)
        assert r.fraction_of_memcpy == pytest.approx(r.gbps / memcpy)
        if r.impl == "memcpy":
            continue
        # the traffic limit: memcpy of the output's bytes, scaled by the traffic
        limit = min(m.seconds for m in records if m.case == r.case and m.impl == "memcpy"
                    and m.threads <= r.threads) * c.traffic_bytes / (2 * c.output_bytes)
        assert r.fraction_of_memcpy == pytest.approx(limit / r.seconds)


def test_conversion_cases_run_checked_and_report():
    impls = default_impls([1, 2], torch=None)
    infos, records = run(conversion_cases(), impls, QUICK)
    assert [c.name for c in infos] == NAMES
    assert len(records) == len(NAMES) * len(impls)  # every row, pyflat's checked exactly
    for c in infos:
        case, = select_cases([c.name])
        a = case.make(quick=True)
        assert c.input_bytes == a.nbytes and c.output_bytes == a.size * 4
        assert not c.zero_copy and c.conversion.endswith(case.convert.factors_text)
        assert dict(c.expressions)["numpy"] == case.convert.numpy_text
        assert "pyflat.batch_flatten(x, " in dict(c.expressions)["pyflat"]
        kernel = next(r for r in records if r.case == c.name and r.impl == "pyflat-kernel")
        assert kernel.peak_bytes is not None
    check_figures(infos, records)


def test_pyflat_rounding_like_the_peer_is_a_wrong_result(monkeypatch):
    def divides(a, *, data_format="channels_last", dtype=None, scale=None, out=None,
                num_threads=None, **kwargs):
        result = flat_channels_last(a, data_format).astype(dtype) / np.float32(255)
        if out is None:
            return result
        out[...] = result
        return out
    monkeypatch.setattr(pyflat, "batch_flatten", divides)
    impls = [i for i in default_impls([1], torch=None) if i.name == "pyflat"]
    with pytest.raises(WrongResult, match="pyflat x1 gave a wrong result for case "
                                          "uint8_nchw_to_f32"):
        run(select_cases(["uint8_nchw_to_f32"]), impls, QUICK)


# -- the report and the command line -------------------------------------------

def record(case: str, impl: str, threads: int, seconds: float, **derived) -> Record:
    return Record(case, impl, threads, seconds, 10**6, **derived)


def test_targets_say_which_ones_pyflat_misses():
    from pyflat.bench.runner import CaseInfo
    infos = [CaseInfo(name, name, "uint8", (1,), "channels_first", 4 * 10**5, False,
                      input_bytes=10**5, conversion="uint8 -> float32")
             for name in ("good", "slow")]
    records = [  # the limit for the kernel's row, the speedups for the allocating one
        record("good", "pyflat", 1, 1.0, fraction_of_memcpy=0.5, speedup_vs_numpy=6.0,
               speedup_vs_torch=2.5),
        record("good", "pyflat-kernel", 1, 1.0, fraction_of_memcpy=0.9,
               speedup_vs_numpy=1.0, speedup_vs_torch=1.0),
        record("slow", "pyflat", 1, 1.0, fraction_of_memcpy=0.9, speedup_vs_numpy=6.0,
               speedup_vs_torch=1.5),
        record("slow", "pyflat-kernel", 1, 1.0, fraction_of_memcpy=0.5,
               speedup_vs_numpy=9.0, speedup_vs_torch=9.0),
        record("good", "memcpy", 1, 0.5), record("slow", "memcpy", 1, 0.5)]
    report = Report("today", "pyflat bench", {}, QUICK, infos, records)
    headers, rows = report.conversion_rows()
    targets = {row[0]: row[headers.index("targets (x1)")] for row in rows}
    assert targets == {"good": "met",
                       "slow": "MISSED >= 0.8 of the limit (pyflat-kernel), >= 2x torch"}
    limit = {row[0]: row[headers.index("limit x1")] for row in rows}
    assert limit["good"] == "312.50 ms"  # 0.5 s x (0.1 + 0.4 MB) / (2 x 0.4 MB)


def test_conversions_option_rewrites_only_its_section(tmp_path, capsys):
    md = tmp_path / "RESULTS.md"
    md.write_text(f"# results\n\nkept\n\n{CONVERSIONS.start}\nold\n{CONVERSIONS.end}\n\ntail\n")
    doc, png = tmp_path / "c.json", tmp_path / "c.png"
    assert main(["--quick", "--conversions", "--repeat", "1", "--no-torch", "--json",
                 str(doc), "--plot", str(png), "--markdown", str(md)]) == 0
    out = capsys.readouterr().out
    assert "Conversions: fraction of the traffic limit" in out
    assert "On the 4 conversion cases, pyflat with 1 thread reaches a median" in out
    text = md.read_text()
    assert text.startswith("# results\n\nkept\n\n") and text.endswith("tail\n")
    assert "\nold\n" not in text and text.count(CONVERSIONS.start) == 1
    assert "](c.png)" in text and all(f"| {name} |" in text for name in NAMES)
    assert "`np.moveaxis(x, 1, -1).reshape(n, -1).astype(np.float32) / 255`" in text
    results = json.loads(doc.read_text())
    assert [c["name"] for c in results["cases"]] == NAMES
    assert all("speedup_vs_torch" in r for r in results["results"])
    assert all(c["conversion"] and c["input_bytes"] for c in results["cases"])


def test_a_run_without_conversions_keeps_their_section(tmp_path, capsys):
    md = tmp_path / "RESULTS.md"
    section = f"{CONVERSIONS.start}\nmeasured before\n{CONVERSIONS.end}\n"
    md.write_text(f"# old report\n\n{section}")
    assert main(["--quick", "--cases", "small_f32", "--repeat", "1", "--no-torch",
                 "--out", str(tmp_path), "--markdown", str(md)]) == 0
    text = md.read_text()
    assert text.startswith("# pyflat benchmark results") and text.count(section) == 1


def test_conversions_is_not_with_cases(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--quick", "--conversions", "--cases", "small_f32"])
    assert exit_.value.code == 2
    assert "--conversions" in capsys.readouterr().err


def test_torchvision_peer_runs_on_image_conversions_only():
    """With a stand-in for torchvision's v2 functional API (torchvision is not
    a test dependency): the row exists at torch's default thread count, only
    on the image cases, and its result is checked."""
    torch = pytest.importorskip("torch")
    from types import SimpleNamespace

    def to_dtype(t, dtype, scale):
        assert dtype == torch.float32 and scale
        return t.to(dtype).div(255)

    def normalize(t, mean, std):
        return ((t - torch.tensor(mean)[:, None, None])
                / torch.tensor(std)[:, None, None])
    functional = SimpleNamespace(to_dtype=to_dtype, normalize=normalize)
    impls = [i for i in default_impls([1], torch, functional)
             if i.name in ("torchvision", "memcpy")]
    assert [i.threads for i in impls if i.name == "torchvision"] == [torch.get_num_threads()]
    infos, records = run(conversion_cases(), impls, QUICK)
    assert {r.case for r in records if r.impl == "torchvision"} == {
        "uint8_nchw_to_f32", "uint8_nchw_normalize"}
    skipped = {c.name: dict(c.skipped) for c in infos}
    label = f"torchvision x{torch.get_num_threads()}"
    assert skipped["f64_fortran_to_f32"] == {label: "not an image conversion "
                                                    "(ToDtype + Normalize)"}
    assert default_impls([1], None, functional) == default_impls([1], None, None)
