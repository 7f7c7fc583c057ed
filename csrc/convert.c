/* Converting copies: the view is cut into chunks that are contiguous in
 * the destination (a range of indices along one normalised axis with the
 * axes before it fixed, or a piece of the last axis), each converted by
 * one of the paths below, so that each element is read from memory once
 * and written once and no block kernel of the planner needs a converting
 * variant:
 *
 * - direct: rows contiguous and long: the contiguous conversion loop
 *   (convert_scalar.c, convert_x86.c) runs straight from the source;
 * - planes: a few channels (last axis, 2 to 4) of contiguous runs, i.e.
 *   channels-first images and audio: a vector loop converts and
 *   interleaves them in registers;
 * - wide: 8 or more such channels (Fortran-ordered tables) to float32: a
 *   vector loop converts and transposes them in registers, 16 rows at a
 *   time;
 * - planar: other such channels: each channel's run is converted into an
 *   L2 scratch, the planner moves it into destination order, and it is
 *   copied out;
 * - scratch: anything else: the planner copies the chunk into an L1/L2
 *   scratch (source type), the contiguous loop converts it out.  All full
 *   chunks share one plan; a ragged last range along the axis has a
 *   second.
 *
 * Large outputs are written with non-temporal stores.
 */
#include "internal.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Source bytes per chunk copied into scratch (L1/L2).  Measured
 * (tools/convert_kernel.py, one thread, before the planes loops took the
 * channels-first cases): 8 to 128 KiB all within the machine's noise. */
#ifndef PF_CONVERT_SCRATCH_BYTES
#define PF_CONVERT_SCRATCH_BYTES (32 * 1024)
#endif

/* Planar chunks (many planes, see run_planar): bytes of each of the two
 * destination-type scratch buffers.  Short runs per plane are slow to read
 * (measured: 20 float64 planes, runs of 200 rows 26 ms, of 2500 rows 5 ms),
 * so these chunks are large and live in L2 (measured, float64 Fortran
 * table 500000 x 20 to float32: 64 KiB 10.7-19 ms, 128 KiB 8.4-9.0 ms,
 * 256 KiB 8.1 ms, 512 KiB 7.1-7.3 ms). */
#ifndef PF_CONVERT_PLANAR_BYTES
#define PF_CONVERT_PLANAR_BYTES (512 * 1024)
#endif
#define PF_CONVERT_MIN_RUN 64

/* Outputs at least this large are written with non-temporal stores (the
 * vector loops): they skip the read for ownership of each destination
 * line, a fifth of a uint8 -> float32 conversion's traffic.  Measured
 * (contiguous uint8 -> float32, one thread, 32 MB L3): 7.4 MB out 0.24 ms
 * cached / 0.30 streamed, 14.7 MB 0.63 / 0.57, 29.5 MB 1.41 / 1.19. */
#define PF_CONVERT_STREAMING_MIN_BYTES ((int64_t)12 << 20)

/* Contiguous rows at least this long (source bytes) are converted in
 * place; shorter ones go through the planner's short-row kernels. */
#define PF_CONVERT_DIRECT_ROW_BYTES 256

int64_t pf_type_size(int type)
{
    static const int64_t sizes[PF_TYPE_COUNT] = {1, 1, 1, 2, 2, 4, 4, 8, 8, 2, 4, 8};
    return type >= 0 && type < PF_TYPE_COUNT ? sizes[type] : 0;
}

int pf_convert_supported(int src_type, int dst_type)
{
    return pf_convert_portable(src_type, dst_type) != NULL;
}

static pf_convert_fn loop_for(int src_type, int dst_type, const char **name)
{
    *name = "portable";
    pf_convert_fn v = pf_convert_vector(src_type, dst_type, pf_simd_level(), name);
    return v ? v : pf_convert_portable(src_type, dst_type);
}

const char *pf_convert_loop_name(int src_type, int dst_type)
{
    const char *name;
    return loop_for(src_type, dst_type, &name) ? name : "none";
}

