/* Planning: normalise the layout, then choose kernel, tiles, chunks and threads.
 *
 * The destination is always C-contiguous, so only the source decides which
 * axes can merge, and the destination order fixes the loop order (writes
 * stay sequential).
 */
#include "pyflat.h"
#include "internal.h"

#include <stdatomic.h>
#include <string.h>

static _Atomic int64_t forced_min_bytes_per_thread = -1;

int64_t pf_force_min_bytes_per_thread(int64_t nbytes)
{
    return atomic_exchange(&forced_min_bytes_per_thread, nbytes);
}

static int64_t abs64(int64_t x) { return x < 0 ? -x : x; }

/* Axes of size 1 never move the pointer: drop them.  Returns the new ndim. */
static int drop_unit_axes(int ndim, const int64_t *shape, const int64_t *strides,
                          int64_t *out_shape, int64_t *out_strides)
{
    int n = 0;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] == 1)
            continue;
        out_shape[n] = shape[d];
        out_strides[n] = strides[d];
        n++;
    }
    return n;
}

/* Merge axis d into the axis before it when stepping the outer one is the
 * same as stepping past the whole inner one.  Returns the new ndim. */
static int merge_contiguous_axes(int ndim, int64_t *shape, int64_t *strides)
{
    int n = 0;
    for (int d = 0; d < ndim; d++) {
        int64_t span;
        if (n > 0 && !__builtin_mul_overflow(shape[d], strides[d], &span)
                && strides[n - 1] == span) {
            shape[n - 1] *= shape[d];
            strides[n - 1] = strides[d];
            continue;
        }
        shape[n] = shape[d];
        strides[n] = strides[d];
        n++;
    }
    return n;
}

/* The axis other than the innermost whose source stride is smallest, if it
 * is smaller than the innermost's: reading along it walks fewer cache lines,
 * so a tiled transpose between it and the innermost axis pays.  Else -1. */
static int transpose_axis(const pf_plan *p)
{
    int last = p->ndim - 1, best = -1;
    int64_t best_stride = abs64(p->src_strides[last]);
    for (int d = 0; d < last; d++) {
        if (abs64(p->src_strides[d]) < best_stride) {
            best = d;
            best_stride = abs64(p->src_strides[d]);
        }
    }
    return best;
}

/* x within [lo, hi]; hi wins when lo > hi. */
static int64_t clamp64(int64_t x, int64_t lo, int64_t hi)
{
    if (x < lo)
        x = lo;
    return x > hi ? hi : x;
}

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

static void choose_kernel(pf_plan *p)
{
    const int last = p->ndim - 1;
    const int64_t e = p->itemsize;
    const int t = p->src_strides[last] == e ? -1 : transpose_axis(p);

    p->cols_axis = last;
    if (t >= 0) {
        p->kernel = PF_KERNEL_TRANSPOSE;
        p->rows_axis = t;
        p->tile_cols = pf_tile_edge(e);
        /* Rows of a few bytes (uint8 RGB): taller tiles, fewer of them
         * (measured: 0.52 -> 0.63 of memcpy on uint8 RGB planes, mean of 10
         * runs; but 0.85 -> 0.79 with rows of six float64). */
        p->tile_rows = p->tile_cols * (p->shape[last] * e <= PF_NARROW_ROW_BYTES ? 2 : 1);
        if (p->src_strides[t] == e) {
            pf_micro_kernel micro = pf_micro_for(e, p->shape[last],
                                                 p->dst_strides[t], pf_simd_level());
            p->simd = micro.fn ? micro.simd : PF_SIMD_NONE;
        }
    } else {
        p->kernel = p->src_strides[last] == e ? PF_KERNEL_MEMCPY : PF_KERNEL_GATHER;
        /* Rows of the axis before the last: short rows share one call. */
        p->rows_axis = last - 1;
    }
}

/* Units of about PF_UNIT_BYTES, so that threads balance and per-unit
 * overhead vanishes: whole rows when they are short, else row pieces;
 * transposes cut whole tiles. */
static void choose_chunks(pf_plan *p)
{
    const int64_t cols = p->shape[p->cols_axis];
    const int64_t rows = p->rows_axis >= 0 ? p->shape[p->rows_axis] : 1;
    const int64_t row_step = p->tile_rows > 0 ? p->tile_rows : 1;
    const int64_t col_step = p->tile_cols > 0 ? p->tile_cols : 1;
    const int64_t row_bytes = cols * p->itemsize;

    if (row_bytes * row_step >= PF_UNIT_BYTES) {
        p->row_chunk = row_step;
        p->col_chunk = PF_UNIT_BYTES / (row_step * p->itemsize) / col_step * col_step;
    } else {
        p->col_chunk = cols;
        p->row_chunk = PF_UNIT_BYTES / row_bytes / row_step * row_step;
    }
    p->row_chunk = clamp64(p->row_chunk, row_step, rows);
    p->col_chunk = clamp64(p->col_chunk, col_step, cols);

    int64_t units = ceil_div(rows, p->row_chunk) * ceil_div(cols, p->col_chunk);
    for (int d = 0; d < p->ndim; d++)
        if (d != p->rows_axis && d != p->cols_axis)
            units *= p->shape[d];
    p->units = units;
}

