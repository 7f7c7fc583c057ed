/* Execution: the loop nest over units and the portable inner loops.
 *
 * Every inner loop copies elements with memcpy of a constant size: compilers
 * turn that into plain (unaligned-safe) loads and stores, so odd offsets,
 * strides that are not multiples of the itemsize and any itemsize are all
 * defined behaviour.
 */
#include "internal.h"

#include <string.h>

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* d[k] = s[k * stride] for k < n, elements of e bytes. */
ALWAYS_INLINE void gather(char *restrict d, const char *restrict s, int64_t n,
                          int64_t stride, int64_t e)
{
    for (int64_t k = 0; k < n; k++)
        memcpy(d + k * e, s + k * stride, (size_t)e);
}

/* d[i*d_row + j*e] = s[i*s_row + j*s_col] for i < rows, j < cols. */
ALWAYS_INLINE void tile(char *restrict d, const char *restrict s, int64_t rows,
                        int64_t cols, int64_t d_row, int64_t s_row,
                        int64_t s_col, int64_t e)
{
    for (int64_t i = 0; i < rows; i++) {
        char *dr = d + i * d_row;
        const char *sr = s + i * s_row;
        for (int64_t j = 0; j < cols; j++)
            memcpy(dr + j * e, sr + j * s_col, (size_t)e);
    }
}

typedef void (*gather_fn)(char *restrict, const char *restrict, int64_t,
                          int64_t, int64_t);
typedef void (*tile_fn)(char *restrict, const char *restrict, int64_t, int64_t,
                        int64_t, int64_t, int64_t, int64_t);

/* One copy of each loop per common itemsize, so the element copy is a
 * single load/store; `e` is ignored by the fixed-size versions. */
#define FIXED_SIZE_LOOPS(E)                                                    \
    static void gather_##E(char *restrict d, const char *restrict s,          \
                           int64_t n, int64_t stride, int64_t e)               \
    {                                                                          \
        (void)e;                                                               \
        gather(d, s, n, stride, E);                                            \
    }                                                                          \
    static void tile_##E(char *restrict d, const char *restrict s,            \
                         int64_t rows, int64_t cols, int64_t d_row,            \
                         int64_t s_row, int64_t s_col, int64_t e)              \
    {                                                                          \
        (void)e;                                                               \
        tile(d, s, rows, cols, d_row, s_row, s_col, E);                        \
    }
FIXED_SIZE_LOOPS(1)
FIXED_SIZE_LOOPS(2)
FIXED_SIZE_LOOPS(4)
FIXED_SIZE_LOOPS(8)
FIXED_SIZE_LOOPS(16)

static void gather_any(char *restrict d, const char *restrict s, int64_t n,
                       int64_t stride, int64_t e)
{
    gather(d, s, n, stride, e);
}

static void tile_any(char *restrict d, const char *restrict s, int64_t rows,
                     int64_t cols, int64_t d_row, int64_t s_row, int64_t s_col,
                     int64_t e)
{
    tile(d, s, rows, cols, d_row, s_row, s_col, e);
}

static gather_fn pick_gather(int64_t e)
{
    switch (e) {
    case 1: return gather_1;
    case 2: return gather_2;
    case 4: return gather_4;
    case 8: return gather_8;
    case 16: return gather_16;
    default: return gather_any;
    }
}

static tile_fn pick_tile(int64_t e)
{
    switch (e) {
    case 1: return tile_1;
    case 2: return tile_2;
    case 4: return tile_4;
    case 8: return tile_8;
    case 16: return tile_16;
    default: return tile_any;
    }
}

/* The inner loops of one plan, resolved once per run. */
typedef struct {
    const pf_plan *p;
    gather_fn gather;
    tile_fn tile;
    pf_tile_fn simd_tile;
} inner_loops;

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* `rows` elements along the major axis, times the whole minor axis, in
 * tiles: each tile's source and destination lines stay in L1. */
static void transpose_rows(const inner_loops *k, char *d, const char *s,
                           int64_t rows)
{
    const pf_plan *p = k->p;
    const int64_t e = p->itemsize, edge = p->tile;
    const int64_t cols = p->shape[p->minor];
    const int64_t d_row = p->dst_strides[p->major];
    const int64_t s_row = p->src_strides[p->major];
    const int64_t s_col = p->src_strides[p->minor];

    for (int64_t i = 0; i < rows; i += edge) {
        int64_t ni = min64(edge, rows - i);
        for (int64_t j = 0; j < cols; j += edge) {
            int64_t nj = min64(edge, cols - j);
            char *dt = d + i * d_row + j * e;
            const char *st = s + i * s_row + j * s_col;
            if (k->simd_tile)
                k->simd_tile(dt, st, ni, nj, d_row, s_col);
            else
                k->tile(dt, st, ni, nj, d_row, s_row, s_col, e);
        }
    }
}

static void run_inner(const inner_loops *k, char *d, const char *s, int64_t n)
{
    const pf_plan *p = k->p;
    switch (p->kernel) {
    case PF_KERNEL_MEMCPY:
        memcpy(d, s, (size_t)(n * p->itemsize));
        break;
    case PF_KERNEL_GATHER:
        k->gather(d, s, n, p->src_strides[p->major], p->itemsize);
        break;
    case PF_KERNEL_TRANSPOSE:
        transpose_rows(k, d, s, n);
        break;
    default:
        break;
    }
}

void pf_run_units(const pf_plan *p, const char *src, char *dst, int64_t begin,
                  int64_t end)
{
    if (begin >= end || p->kernel == PF_KERNEL_NONE)
        return;

    inner_loops k = {p, pick_gather(p->itemsize), pick_tile(p->itemsize),
                     pf_simd_tile(p->simd, p->itemsize)};

    /* Outer axes, in destination order; the last one varies fastest. */
    int n_outer = 0;
    int64_t shape[PF_MAX_DIMS], sstep[PF_MAX_DIMS], dstep[PF_MAX_DIMS];
    for (int d = 0; d < p->ndim; d++) {
        if (d == p->major || d == p->minor)
            continue;
        shape[n_outer] = p->shape[d];
        sstep[n_outer] = p->src_strides[d];
        dstep[n_outer] = p->dst_strides[d];
        n_outer++;
    }

    const int64_t extent = p->shape[p->major];
    const int64_t chunks = (extent + p->chunk - 1) / p->chunk;
    const int64_t major_s = p->src_strides[p->major] * p->chunk;
    const int64_t major_d = p->dst_strides[p->major] * p->chunk;

    /* Position of unit `begin`: outer multi-index and chunk. */
    int64_t outer = begin / chunks, c = begin % chunks;
    int64_t idx[PF_MAX_DIMS];
    int64_t soff = 0, doff = 0;
    for (int d = n_outer - 1; d >= 0; d--) {
        idx[d] = outer % shape[d];
        outer /= shape[d];
        soff += idx[d] * sstep[d];
        doff += idx[d] * dstep[d];
    }

    for (int64_t u = begin; u < end; u++) {
        int64_t n = min64(p->chunk, extent - c * p->chunk);
        run_inner(&k, dst + doff + c * major_d, src + soff + c * major_s, n);
        if (++c < chunks)
            continue;
        c = 0;
        for (int d = n_outer - 1; d >= 0; d--) { /* odometer step */
            soff += sstep[d];
            doff += dstep[d];
            if (++idx[d] < shape[d])
                break;
            soff -= sstep[d] * shape[d];
            doff -= dstep[d] * shape[d];
            idx[d] = 0;
        }
    }
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