/* Factor k of `factors` (destination type) in the compute type. */
static void put_factor(char *pattern, int64_t i, const char *factors, int64_t k, int dst_type)
{
    const int64_t e = pf_type_size(dst_type);
    const char *p = factors + k * e;
    switch (dst_type) {
    case PF_TYPE_FLOAT16: {
        uint16_t h;
        memcpy(&h, p, 2);
        const float v = pf_f16_to_f32(h);
        memcpy(pattern + 4 * i, &v, 4);
        return;
    }
    case PF_TYPE_FLOAT32:
        memcpy(pattern + 4 * i, p, 4);
        return;
    case PF_TYPE_FLOAT64:
        memcpy(pattern + 8 * i, p, 8);
        return;
    default: { /* integers: sign- or zero-extended to uint64 */
        uint64_t v = 0;
        int8_t i8; int16_t i16; int32_t i32; uint8_t u8; uint16_t u16; uint32_t u32;
        switch (dst_type) {
        case PF_TYPE_INT8: memcpy(&i8, p, 1); v = (uint64_t)i8; break;
        case PF_TYPE_UINT8: memcpy(&u8, p, 1); v = u8; break;
        case PF_TYPE_INT16: memcpy(&i16, p, 2); v = (uint64_t)i16; break;
        case PF_TYPE_UINT16: memcpy(&u16, p, 2); v = u16; break;
        case PF_TYPE_INT32: memcpy(&i32, p, 4); v = (uint64_t)i32; break;
        case PF_TYPE_UINT32: memcpy(&u32, p, 4); v = u32; break;
        default: memcpy(&v, p, 8); break; /* 64-bit: the bits are the value mod 2**64 */
        }
        memcpy(pattern + 8 * i, &v, 8);
        return;
    }
    }
}

/* The factors repeated to `period` + PF_CONVERT_LANES values, or NULL. */
static char *expand(const void *factors, int64_t len, int64_t period, int dst_type)
{
    const int64_t e = dst_type == PF_TYPE_FLOAT16 || dst_type == PF_TYPE_FLOAT32 ? 4 : 8;
    char *pattern = malloc((size_t)((period + PF_CONVERT_LANES) * e));
    if (pattern == NULL)
        return NULL;
    for (int64_t i = 0; i < period + PF_CONVERT_LANES; i++)
        put_factor(pattern, i, factors, i % len, dst_type);
    return pattern;
}

typedef struct {
    const char *src;
    char *dst;
    int n; /* the normalised layout */
    const int64_t *shape, *strides;
    int axis;        /* chunks: ranges along this axis, the axes before fixed */
    int64_t step;    /* indices of it per chunk */
    int64_t pieces;  /* chunks per index of the axes before */
    int64_t inner;   /* elements per index of it */
    int64_t src_e, dst_e;
    int direct;      /* rows contiguous: no scratch */
    pf_planes_fn planes; /* or a few planes interleaved: no scratch */
    pf_wide_fn wide;     /* or many, transposed in registers */
    int planar;          /* or many planes: convert runs, then move */
    int64_t factor_size; /* bytes of a factor in the compute type */
    const pf_plan *whole, *ragged; /* chunk copies into scratch */
    pf_convert_fn convert;
    pf_factors factors;
    _Atomic int bad;
    _Atomic int nomem;
} job;

/* Direct: the chunk's rows (axes axis..n-2 of it), straight from the source. */
static int convert_rows(const job *k, char *d, const char *s, int64_t count, int64_t j)
{
    const int n = k->n, last = n - 1;
    const int64_t len = k->shape[last];
    if (k->axis == last)
        return k->convert(d, s, count, &k->factors, j);
    int64_t idx[PF_MAX_DIMS] = {0};
    const int64_t j_step = len % k->factors.period;
    const int64_t rows = count * k->inner / len;
    int bad = 0;
    for (int64_t r = 0; r < rows; r++) {
        bad |= k->convert(d, s, len, &k->factors, j);
        d += len * k->dst_e;
        j += j_step;
        if (j >= k->factors.period)
            j -= k->factors.period;
        for (int a = last - 1; a >= k->axis; a--) { /* next row: odometer */
            s += k->strides[a];
            if (++idx[a] < (a == k->axis ? count : k->shape[a]))
                break;
            s -= idx[a] * k->strides[a];
            idx[a] = 0;
        }
    }
    return bad;
}

/* Planar: each plane's run converted into a (plane, element) scratch with
 * the contiguous loops, the planner moves it to (element, plane) order,
 * then one contiguous copy to the destination.  A run's factors are one
 * channel's: the plane count is a multiple of the channel count. */
static int run_planar(const job *k, char *d, const char *s, int64_t count, int64_t j,
                      char *planar, char *moved)
{
    const int64_t planes = k->shape[k->n - 1], run_bytes = count * k->dst_e;
    _Alignas(64) char scale[2 * PF_CONVERT_LANES * 8], offset[2 * PF_CONVERT_LANES * 8];
    pf_factors one = k->factors;
    one.stream = 0;
    int bad = 0;
    for (int64_t p = 0; p < planes; p++) {
        const int64_t c = (j + p) % k->factors.channels, e = k->factor_size;
        for (int64_t i = 0; i < 2 * PF_CONVERT_LANES; i++) {
            if (k->factors.scale)
                memcpy(scale + i * e, (const char *)k->factors.scale + c * e, (size_t)e);
            if (k->factors.offset)
                memcpy(offset + i * e, (const char *)k->factors.offset + c * e, (size_t)e);
        }
        one.scale = k->factors.scale ? scale : NULL;
        one.offset = k->factors.offset ? offset : NULL;
        one.period = PF_CONVERT_LANES;
        bad |= k->convert(planar + p * run_bytes, s + p * k->strides[k->n - 1], count, &one, 0);
    }
    pf_plan_execute(count == k->step ? k->whole : k->ragged, planar, moved);
    if (k->factors.stream)
        pf_stream_copy(d, moved, run_bytes * planes);
    else
        memcpy(d, moved, (size_t)(run_bytes * planes));
    return bad;
}

