"""The plan cache (csrc/plan_cache.c) is invisible: a plan read back from it
is the plan the planner makes, under the settings in force when it is read."""

from __future__ import annotations

import numpy as np

from pyflat import _kernel
from pyflat._pyflat import ffi, lib

# A 6 KB uint8 channels_first batch: a byte-permute program where the CPU
# has AVX-512 VBMI, a register-block transpose below that level.
CF_U8 = np.zeros((32, 3, 8, 8), np.uint8).transpose(0, 2, 3, 1)


def plan_bytes(view: np.ndarray, num_threads: int = 1) -> bytes:
    return bytes(ffi.buffer(_kernel.make_plan(view, num_threads)))


def other_layouts(count: int) -> None:
    """Plan ``count`` distinct layouts (evicting, or colliding with, others)."""
    base = np.zeros((64, 64, 4), np.float32)
    for i in range(count):
        _kernel.make_plan(base[: 2 + i % 60, :: 1 + i // 60], 1)


def test_repeated_plans_are_identical():
    first = plan_bytes(CF_U8)
    assert plan_bytes(CF_U8) == first
    other_layouts(300)
    assert plan_bytes(CF_U8) == first


def test_each_simd_level_gets_its_own_plan():
    plans = {}
    for simd in (lib.PF_SIMD_AUTO, lib.PF_SIMD_NONE, lib.PF_SIMD_SSE2, lib.PF_SIMD_AVX2,
                 lib.PF_SIMD_AVX512, lib.PF_SIMD_AUTO):
        old = lib.pf_force_simd(simd)
        try:
            plan = _kernel.make_plan(CF_U8, 1)
            if simd != lib.PF_SIMD_AUTO:
                assert plan.simd <= simd  # never a plan made at a higher level
            plans.setdefault(simd, bytes(ffi.buffer(plan)))
            assert bytes(ffi.buffer(plan)) == plans[simd]
        finally:
            lib.pf_force_simd(old)
    assert plans[lib.PF_SIMD_NONE] != plans[lib.PF_SIMD_AVX2]  # a portable plan, then SIMD


def test_thread_settings_are_part_of_the_key():
    big = np.zeros((512, 3, 64, 64), np.uint8).transpose(0, 2, 3, 1)  # 6 MB
    assert _kernel.make_plan(big, 1).num_threads == 1
    assert _kernel.make_plan(big, 2).num_threads == 2
    old = lib.pf_force_min_bytes_per_thread(1 << 40)  # no copy is big enough to share
    try:
        assert _kernel.make_plan(big, 2).num_threads == 1
    finally:
        lib.pf_force_min_bytes_per_thread(old)
    assert _kernel.make_plan(big, 2).num_threads == 2


def test_streaming_setting_is_part_of_the_key():
    rows = np.zeros((64, 8192), np.uint8)[:, :4096]  # memcpy of 4 KB runs
    old = lib.pf_force_streaming(0)
    try:
        assert not _kernel.make_plan(rows, 1).streaming
        lib.pf_force_streaming(1)
        assert _kernel.make_plan(rows, 1).streaming
        lib.pf_force_streaming(0)
        assert not _kernel.make_plan(rows, 1).streaming
    finally:
        lib.pf_force_streaming(old)
