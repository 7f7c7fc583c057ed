"""The default thread count and who may change it: CPU affinity and cgroup
quotas (on fake cgroup files), worker processes, threadpoolctl."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import pyflat
from pyflat import cpus, threads
from pyflat._after_import import call_after_import

ROOT = Path(__file__).resolve().parents[1]


def run_python(code: str, **env: str) -> str:
    environment = {k: v for k, v in os.environ.items() if k != threads.ENV_VAR}
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    environment.update(env)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=environment,
                          capture_output=True, text=True, check=True).stdout


# -- cgroup quotas, on fake /proc/self and cgroup files ---------------------------

def fake_proc(tmp_path: Path, cgroup: str, mounts: list[tuple[str, str, str, str]]) -> str:
    """A fake /proc/self: ``cgroup`` lines, and mounts of (root, mount point,
    type, super options)."""
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "cgroup").write_text(cgroup)
    (proc / "mountinfo").write_text("".join(
        f"{30 + k} 23 0:{40 + k} {root} {point} rw,relatime - {kind} {kind} {options}\n"
        for k, (root, point, kind, options) in enumerate(mounts)))
    return str(proc)


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_cgroup_v2_quota(tmp_path):
    unified = tmp_path / "cgroup"
    write(unified / "user.slice" / "job" / "cpu.max", "150000 100000\n")
    write(unified / "user.slice" / "cpu.max", "max 100000\n")
    proc = fake_proc(tmp_path, "0::/user.slice/job\n", [("/", str(unified), "cgroup2", "rw")])
    assert cpus.cgroup_cpu_limit(proc) == 1.5


def test_cgroup_v2_parent_quota_limits_the_child(tmp_path):
    unified = tmp_path / "cgroup"
    write(unified / "a" / "b" / "cpu.max", "max 100000\n")
    write(unified / "a" / "cpu.max", "50000 100000\n")
    proc = fake_proc(tmp_path, "0::/a/b\n", [("/", str(unified), "cgroup2", "rw")])
    assert cpus.cgroup_cpu_limit(proc) == 0.5


def test_cgroup_v2_no_quota(tmp_path):
    unified = tmp_path / "cgroup"
    write(unified / "cpu.max", "max 100000\n")
    proc = fake_proc(tmp_path, "0::/\n", [("/", str(unified), "cgroup2", "rw")])
    assert cpus.cgroup_cpu_limit(proc) is None


def test_cgroup_v2_in_a_container_namespace(tmp_path):
    """The mount's root is the container's own group: its files are at the
    mount point, whatever path /proc/self/cgroup shows."""
    unified = tmp_path / "cgroup"
    write(unified / "cpu.max", "300000 100000\n")
    proc = fake_proc(tmp_path, "0::/docker/abc\n",
                     [("/docker/abc", str(unified), "cgroup2", "rw")])
    assert cpus.cgroup_cpu_limit(proc) == 3.0


def test_cgroup_v1_quota(tmp_path):
    cpu = tmp_path / "cpu,cpuacct"
    write(cpu / "docker" / "abc" / "cpu.cfs_quota_us", "200000\n")
    write(cpu / "docker" / "abc" / "cpu.cfs_period_us", "100000\n")
    write(cpu / "cpu.cfs_quota_us", "-1\n")
    write(cpu / "cpu.cfs_period_us", "100000\n")
    proc = fake_proc(tmp_path, "5:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n3:cpuset:/\n",
                     [("/", str(tmp_path / "memory"), "cgroup", "rw,memory"),
                      ("/", str(cpu), "cgroup", "rw,cpu,cpuacct")])
    assert cpus.cgroup_cpu_limit(proc) == 2.0


def test_cgroup_v1_no_quota_and_hybrid_v2(tmp_path):
    """As on this project's machines: v1 cpu without a quota, an empty v2."""
    cpu, unified = tmp_path / "cpu", tmp_path / "unified"
    write(cpu / "cpu.cfs_quota_us", "-1\n")
    write(cpu / "cpu.cfs_period_us", "100000\n")
    unified.mkdir()
    proc = fake_proc(tmp_path, "2:cpuacct:/\n1:cpu:/\n0::/\n",
                     [("/", str(cpu), "cgroup", "rw,cpu"),
                      ("/", str(unified), "cgroup2", "rw")])
    assert cpus.cgroup_cpu_limit(proc) is None


def test_mount_point_with_a_space(tmp_path):
    unified = tmp_path / "my cgroup"
    write(unified / "cpu.max", "100000 100000\n")
    proc = fake_proc(tmp_path, "0::/\n",
                     [("/", str(unified).replace(" ", "\\040"), "cgroup2", "rw")])
    assert cpus.cgroup_cpu_limit(proc) == 1.0


def test_no_cgroup_files(tmp_path):
    assert cpus.cgroup_cpu_limit(str(tmp_path / "missing")) is None


@pytest.mark.parametrize("limit, affinity, expected",
                         [(None, 8, 8), (1.5, 8, 2), (0.2, 8, 1), (16.0, 4, 4)])
def test_available_cpus_is_the_smaller_bound(monkeypatch, limit, affinity, expected):
    monkeypatch.setattr(cpus, "affinity_cpus", lambda: affinity)
    monkeypatch.setattr(cpus, "cgroup_cpu_limit", lambda proc: limit)
    assert cpus.available_cpus() == expected


