"""How many CPUs this process may really use: its affinity mask, and the CPU
quota of its control group (a container's ``--cpus``), whichever is smaller.

A quota is time, not CPUs: ``cpu.max`` of ``"150000 100000"`` lets the group
run 1.5 CPUs' worth per period, spread over any of the CPUs, and threads
beyond that only wait for the next period.  So the quota, rounded up, bounds
the useful thread count as the affinity mask does.  Both cgroup v2
(``cpu.max``) and v1 (``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``) are read,
in the process's own group and every group above it up to the mount point,
since a parent's quota limits its children too.
"""

from __future__ import annotations

import math
import os
from typing import Iterator, Optional

__all__ = ["available_cpus", "affinity_cpus", "cgroup_cpu_limit"]


def affinity_cpus() -> int:
    """CPUs in this process's affinity mask (all of them where the OS has none)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def available_cpus(proc: str = "/proc/self") -> int:
    """The affinity mask's CPU count, bounded by the cgroup quota rounded up."""
    cpus = affinity_cpus()
    limit = cgroup_cpu_limit(proc)
    if limit is not None:
        cpus = min(cpus, max(1, math.ceil(limit)))
    return max(1, cpus)


def cgroup_cpu_limit(proc: str = "/proc/self") -> Optional[float]:
    """The smallest CPU quota (in CPUs, e.g. 1.5) of this process's control
    groups, v1 or v2, or None when there is none (or no cgroup file system).

    ``proc`` is the ``/proc/<pid>`` folder to read ``cgroup`` and
    ``mountinfo`` from; tests point it at fake files.
    """
    limits = []
    for version, mount_point, group in _cpu_group_folders(proc):
        for folder in _folders_up_to(mount_point, group):
            limit = _read_v2(folder) if version == 2 else _read_v1(folder)
            if limit is not None:
                limits.append(limit)
    return min(limits, default=None)


def _read(path: str) -> Optional[str]:
    try:
        with open(path, encoding="ascii") as f:
            return f.read().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _read_v2(folder: str) -> Optional[float]:
    """``cpu.max``: ``"max 100000"`` (no quota) or ``"QUOTA PERIOD"``."""
    text = _read(os.path.join(folder, "cpu.max"))
    fields = text.split() if text else []
    if len(fields) != 2 or fields[0] == "max":
        return None
    return _ratio(fields[0], fields[1])


def _read_v1(folder: str) -> Optional[float]:
    """``cpu.cfs_quota_us`` (-1: no quota) over ``cpu.cfs_period_us``."""
    quota = _read(os.path.join(folder, "cpu.cfs_quota_us"))
    period = _read(os.path.join(folder, "cpu.cfs_period_us"))
    if quota is None or period is None:
        return None
    return _ratio(quota, period)


def _ratio(quota: str, period: str) -> Optional[float]:
    try:
        q, p = int(quota), int(period)
    except ValueError:
        return None
    return q / p if q > 0 and p > 0 else None


def _cpu_group_folders(proc: str) -> Iterator[tuple[int, str, str]]:
    """(cgroup version, mount point, the process's group below it) for every
    mounted hierarchy that holds the cpu controller."""
    groups = {}  # controller set ("" for v2) -> the process's group path
    for line in (_read(os.path.join(proc, "cgroup")) or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            groups[parts[1]] = parts[2]
    for line in (_read(os.path.join(proc, "mountinfo")) or "").splitlines():
        # ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS [OPTIONAL...] - TYPE SOURCE SUPER_OPTIONS
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3:
            continue
        root, mount_point = _unescape(fields[3]), _unescape(fields[4])
        if tail[0] == "cgroup2" and "" in groups:
            yield 2, mount_point, _below(groups[""], root)
        elif tail[0] == "cgroup" and "cpu" in tail[2].split(","):
            group = next((path for names, path in groups.items()
                          if "cpu" in names.split(",")), None)
            if group is not None:
                yield 1, mount_point, _below(group, root)


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes."""
    for code in ("\\040", "\\011", "\\012", "\\134"):
        field = field.replace(code, chr(int(code[1:], 8)))
    return field


def _below(group: str, root: str) -> str:
    """The group's path relative to the mount's root: in a container the mount
    root is the container's own group, and the path shown may lie outside it
    (then the mount point itself is the group)."""
    group, root = group.rstrip("/") or "/", root.rstrip("/") or "/"
    if root == "/":
        return group.lstrip("/")
    if group == root or group.startswith(root + "/"):
        return group[len(root):].lstrip("/")
    return ""


def _folders_up_to(mount_point: str, group: str) -> Iterator[str]:
    """The group's folder, then each parent, up to the mount point."""
    parts = [part for part in group.split("/") if part and part != ".."]
    for depth in range(len(parts), -1, -1):
        yield os.path.join(mount_point, *parts[:depth])