static void run_chunks(void *c, int64_t begin, int64_t end)
{
    job *k = c;
    _Alignas(64) char scratch[PF_CONVERT_SCRATCH_BYTES];
    const int64_t extent = k->shape[k->axis];
    char *planar = NULL;
    if (k->planar && (planar = malloc(2 * PF_CONVERT_PLANAR_BYTES)) == NULL) {
        atomic_store(&k->nomem, 1);
        return;
    }
    int bad = 0;
    for (int64_t u = begin; u < end; u++) {
        const int64_t outer = u / k->pieces, first = u % k->pieces * k->step;
        const int64_t count = extent - first < k->step ? extent - first : k->step;
        const char *s = k->src + first * k->strides[k->axis];
        int64_t rest = outer;
        for (int a = k->axis - 1; a >= 0; a--) {
            s += rest % k->shape[a] * k->strides[a];
            rest /= k->shape[a];
        }
        const int64_t g0 = (outer * extent + first) * k->inner; /* destination element */
        char *d = k->dst + g0 * k->dst_e;
        const int64_t j = g0 % k->factors.period;
        if (k->planes) {
            bad |= k->planes(d, s, count, k->strides[k->n - 1], &k->factors, j);
        } else if (k->wide) {
            bad |= k->wide(d, s, count, k->strides[k->n - 1], k->shape[k->n - 1], &k->factors);
        } else if (k->planar) {
            bad |= run_planar(k, d, s, count, j, planar, planar + PF_CONVERT_PLANAR_BYTES);
        } else if (k->direct) {
            bad |= convert_rows(k, d, s, count, j);
        } else {
            pf_plan_execute(count == k->step ? k->whole : k->ragged, s, scratch);
            bad |= k->convert(d, scratch, count * k->inner, &k->factors, j);
        }
    }
    free(planar);
    if (k->factors.stream)
        pf_stream_fence();
    if (bad)
        atomic_store(&k->bad, 1);
}

/* Chunks along the first axis from `lowest` on whose inner block holds at
 * most `budget` elements; fills k->axis, step, pieces, inner.  Returns the number of
 * chunks. */
static int64_t choose_chunks(job *k, int64_t elements, int lowest, int64_t budget)
{
    int64_t inner = 1;
    int a = k->n - 1;
    while (a > lowest && inner * k->shape[a] <= budget) {
        inner *= k->shape[a];
        a--;
    }
    k->axis = a;
    k->inner = inner;
    k->step = budget / inner < k->shape[a] ? budget / inner : k->shape[a];
    k->pieces = (k->shape[a] + k->step - 1) / k->step;
    return elements / (k->shape[a] * inner) * k->pieces;
}

/* The plan of a chunk of `count` indices along k->axis: a copy of the
 * source view into scratch, or for planar chunks the move of the planar
 * scratch into destination order. */
static int plan_chunk(const job *k, pf_plan *plan, int64_t count)
{
    if (k->planar) {
        const int64_t shape[2] = {count, k->shape[k->n - 1]};
        const int64_t strides[2] = {k->dst_e, count * k->dst_e};
        return pf_plan_make(plan, 2, shape, strides, k->dst_e, 1);
    }
    int64_t shape[PF_MAX_DIMS];
    const int n = k->n - k->axis;
    shape[0] = count;
    for (int d = 1; d < n; d++)
        shape[d] = k->shape[k->axis + d];
    return pf_plan_make(plan, n, shape, k->strides + k->axis, k->src_e, 1);
}