def test_the_default_is_the_available_cpus():
    out = run_python("import pyflat, pyflat.cpus; "
                     "print(pyflat.get_num_threads(), pyflat.cpus.available_cpus())")
    default, available = out.split()
    assert default == available


# -- worker processes ----------------------------------------------------------

def test_forked_child_defaults_to_one_thread():
    out = run_python("""
        import os, pyflat, numpy as np
        pyflat.set_num_threads(2)
        a = np.zeros((64, 64, 32, 32), np.float32)
        pid = os.fork()
        if pid == 0:
            plan = pyflat.explain(a, data_format="channels_first")
            os._exit(10 * pyflat.get_num_threads() + plan.num_threads)
        print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), pyflat.get_num_threads())
    """)
    assert out.split() == ["11", "2"]  # child: 1 thread, planned on 1; parent unchanged


def test_forked_child_keeps_the_environment_setting():
    out = run_python("""
        import os, pyflat
        pid = os.fork()
        if pid == 0:
            os._exit(pyflat.get_num_threads())
        print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
    """, PYFLAT_NUM_THREADS="3")
    assert out.strip() == "3"


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_multiprocessing_children_default_to_one_thread(method):
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"start method {method!r} not available here")
    with multiprocessing.get_context(method).Pool(1) as pool:
        assert pool.apply_async(pyflat.get_num_threads).get(120) == 1


def test_a_child_may_ask_for_more():
    out = run_python("""
        import os, pyflat
        pid = os.fork()
        if pid == 0:
            pyflat.set_num_threads(2)  # as in a DataLoader's worker_init_fn
            os._exit(pyflat.get_num_threads())
        print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
    """)
    assert out.strip() == "2"


# -- threadpoolctl -------------------------------------------------------------

THREADPOOLCTL_CHECK = """
    import json, numpy as np, pyflat, threadpoolctl
    pyflat.set_num_threads(2)
    a = np.zeros((64, 64, 32, 32), np.float32)
    found = [i for i in threadpoolctl.threadpool_info() if i["user_api"] == "pyflat"]
    with threadpoolctl.threadpool_limits(1):
        limited = (pyflat.get_num_threads(),
                   pyflat.explain(a, data_format="channels_first").num_threads)
    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        blas_only = pyflat.get_num_threads()
    print(json.dumps({"found": found, "limited": limited, "after": pyflat.get_num_threads(),
                      "blas_only": blas_only, "version": pyflat.__version__}))
"""


@pytest.mark.parametrize("first", ["pyflat", "threadpoolctl"])
def test_threadpoolctl_lists_and_limits_the_pool(first):
    pytest.importorskip("threadpoolctl")
    result = json.loads(run_python(f"import {first}\n" + textwrap.dedent(THREADPOOLCTL_CHECK)))
    (info,) = result["found"]
    assert info["internal_api"] == "pyflat"
    assert info["num_threads"] == 2
    assert info["version"] == result["version"]
    assert os.path.basename(info["filepath"]).startswith("_pyflat")
    assert result["limited"] == [1, 1]   # the default and the plan both follow
    assert result["after"] == 2          # restored on leaving the block
    assert result["blas_only"] == 2      # other APIs' limits leave it alone


def test_threadpoolctl_controller_clamps_counts():
    pytest.importorskip("threadpoolctl")
    from threadpoolctl import ThreadpoolController
    (controller,) = ThreadpoolController().select(user_api="pyflat").lib_controllers
    before = pyflat.get_num_threads()
    try:
        controller.set_num_threads(0)
        assert pyflat.get_num_threads() == 1
        controller.set_num_threads(10**6)
        assert pyflat.get_num_threads() == threads.MAX_THREADS
    finally:
        pyflat.set_num_threads(before)


# -- running code after an import, without importing ----------------------------

def test_call_after_import_waits_for_the_import(tmp_path, monkeypatch):
    (tmp_path / "pyflat_probe_module.py").write_text("VALUE = 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    seen = []
    call_after_import("pyflat_probe_module", lambda module: seen.append(module.VALUE))
    assert seen == [] and "pyflat_probe_module" not in sys.modules
    try:
        import pyflat_probe_module
        assert seen == [42]
        assert type(pyflat_probe_module.__loader__).__name__ == "SourceFileLoader"
        assert not any(type(f).__name__ == "_Finder" and f.name == "pyflat_probe_module"
                       for f in sys.meta_path)  # one shot
        call_after_import("pyflat_probe_module", lambda module: seen.append(0))
        assert seen == [42, 0]  # already imported: called at once
    finally:
        sys.modules.pop("pyflat_probe_module", None)


def test_call_after_import_turns_errors_into_warnings(tmp_path, monkeypatch):
    (tmp_path / "pyflat_probe_failing.py").write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))

    def broken(module):
        raise RuntimeError("boom")

    call_after_import("pyflat_probe_failing", broken)
    try:
        with pytest.warns(RuntimeWarning, match="pyflat_probe_failing.*boom"):
            import pyflat_probe_failing
        assert pyflat_probe_failing.VALUE == 1
    finally:
        sys.modules.pop("pyflat_probe_failing", None)


def test_call_after_import_of_a_missing_module_keeps_waiting(monkeypatch):
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    call_after_import("pyflat_no_such_module", lambda module: None)
    with pytest.raises(ModuleNotFoundError):
        import pyflat_no_such_module  # noqa: F401
    assert any(getattr(f, "name", None) == "pyflat_no_such_module" for f in sys.meta_path)