static void choose_threads(pf_plan *p, int num_threads)
{
    int64_t wanted = num_threads > 0 ? num_threads : pf_get_default_threads();
    int64_t min_bytes = atomic_load(&forced_min_bytes_per_thread);
    if (min_bytes < 1)
        min_bytes = PF_MIN_BYTES_PER_THREAD;
    int64_t by_size = p->nbytes / min_bytes;
    if (wanted > by_size)
        wanted = by_size;
    if (wanted > p->units)
        wanted = p->units;
    if (wanted > PF_MAX_THREADS)
        wanted = PF_MAX_THREADS;
    p->num_threads = wanted < 1 ? 1 : (int)wanted;
}

int pf_plan_make(pf_plan *p, int ndim, const int64_t *shape,
                 const int64_t *src_strides, int64_t itemsize, int num_threads)
{
    if (p == NULL || (ndim > 0 && (shape == NULL || src_strides == NULL)))
        return PF_ERR_NULL;
    if (ndim < 0 || ndim > PF_MAX_DIMS)
        return PF_ERR_NDIM;
    if (itemsize < 1)
        return PF_ERR_ITEMSIZE;
    if (num_threads < 0)
        return PF_ERR_THREADS;

    memset(p, 0, sizeof *p);
    p->itemsize = itemsize;
    p->rows_axis = -1;
    p->num_threads = 1;

    int64_t nbytes = itemsize;
    int empty = 0;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0)
            return PF_ERR_SHAPE;
        empty |= shape[d] == 0;
        if (!empty && __builtin_mul_overflow(nbytes, shape[d], &nbytes))
            return PF_ERR_OVERFLOW;
    }
    if (empty) {
        p->kernel = PF_KERNEL_NONE;
        return PF_OK;
    }
    p->nbytes = nbytes;

    int n = drop_unit_axes(ndim, shape, src_strides, p->shape, p->src_strides);
    n = merge_contiguous_axes(n, p->shape, p->src_strides);
    if (n == 0) { /* a single element */
        n = 1;
        p->shape[0] = 1;
        p->src_strides[0] = itemsize;
    }
    p->ndim = n;
    p->dst_strides[n - 1] = itemsize;
    for (int d = n - 2; d >= 0; d--)
        p->dst_strides[d] = p->dst_strides[d + 1] * p->shape[d + 1];

    choose_kernel(p);
    choose_chunks(p);
    p->streaming = p->kernel == PF_KERNEL_MEMCPY
                   && p->shape[p->cols_axis] * itemsize >= PF_STREAMING_MIN_RUN
                   && pf_use_streaming(p->nbytes);
    choose_threads(p, num_threads);
    return PF_OK;
}

int pf_copy(const char *src, char *dst, int ndim, const int64_t *shape,
            const int64_t *src_strides, int64_t itemsize, int num_threads)
{
    pf_plan plan;
    int status = pf_plan_make(&plan, ndim, shape, src_strides, itemsize,
                              num_threads);
    if (status != PF_OK)
        return status;
    return pf_plan_execute(&plan, src, dst);
}

const char *pf_strerror(int status)
{
    switch (status) {
    case PF_OK: return "success";
    case PF_ERR_NULL: return "a required pointer is NULL";
    case PF_ERR_NDIM: return "ndim must be between 0 and 64";
    case PF_ERR_SHAPE: return "shape has a negative extent";
    case PF_ERR_ITEMSIZE: return "itemsize must be at least 1";
    case PF_ERR_OVERFLOW: return "the total size in bytes overflows int64";
    case PF_ERR_THREADS: return "num_threads must be >= 0";
    case PF_ERR_NOMEM: return "could not start worker threads";
    default: return "unknown pyflat status";
    }
}

const char *pf_kernel_name(int kernel)
{
    switch (kernel) {
    case PF_KERNEL_NONE: return "none";
    case PF_KERNEL_MEMCPY: return "memcpy";
    case PF_KERNEL_GATHER: return "gather";
    case PF_KERNEL_TRANSPOSE: return "transpose";
    default: return "unknown";
    }
}