int pf_convert_copy(const char *src, char *dst, int ndim, const int64_t *shape,
                    const int64_t *src_strides, int src_type, int dst_type,
                    const void *scale, int64_t scale_len,
                    const void *offset, int64_t offset_len, int num_threads)
{
    if (!pf_convert_supported(src_type, dst_type))
        return PF_ERR_TYPE;
    if ((scale != NULL && scale_len < 1) || (offset != NULL && offset_len < 1))
        return PF_ERR_FACTORS;
    int64_t channels = 1;
    if (scale != NULL && scale_len > 1)
        channels = scale_len;
    if (offset != NULL && offset_len > 1) {
        if (channels > 1 && offset_len != channels)
            return PF_ERR_FACTORS;
        channels = offset_len;
    }
    if (num_threads < 0)
        return PF_ERR_THREADS;

    job k;
    memset(&k, 0, sizeof k);
    k.src_e = pf_type_size(src_type);
    k.dst_e = pf_type_size(dst_type);
    /* Checks the layout (and plans the copy of the whole view). */
    pf_plan full;
    int status = pf_plan_make(&full, ndim, shape, src_strides, k.src_e, 1);
    if (status != PF_OK || full.kernel == PF_KERNEL_NONE)
        return status;
    if (src == NULL || dst == NULL)
        return PF_ERR_NULL;
    const int64_t elements = full.nbytes / k.src_e;
    int64_t out_bytes;
    if (__builtin_mul_overflow(elements, k.dst_e, &out_bytes))
        return PF_ERR_OVERFLOW;

    k.src = src;
    k.dst = dst;
    int64_t norm_shape[PF_MAX_DIMS], norm_strides[PF_MAX_DIMS];
    k.n = pf_normalise_layout(ndim, shape, src_strides, k.src_e, norm_shape, norm_strides);
    k.shape = norm_shape;
    k.strides = norm_strides;
    const int last = k.n - 1;
    k.direct = k.strides[last] == k.src_e
               && (k.n == 1 || k.shape[last] * k.src_e >= PF_CONVERT_DIRECT_ROW_BYTES);
    /* Channels (the last axis) of contiguous runs: planes, wide or planar
     * chunks (the last two take each run's factors as one channel's). */
    const int64_t planes = k.shape[last];
    k.factor_size = dst_type == PF_TYPE_FLOAT16 || dst_type == PF_TYPE_FLOAT32 ? 4 : 8;
    int64_t units;
    if (!k.direct && k.n >= 2 && k.strides[last - 1] == k.src_e) {
        k.planes = pf_convert_planes(src_type, dst_type, planes, pf_simd_level());
        if (planes % channels == 0 && k.planes == NULL)
            k.wide = pf_convert_wide(src_type, dst_type, planes, pf_simd_level());
        k.planar = k.planes == NULL && k.wide == NULL && planes > 4 && planes % channels == 0
                   && planes * k.dst_e * PF_CONVERT_MIN_RUN <= PF_CONVERT_PLANAR_BYTES;
    }
    if (k.planar || k.wide)
        units = choose_chunks(&k, elements, last - 1, PF_CONVERT_PLANAR_BYTES / k.dst_e);
    else
        units = choose_chunks(&k, elements, k.planes ? last - 1 : 0,
                              PF_CONVERT_SCRATCH_BYTES / k.src_e);

    pf_plan whole, ragged;
    if (!k.direct && !k.planes && !k.wide) {
        k.whole = &whole;
        k.ragged = &ragged;
        if (!k.planar && k.axis == 0 && k.step == k.shape[0]) {
            /* One chunk, the whole view: its plan is `full` (planning a
             * small byte-permute program costs microseconds). */
            k.whole = &full;
        } else {
            status = plan_chunk(&k, &whole, k.step);
            if (status == PF_OK && k.shape[k.axis] % k.step != 0)
                status = plan_chunk(&k, &ragged, k.shape[k.axis] % k.step);
            if (status != PF_OK)
                return status;
        }
    }

    const char *name;
    k.convert = loop_for(src_type, dst_type, &name);
    /* A period of whole channel cycles, at least a vector of lanes long. */
    k.factors.period = channels * ((PF_CONVERT_LANES + channels - 1) / channels);
    k.factors.channels = channels;
    char *scale_pattern = NULL, *offset_pattern = NULL;
    if (scale != NULL && (scale_pattern = expand(scale, scale_len, k.factors.period, dst_type)) == NULL)
        return PF_ERR_NOMEM;
    if (offset != NULL
            && (offset_pattern = expand(offset, offset_len, k.factors.period, dst_type)) == NULL) {
        free(scale_pattern);
        return PF_ERR_NOMEM;
    }
    const int forced = pf_streaming_forced();
    k.factors.stream = (forced >= 0 ? forced : out_bytes >= PF_CONVERT_STREAMING_MIN_BYTES)
                       && (uintptr_t)dst % (uintptr_t)k.dst_e == 0;
    k.factors.scale = scale_pattern;
    k.factors.offset = offset_pattern;

    status = pf_pool_run(pf_threads_for(out_bytes, units, num_threads), units, run_chunks, &k);
    free(scale_pattern);
    free(offset_pattern);
    if (status != PF_OK)
        return status;
    if (atomic_load(&k.nomem))
        return PF_ERR_NOMEM;
    return atomic_load(&k.bad) ? PF_ERR_RANGE : PF_OK;
}
