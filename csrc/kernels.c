/* Execution: the loop nest over units and the portable inner loops.
 *
 * Every unit is a 2-d copy, dst[i*d_row + j*e] = src[i*s_row + j*s_col] for
 * i < rows, j < cols.  Elements are copied with memcpy of a constant size:
 * compilers turn that into plain (unaligned-safe) loads and stores, so odd
 * offsets, strides that are not multiples of the itemsize and any itemsize
 * are all defined behaviour.
 */
#include "internal.h"

#include <string.h>

#define ALWAYS_INLINE static inline __attribute__((always_inline))

typedef struct inner inner;
typedef void (*copy2d_fn)(const inner *k, char *d, const char *s,
                          int64_t rows, int64_t cols);

/* The inner loop of one plan, resolved once per run. */
struct inner {
    copy2d_fn copy2d;
    int64_t e, d_row, s_row, s_col, tile_rows, tile_cols;
    copy2d_fn small;       /* transposes: the portable loop for (part) tiles */
    pf_micro_kernel micro; /* transposes: in-register blocks, if any */
};

ALWAYS_INLINE void strided_2d(char *restrict d, const char *restrict s,
                              int64_t rows, int64_t cols, int64_t d_row,
                              int64_t s_row, int64_t s_col, int64_t e)
{
    for (int64_t i = 0; i < rows; i++) {
        char *dr = d + i * d_row;
        const char *sr = s + i * s_row;
        for (int64_t j = 0; j < cols; j++)
            memcpy(dr + j * e, sr + j * s_col, (size_t)e);
    }
}

/* One copy of the loop per common itemsize, so that each element is a
 * single load and store. */
#define STRIDED_2D(NAME, E)                                                    \
    static void NAME(const inner *k, char *d, const char *s, int64_t rows,     \
                     int64_t cols)                                             \
    {                                                                          \
        strided_2d(d, s, rows, cols, k->d_row, k->s_row, k->s_col, E);         \
    }
STRIDED_2D(strided_1, 1)
STRIDED_2D(strided_2, 2)
STRIDED_2D(strided_4, 4)
STRIDED_2D(strided_8, 8)
STRIDED_2D(strided_16, 16)
STRIDED_2D(strided_any, k->e)

static copy2d_fn strided_for(int64_t e)
{
    switch (e) {
    case 1: return strided_1;
    case 2: return strided_2;
    case 4: return strided_4;
    case 8: return strided_8;
    case 16: return strided_16;
    default: return strided_any;
    }
}

static void memcpy_rows(const inner *k, char *d, const char *s, int64_t rows,
                        int64_t cols)
{
    for (int64_t i = 0; i < rows; i++)
        memcpy(d + i * k->d_row, s + i * k->s_row, (size_t)(cols * k->e));
}

