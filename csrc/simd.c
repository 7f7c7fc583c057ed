/* Runtime CPU dispatch (which SIMD level the micro-kernels may use), tile
 * sizes, and the streaming-store decision.  The default build targets the
 * baseline ISA; faster kernels carry target attributes (micro_x86.c). */
#include "internal.h"

#include <stdatomic.h>

static _Atomic int forced_simd = PF_SIMD_AUTO;
static _Atomic int forced_streaming = -1;

static int cpu_simd(void)
{
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
            && __builtin_cpu_supports("avx512vbmi"))
        return PF_SIMD_AVX512;
    if (__builtin_cpu_supports("avx2"))
        return PF_SIMD_AVX2;
    return PF_SIMD_SSE2; /* baseline on x86-64 */
#else
    return PF_SIMD_NONE;
#endif
}

int pf_simd_level(void)
{
    int best = cpu_simd();
    int forced = atomic_load(&forced_simd);
    return forced == PF_SIMD_AUTO || forced > best ? best : forced;
}

int pf_force_simd(int simd)
{
    return atomic_exchange(&forced_simd, simd);
}

int pf_force_streaming(int streaming)
{
    return atomic_exchange(&forced_streaming, streaming);
}

const char *pf_simd_name(int simd)
{
    switch (simd) {
    case PF_SIMD_NONE: return "portable";
    case PF_SIMD_SSE2: return "sse2";
    case PF_SIMD_AVX2: return "avx2";
    case PF_SIMD_AVX512: return "avx512vbmi";
    default: return "unknown";
    }
}

int64_t pf_tile_edge(int64_t itemsize)
{
    int64_t edge = PF_TILE_BYTES / itemsize;
    return edge < 8 ? 8 : edge > 64 ? 64 : edge;
}

int pf_streaming_forced(void)
{
    return atomic_load(&forced_streaming);
}

int pf_use_streaming(int64_t nbytes)
{
    int forced = atomic_load(&forced_streaming);
    if (forced >= 0)
        return forced;
    return nbytes >= PF_STREAMING_MIN_BYTES;
}