static void stream_rows(const inner *k, char *d, const char *s, int64_t rows,
                        int64_t cols)
{
    for (int64_t i = 0; i < rows; i++)
        pf_stream_copy(d + i * k->d_row, s + i * k->s_row, cols * k->e);
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* A tile: whole micro-kernel blocks in registers, the ragged rest in C. */
static void transpose_tile(const inner *k, char *d, const char *s,
                           int64_t rows, int64_t cols)
{
    const int64_t mr = k->micro.rows, mc = k->micro.cols;
    const int64_t full_rows = k->micro.fn ? rows - rows % mr : 0;
    const int64_t full_cols = k->micro.fn ? cols - cols % mc : 0;
    for (int64_t i = 0; i < full_rows; i += mr)
        for (int64_t j = 0; j < full_cols; j += mc)
            k->micro.fn(d + i * k->d_row + j * k->e, s + i * k->e + j * k->s_col,
                        k->d_row, k->s_col);
    if (full_cols < cols) /* right edge, every row */
        k->small(k, d + full_cols * k->e, s + full_cols * k->s_col, rows,
                 cols - full_cols);
    if (full_rows < rows) /* bottom edge, left part */
        k->small(k, d + full_rows * k->d_row, s + full_rows * k->s_row,
                 rows - full_rows, full_cols);
}

/* Ask for a tile's source lines ahead: its rows lie in as many pages as the
 * tile has columns, too many streams for the hardware prefetcher when they
 * are many (measured: 0.55 -> 0.63 of memcpy with 64 float32 columns, but
 * 0.85 -> 0.77 with 6 float64 columns). */
static void prefetch_tile(const inner *k, const char *s, int64_t rows,
                          int64_t cols)
{
    const int64_t span = (rows - 1) * k->s_row + k->e; /* bytes of a source row */
    for (int64_t j = 0; j < cols; j++)
        for (int64_t b = 0; b < span; b += 64)
            __builtin_prefetch(s + j * k->s_col + b, 0, 3);
}

/* Cache blocking: each tile's source and destination lines stay in L1,
 * while the next tile's source lines are on their way. */
static void transpose_tiles(const inner *k, char *d, const char *s,
                            int64_t rows, int64_t cols)
{
    const int64_t tr = k->tile_rows, tc = k->tile_cols;
    const int prefetch = min64(tc, cols) >= PF_PREFETCH_MIN_COLS;
    for (int64_t i = 0; i < rows; i += tr)
        for (int64_t j = 0; j < cols; j += tc) {
            int64_t next_i = j + tc < cols ? i : i + tr;
            int64_t next_j = j + tc < cols ? j + tc : 0;
            if (prefetch && next_i < rows)
                prefetch_tile(k, s + next_i * k->s_row + next_j * k->s_col,
                              min64(tr, rows - next_i), min64(tc, cols - next_j));
            transpose_tile(k, d + i * k->d_row + j * k->e,
                           s + i * k->s_row + j * k->s_col,
                           min64(tr, rows - i), min64(tc, cols - j));
        }
}

static inner inner_for(const pf_plan *p)
{
    inner k = {0};
    k.e = p->itemsize;
    k.s_col = p->src_strides[p->cols_axis];
    if (p->rows_axis >= 0) {
        k.d_row = p->dst_strides[p->rows_axis];
        k.s_row = p->src_strides[p->rows_axis];
    }
    k.tile_rows = p->tile_rows;
    k.tile_cols = p->tile_cols;
    switch (p->kernel) {
    case PF_KERNEL_MEMCPY:
        /* Short rows: inline element copies beat a libc call per row. */
        if (p->shape[p->cols_axis] * k.e < PF_MEMCPY_MIN_BYTES)
            k.copy2d = strided_for(k.e);
        else
            k.copy2d = p->streaming ? stream_rows : memcpy_rows;
        break;
    case PF_KERNEL_TRANSPOSE:
        k.copy2d = transpose_tiles;
        k.small = strided_for(k.e);
        if (p->simd != PF_SIMD_NONE)
            k.micro = pf_micro_for(k.e, p->shape[p->cols_axis], k.d_row, p->simd);
        break;
    default:
        k.copy2d = strided_for(k.e);
        break;
    }
    return k;
}

void pf_run_units(const pf_plan *p, const char *src, char *dst, int64_t begin,
                  int64_t end)
{
    if (begin >= end || p->kernel == PF_KERNEL_NONE)
        return;
    const inner k = inner_for(p);

    /* Unit axes, slowest first: the outer axes in destination order, then
     * the row chunks, then the column chunks. */
    int n = 0;
    int64_t count[PF_MAX_DIMS + 2], sstep[PF_MAX_DIMS + 2], dstep[PF_MAX_DIMS + 2];
    for (int d = 0; d < p->ndim; d++) {
        if (d == p->rows_axis || d == p->cols_axis)
            continue;
        count[n] = p->shape[d];
        sstep[n] = p->src_strides[d];
        dstep[n] = p->dst_strides[d];
        n++;
    }
    const int64_t rows = p->rows_axis >= 0 ? p->shape[p->rows_axis] : 1;
    const int64_t cols = p->shape[p->cols_axis];
    const int r_axis = n, c_axis = n + 1;
    count[r_axis] = (rows + p->row_chunk - 1) / p->row_chunk;
    sstep[r_axis] = k.s_row * p->row_chunk;
    dstep[r_axis] = k.d_row * p->row_chunk;
    count[c_axis] = (cols + p->col_chunk - 1) / p->col_chunk;
    sstep[c_axis] = k.s_col * p->col_chunk;
    dstep[c_axis] = k.e * p->col_chunk;
    n += 2;

    /* Position of unit `begin`. */
    int64_t idx[PF_MAX_DIMS + 2], soff = 0, doff = 0, rest = begin;
    for (int a = n - 1; a >= 0; a--) {
        idx[a] = rest % count[a];
        rest /= count[a];
        soff += idx[a] * sstep[a];
        doff += idx[a] * dstep[a];
    }

    for (int64_t u = begin; u < end; u++) {
        k.copy2d(&k, dst + doff, src + soff,
                 min64(p->row_chunk, rows - idx[r_axis] * p->row_chunk),
                 min64(p->col_chunk, cols - idx[c_axis] * p->col_chunk));
        for (int a = n - 1; a >= 0; a--) { /* odometer step */
            soff += sstep[a];
            doff += dstep[a];
            if (++idx[a] < count[a])
                break;
            soff -= sstep[a] * count[a];
            doff -= dstep[a] * count[a];
            idx[a] = 0;
        }
    }
    if (p->streaming)
        pf_stream_fence();
}

int pf_plan_execute(const pf_plan *p, const char *src, char *dst)
{
    if (p == NULL)
        return PF_ERR_NULL;
    if (p->kernel == PF_KERNEL_NONE)
        return PF_OK;
    if (src == NULL || dst == NULL)
        return PF_ERR_NULL;
    if (p->num_threads > 1)
        return pf_pool_run(p, src, dst);
    pf_run_units(p, src, dst, 0, p->units);
    return PF_OK;
}
