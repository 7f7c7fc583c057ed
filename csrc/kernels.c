/* Execution: the loop nest over units, the portable block kernels, and the
 * choice between one thread and the pool (which only runs "units [a, b) of
 * a job" for us).
 *
 * Row kernels (memcpy, gather, reverse, block) write the destination as a
 * sequence of rows, each contiguous; the row space (the axes outside the
 * row) is walked by an odometer whose innermost axis is handed whole to the
 * kernel, so that a million tiny rows cost a million trips round an inlined
 * loop, not a million calls.  A row is copied by the loop the plan chose:
 * runs (overlapping 16-byte moves, memcpy when long), fixed-size item moves,
 * SSE2/SSSE3/AVX2 shuffles (micro_x86.c: step-2..4 gathers, reversed runs),
 * a repeated-item pattern (zero strides), an offset table (small blocks) or
 * an AVX-512 VBMI byte-permute program (several small blocks, or pieces of
 * rows, per run).  Transposes copy cache-sized tiles of a 2-d block with
 * register blocks (square, or K-plane interleaves) at the core.
 *
 * Elements are moved with memcpy of a constant size, instantiated for every
 * itemsize up to PF_FIXED_MAX: compilers turn that into plain
 * (unaligned-safe) loads and stores, so odd offsets, strides that are not
 * multiples of the itemsize and any itemsize are defined behaviour, and no
 * item costs a libc call.  Larger items move as 16-byte words.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* Offset tables of up to this many planes live on the stack. */
#define PF_LOCAL_PLANES 1024

typedef struct ctx ctx;
/* groups x count rows of len items, written one after the other: row i of
 * group g from s + g*s_group + i*s_step.  Groups: the axis before the row
 * space's innermost one, walked in the kernel, not by a call per group
 * (measured: groups of 3 rows of 4 bytes cost 10 ns each by calls). */
typedef void (*rows_fn)(const ctx *k, char *d, const char *s, int64_t groups,
                        int64_t s_group, int64_t count, int64_t s_step, int64_t len);
/* dst[i*d_row + j*e] = src[i*s_row + j*s_col], i < rows, j < cols. */
typedef void (*copy2d_fn)(const ctx *k, char *d, const char *s, int64_t rows,
                          int64_t cols);
/* dst[i*d_row + j*e] = src[i*s_row + off[j]], i < rows, j < cols. */
typedef void (*planes_fn)(const ctx *k, char *d, const char *s, int64_t rows,
                          int64_t cols, const int64_t *off);

/* One run of a plan, resolved once. */
struct ctx {
    const pf_plan *p;
    const char *src;
    char *dst;
    int64_t e;
    /* Row kernels. */
    rows_fn rows;
    rows_fn tail;          /* programs: the portable loop for what is left */
    pf_program_fn2 program;
    pf_rows_simd_fn simd_rows;
    int64_t s_col;        /* source step between items of a row */
    int64_t row_bytes;    /* destination bytes per row */
    int64_t col_chunks;   /* pieces per row (long rows), else 1 */
    const int64_t *off;   /* block: the offset table */
    int n_axes;           /* row space (or, transposes, unit space) axes */
    int64_t count[PF_MAX_DIMS + 2], sstep[PF_MAX_DIMS + 2], dstep[PF_MAX_DIMS + 2];
    /* Transposes (against planes: planes, planes_small and off). */
    copy2d_fn copy2d, small;
    planes_fn planes, planes_small;
    int64_t d_row, s_row;
    pf_micro_kernel micro;
};

/* ---- moves of a fixed number of bytes ----------------------------------- */

typedef struct { uint64_t lo, hi; } w16;
/* 16 bytes in one vector register (SSE2, NEON), for a value stored many
 * times (a w16 lives in two general registers: two stores per copy). */
typedef uint8_t v16 __attribute__((vector_size(16)));
typedef uint8_t v16u __attribute__((vector_size(16), aligned(1), may_alias));
typedef uint16_t v8x16 __attribute__((vector_size(16)));
typedef uint32_t v4x32 __attribute__((vector_size(16)));
typedef uint64_t v2x64 __attribute__((vector_size(16)));

ALWAYS_INLINE void mov16(char *d, const char *s)
{
    w16 t;
    memcpy(&t, s, 16);
    memcpy(d, &t, 16);
}

/* A run of n bytes: two overlapping moves of the largest size that fits
 * (so any length from 1 to 32 is two loads and two stores), a loop of
 * 32-byte moves up to PF_MEMCPY_MIN_BYTES, memcpy beyond. */
ALWAYS_INLINE void copy_run(char *restrict d, const char *restrict s, int64_t n)
{
    if (n <= 16) {
        if (n >= 8) {
            uint64_t a, b;
            memcpy(&a, s, 8);
            memcpy(&b, s + n - 8, 8);
            memcpy(d, &a, 8);
            memcpy(d + n - 8, &b, 8);
        } else if (n >= 4) {
            uint32_t a, b;
            memcpy(&a, s, 4);
            memcpy(&b, s + n - 4, 4);
            memcpy(d, &a, 4);
            memcpy(d + n - 4, &b, 4);
        } else if (n >= 2) {
            uint16_t a, b;
            memcpy(&a, s, 2);
            memcpy(&b, s + n - 2, 2);
            memcpy(d, &a, 2);
            memcpy(d + n - 2, &b, 2);
        } else if (n == 1) {
            *d = *s;
        }
        return;
    }
    if (n <= 32) {
        mov16(d, s);
        mov16(d + n - 16, s + n - 16);
        return;
    }
    if (n < PF_MEMCPY_MIN_BYTES) {
        for (int64_t i = 0; i + 32 < n; i += 32) {
            mov16(d + i, s + i);
            mov16(d + i + 16, s + i + 16);
        }
        mov16(d + n - 32, s + n - 32);
        mov16(d + n - 16, s + n - 16);
        return;
    }
    memcpy(d, s, (size_t)n);
}

/* An item of e bytes: when e is a constant up to PF_FIXED_MAX, at most two
 * overlapping moves of the largest size that fits (a 27-byte item is two
 * 16-byte moves, not 16 + 8 + 2 + 1); larger items as 16-byte words and an
 * overlapping last word. */
ALWAYS_INLINE void copy_item(char *restrict d, const char *restrict s, int64_t e)
{
    if (e <= PF_FIXED_MAX) {
        if ((e & (e - 1)) == 0 && e <= 16)
            memcpy(d, s, (size_t)e); /* one move */
        else
            copy_run(d, s, e);
        return;
    }
    int64_t i = 0;
    for (; i + 16 <= e; i += 16)
        mov16(d + i, s + i);
    if (i < e)
        mov16(d + e - 16, s + e - 16);
}

/* An item of e bytes followed by the place of the next one, which is
 * written after it: items of 3, 5, 6 and 7 bytes are put together in a
 * register from two overlapping loads and stored once, a few bytes of
 * the next place written too (measured, 8 MB transposes and step-3
 * gathers of V3, V5 and V6: 1.05 to 1.2x faster).  Little-endian byte
 * order only (the shifts). */
ALWAYS_INLINE void copy_item_then_next(char *restrict d, const char *restrict s, int64_t e)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (e == 3) {
        uint16_t a, b;
        memcpy(&a, s, 2);
        memcpy(&b, s + 1, 2);
        const uint32_t v = a | (uint32_t)b << 8;
        memcpy(d, &v, 4);
        return;
    }
    if (e >= 5 && e <= 7) {
        uint32_t a, b;
        memcpy(&a, s, 4);
        memcpy(&b, s + e - 4, 4);
        const uint64_t v = a | (uint64_t)b << (8 * (e - 4));
        memcpy(d, &v, 8);
        return;
    }
#endif
    copy_item(d, s, e);
}

/* ---- row kernels ----------------------------------------------------------- */

/* Contiguous runs of n bytes, in groups (see rows_fn); non-temporal
 * stores when `stream`. */
ALWAYS_INLINE void runs_in_groups(char *d, const char *s, int64_t groups, int64_t s_group,
                                  int64_t count, int64_t s_step, int64_t n, int stream)
{
    for (int64_t g = 0; g < groups; g++) {
        const char *sg = s + g * s_group;
        for (int64_t i = 0; i < count; i++, d += n) {
            if (stream)
                pf_stream_copy(d, sg + i * s_step, n);
            else
                copy_run(d, sg + i * s_step, n);
        }
    }
}

static void run_rows(const ctx *k, char *d, const char *s, int64_t groups,
                     int64_t s_group, int64_t count, int64_t s_step, int64_t len)
{
    runs_in_groups(d, s, groups, s_group, count, s_step, len * k->e, 0);
}

static void stream_rows(const ctx *k, char *d, const char *s, int64_t groups,
                        int64_t s_group, int64_t count, int64_t s_step, int64_t len)
{
    runs_in_groups(d, s, groups, s_group, count, s_step, len * k->e, 1);
}

static void simd_rows(const ctx *k, char *d, const char *s, int64_t groups,
                      int64_t s_group, int64_t count, int64_t s_step, int64_t len)
{
    for (int64_t g = 0; g < groups; g++, d += count * len * k->e, s += s_group)
        k->simd_rows(d, s, count, s_step, len);
}

/* One row of len items at source step s_col, four items per trip
 * (measured, 4 MB gathers at steps -3 to 7: 1-byte items 1.7 to 2.5x
 * faster, 4- and 8-byte items up to 1.8x, larger ones within 10%). */
ALWAYS_INLINE void gather_row(char *restrict d, const char *restrict s, int64_t len,
                              int64_t s_col, int64_t e)
{
    int64_t j = 0;
    for (; j + 4 <= len; j += 4, d += 4 * e, s += 4 * s_col) {
        copy_item_then_next(d, s, e);
        copy_item_then_next(d + e, s + s_col, e);
        copy_item_then_next(d + 2 * e, s + 2 * s_col, e);
        copy_item(d + 3 * e, s + 3 * s_col, e);
    }
    for (; j < len; j++, d += e, s += s_col)
        copy_item(d, s, e);
}

ALWAYS_INLINE void gather_rows(char *restrict d, const char *restrict s,
                               int64_t count, int64_t s_step, int64_t len,
                               int64_t s_col, int64_t e)
{
    for (int64_t i = 0; i < count; i++, s += s_step, d += len * e)
        gather_row(d, s, len, s_col, e);
}

/* An item of e = 1, 2, 4, 8 or 16 bytes repeated over a vector, built in
 * registers (a vector loaded from bytes just stored stalls store
 * forwarding: rows of 16 to 64 bytes 3-6x slower). */
ALWAYS_INLINE v16 splat_pattern(const char *s, int64_t e)
{
    switch (e) {
    case 1: {
        const uint8_t x = (uint8_t)*s;
        return (v16){x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x};
    }
    case 2: {
        uint16_t x;
        memcpy(&x, s, 2);
        return (v16)(v8x16){x, x, x, x, x, x, x, x};
    }
    case 4: {
        uint32_t x;
        memcpy(&x, s, 4);
        return (v16)(v4x32){x, x, x, x};
    }
    case 8: {
        uint64_t x;
        memcpy(&x, s, 8);
        return (v16)(v2x64){x, x};
    }
    default: {
        v16 v;
        memcpy(&v, s, 16);
        return v;
    }
    }
}

/* Rows of one repeated item (a zero source step), items of e = 1, 2, 4, 8
 * or 16 bytes, stored with overlapping moves (each store starts at a
 * multiple of e, so any overlap writes the same bytes).  Rows of 32 bytes
 * and more store a vector register, 64 bytes per step; shorter rows two
 * moves from general registers, the row length's branch outside the loop
 * (measured in one process against one 16-byte move per step from general
 * registers: the 33 such layouts of the tuning seeds 1.32x to 1.41x faster
 * by geometric mean over two runs, up to 2.3x, and 28 of four other seeds
 * 1.18x; 64 bytes per step against 32: 1.05x; against numpy, the slowest
 * of the 61 went from 0.71x to 1.00x numpy's speed). */
ALWAYS_INLINE void splat_rows(char *restrict d, const char *restrict s,
                              int64_t count, int64_t s_step, int64_t len,
                              int64_t e)
{
    const int64_t n = len * e;
    if (e == 1 && n >= PF_MEMSET_MIN_BYTES) {
        for (int64_t i = 0; i < count; i++, s += s_step, d += n)
            memset(d, (unsigned char)*s, (size_t)n);
        return;
    }
    if (n >= 32) {
        for (int64_t i = 0; i < count; i++, s += s_step, d += n) {
            const v16 v = splat_pattern(s, e);
            int64_t j = 0;
            for (; j + 64 <= n; j += 64) {
                *(v16u *)(void *)(d + j) = v;
                *(v16u *)(void *)(d + j + 16) = v;
                *(v16u *)(void *)(d + j + 32) = v;
                *(v16u *)(void *)(d + j + 48) = v;
            }
            if (j + 32 <= n) {
                *(v16u *)(void *)(d + j) = v;
                *(v16u *)(void *)(d + j + 16) = v;
                j += 32;
            }
            if (j + 16 <= n)
                *(v16u *)(void *)(d + j) = v;
            *(v16u *)(void *)(d + n - 16) = v;
        }
        return;
    }
    for (int64_t i = 0; i < count; i++, s += s_step, d += n) {
        w16 w;
        for (int b = 0; b < 16; b += (int)e) /* e divides 16 */
            memcpy((char *)&w + b, s, (size_t)e);
        if (n >= 16) {
            memcpy(d, &w, 16);
            memcpy(d + n - 16, &w, 16);
        } else if (n >= 8) {
            memcpy(d, &w, 8);
            memcpy(d + n - 8, &w, 8);
        } else if (n >= 4) {
            memcpy(d, &w, 4);
            memcpy(d + n - 4, &w, 4);
        } else if (n >= 2) {
            memcpy(d, &w, 2);
            memcpy(d + n - 2, &w, 2);
        } else {
            memcpy(d, &w, 1);
        }
    }
}

#define SPLAT_LOOP(E)                                                          \
    static void splat_##E(const ctx *k, char *d, const char *s, int64_t groups, \
                          int64_t s_group, int64_t count, int64_t s_step,      \
                          int64_t len)                                         \
    {                                                                          \
        (void)k;                                                               \
        for (int64_t g = 0; g < groups; g++, d += count * len * E, s += s_group) \
            splat_rows(d, s, count, s_step, len, E);                           \
    }
SPLAT_LOOP(1) SPLAT_LOOP(2) SPLAT_LOOP(4) SPLAT_LOOP(8) SPLAT_LOOP(16)
#undef SPLAT_LOOP

int pf_has_splat(int64_t e) { return e == 1 || e == 2 || e == 4 || e == 8 || e == 16; }

static rows_fn splat_for(int64_t e)
{
    switch (e) {
    case 1: return splat_1;
    case 2: return splat_2;
    case 4: return splat_4;
    case 8: return splat_8;
    case 16: return splat_16;
    default: return NULL;
    }
}

ALWAYS_INLINE void block_rows(char *restrict d, const char *restrict s,
                              int64_t count, int64_t s_step, int64_t len,
                              const int64_t *restrict off, int64_t e)
{
    for (int64_t i = 0; i < count; i++, s += s_step) {
        int64_t j = 0;
        for (; j + 4 <= len; j += 4, d += 4 * e) { /* as gather_rows */
            copy_item_then_next(d, s + off[j], e);
            copy_item_then_next(d + e, s + off[j + 1], e);
            copy_item_then_next(d + 2 * e, s + off[j + 2], e);
            copy_item(d + 3 * e, s + off[j + 3], e);
        }
        for (; j < len; j++, d += e)
            copy_item(d, s + off[j], e);
    }
}

/* Block rows, each after asking for the source lines of the row
 * prefetch_rows ahead (in this group, else the next one's): addresses
 * formed as unsigned integers (wrapping, never undefined), since that row
 * may lie past the view, where a prefetch is harmless but pointer
 * arithmetic is not defined. */
ALWAYS_INLINE void prefetched_block_rows(const ctx *k, char *restrict d, const char *restrict s,
                                         int64_t groups, int64_t s_group, int64_t count,
                                         int64_t s_step, int64_t len, int64_t e)
{
    const pf_plan *p = k->p;
    for (int64_t g = 0; g < groups; g++, s += s_group) {
        for (int64_t i = 0; i < count; i++, d += len * e) {
            const int64_t ahead = i + p->prefetch_rows;
            const uintptr_t step = ahead < count
                                       ? (uintptr_t)ahead * (uintptr_t)s_step
                                       : (uintptr_t)s_group
                                             + (uintptr_t)(ahead - count) * (uintptr_t)s_step;
            const uintptr_t row = (uintptr_t)s + step;
            for (int64_t l = 0; l < p->prefetch_lines; l++)
                __builtin_prefetch((const char *)(row + (uintptr_t)p->prefetch_offsets[l]), 0, 3);
            block_rows(d, s + i * s_step, 1, 0, len, k->off, e);
        }
    }
}

/* Ask for each plane's source line prefetch_rows rows after row i of a tile
 * (addresses as integers, as in prefetched_block_rows). */
static void prefetch_planes(const ctx *k, const char *s, int64_t i, int64_t cols,
                            const int64_t *off)
{
    const uintptr_t row = (uintptr_t)s + (uintptr_t)(i + k->p->prefetch_rows)
                                             * (uintptr_t)k->s_row;
    for (int64_t j = 0; j < cols; j++)
        __builtin_prefetch((const char *)(row + (uintptr_t)off[j]), 0, 3);
}

/* The rows of a tile of planes by item moves, prefetching once per line of
 * rows. */
ALWAYS_INLINE void prefetched_planes(const ctx *k, char *restrict d, const char *restrict s,
                                     int64_t rows, int64_t cols, const int64_t *restrict off,
                                     int64_t e)
{
    const int64_t per_line = pf_rows_per_line(k->s_row);
    for (int64_t i = 0; i < rows; i++) {
        if (i % per_line == 0)
            prefetch_planes(k, s, i, cols, off);
        block_rows(d + i * k->d_row, s + i * k->s_row, 1, 0, cols, off, e);
    }
}

ALWAYS_INLINE void strided_2d(char *restrict d, const char *restrict s,
                              int64_t rows, int64_t cols, int64_t d_row,
                              int64_t s_row, int64_t s_col, int64_t e)
{
    for (int64_t i = 0; i < rows; i++)
        gather_row(d + i * d_row, s + i * s_row, cols, s_col, e);
}

/* The loops, once per itemsize 1..PF_FIXED_MAX, and once for larger items. */
#define FIXED_LOOPS(N, E)                                                      \
    static void gather_##N(const ctx *k, char *d, const char *s, int64_t groups, \
                           int64_t s_group, int64_t count, int64_t s_step,     \
                           int64_t len)                                        \
    {                                                                          \
        for (int64_t g = 0; g < groups; g++, d += count * len * E, s += s_group) \
            gather_rows(d, s, count, s_step, len, k->s_col, E);                \
    }                                                                          \
    static void block_##N(const ctx *k, char *d, const char *s, int64_t groups, \
                          int64_t s_group, int64_t count, int64_t s_step,      \
                          int64_t len)                                         \
    {                                                                          \
        if (k->p->prefetch_rows > 0) {                                         \
            prefetched_block_rows(k, d, s, groups, s_group, count, s_step, len, E); \
            return;                                                            \
        }                                                                      \
        for (int64_t g = 0; g < groups; g++, d += count * len * E, s += s_group) \
            block_rows(d, s, count, s_step, len, k->off, E);                   \
    }                                                                          \
    static void tile_##N(const ctx *k, char *d, const char *s, int64_t rows,   \
                         int64_t cols)                                         \
    {                                                                          \
        strided_2d(d, s, rows, cols, k->d_row, k->s_row, k->s_col, E);         \
    }                                                                          \
    static void planes_##N(const ctx *k, char *d, const char *s,              \
                           int64_t rows, int64_t cols, const int64_t *off)     \
    {                                                                          \
        if (k->p->prefetch_rows > 0) {                                         \
            prefetched_planes(k, d, s, rows, cols, off, E);                    \
            return;                                                            \
        }                                                                      \
        for (int64_t i = 0; i < rows; i++)                                     \
            block_rows(d + i * k->d_row, s + i * k->s_row, 1, 0, cols, off, E); \
    }
#define FIXED_SIZES(X)                                                         \
    X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13)       \
    X(14) X(15) X(16) X(17) X(18) X(19) X(20) X(21) X(22) X(23) X(24) X(25)    \
    X(26) X(27) X(28) X(29) X(30) X(31) X(32)
#define FIXED_LOOPS_OF(E) FIXED_LOOPS(E, E)
FIXED_SIZES(FIXED_LOOPS_OF)
FIXED_LOOPS(big, k->e) /* items larger than PF_FIXED_MAX */
#undef FIXED_LOOPS_OF
#undef FIXED_LOOPS

typedef struct {
    rows_fn gather, block;
    copy2d_fn tile;
    planes_fn planes;
} fixed_loops;

#define FIXED_ENTRY(E) {gather_##E, block_##E, tile_##E, planes_##E},
static const fixed_loops FIXED[PF_FIXED_MAX + 1] = {
    {gather_big, block_big, tile_big, planes_big}, FIXED_SIZES(FIXED_ENTRY)};
#undef FIXED_ENTRY

_Static_assert(sizeof FIXED / sizeof FIXED[0] == PF_FIXED_MAX + 1,
               "one entry per fixed itemsize");

static fixed_loops loops_for(int64_t e)
{
    return FIXED[e <= PF_FIXED_MAX ? e : 0];
}

/* ---- transposes ------------------------------------------------------------ */

static int64_t llabs_(int64_t a) { return a < 0 ? -a : a; } /* strides > INT64_MIN */

/* The item loop for a tile's rows: columns at the constant step (off NULL)
 * or from the offset table. */
ALWAYS_INLINE void tile_items(const ctx *k, char *d, const char *s, int64_t rows,
                              int64_t cols, const int64_t *off)
{
    if (off == NULL)
        k->small(k, d, s, rows, cols);
    else
        k->planes_small(k, d, s, rows, cols, off);
}

/* `blocks` register blocks, the first at row i, column j of a tile. */
ALWAYS_INLINE void micro_strip(const ctx *k, char *d, const char *s, int64_t i, int64_t j,
                               int64_t blocks, int64_t d_row, int64_t d_block,
                               int64_t s_block)
{
    k->micro.fn(d + i * k->d_row + j * k->e, s + i * k->s_row + j * k->s_col, d_row,
                k->s_col, blocks, d_block, s_block);
}

/* A tile: micro-kernel blocks in registers, their columns at the constant
 * step (off NULL) or from the offset table (transposes against planes).  A
 * ragged edge of columns is one more block shifted back to overlap the
 * previous one (its elements are written twice, with the same bytes, all
 * inside this tile), whenever the tile spans a block: item moves one by one
 * are slower at every itemsize (measured: 1- and 2-byte items on the 55
 * layouts of the tuning seeds with such blocks, 1.08x faster by geometric
 * mean, 2.4x on uint8 with 28 columns; 4- and 8-byte items on the 32
 * layouts of seven tuning seeds with such edges, builds alternating in one
 * process, 1.23x and 1.17x on two sets of seeds, up to 2.1x on float32
 * with 7 columns, the 131 unchanged layouts 1.00x).  A ragged edge of rows
 * takes the overlapping block only where the tile spans two blocks there
 * (measured: no faster, 0.75x with 11 rows of 8-row blocks; at every
 * itemsize, 0.95x on the 19 such layouts of the tuning seeds); narrower
 * ragged rows, and tiles narrower than a block, go element by element. */
ALWAYS_INLINE void blocked_tile(const ctx *k, char *d, const char *s, int64_t rows,
                                int64_t cols, const int64_t *off)
{
    const int64_t mr = k->micro.rows, mc = k->micro.cols;
    if (rows < mr || cols < mc) {
        tile_items(k, d, s, rows, cols, off);
        return;
    }
    const int64_t rows_b = rows % mr && rows >= 2 * mr ? rows : rows - rows % mr;
    /* Source rows backwards (s_row == -e): each block starts at its last
     * row, the lowest address, and is written with the destination step
     * negated (bottom row first). */
    const int back = k->s_row < 0;
    const int64_t d_row = back ? -k->d_row : k->d_row;
    /* a column of blocks or a row of blocks at a time (choose_block_order) */
    const int by_columns = k->p->micro_by_columns;
    const int64_t outer = by_columns ? cols : rows_b, inner = by_columns ? rows_b : cols;
    const int64_t outer_step = by_columns ? mc : mr, inner_step = by_columns ? mr : mc;
    /* the next block of the inner loop: mr rows down or mc columns right */
    const int64_t d_block = by_columns ? mr * k->d_row : mc * k->e;
    const int64_t s_block = by_columns ? mr * k->s_row : mc * k->s_col;
    for (int64_t a0 = 0; a0 < outer; a0 += outer_step) {
        const int64_t a = a0 + outer_step <= outer ? a0 : outer - outer_step;
        if (off == NULL) { /* a strip of whole blocks, then one overlapping them */
            const int64_t whole = inner / inner_step, last = inner - inner_step;
            const int64_t i = (by_columns ? 0 : a) + (back ? mr - 1 : 0);
            const int64_t j = by_columns ? a : 0;
            micro_strip(k, d, s, i, j, whole, d_row, d_block, s_block);
            if (inner % inner_step)
                micro_strip(k, d, s, by_columns ? i + last : i, by_columns ? j : last, 1,
                            d_row, d_block, s_block);
            continue;
        }
        /* a row of blocks of planes: once per line of rows (choose_plane_prefetch) */
        if (k->p->prefetch_rows > 0 && !by_columns) {
            const int64_t per_line = pf_rows_per_line(k->s_row);
            for (int64_t i = a; i < a + mr; i++)
                if (i % per_line == 0)
                    prefetch_planes(k, s, i, cols, off);
        }
        for (int64_t b0 = 0; b0 < inner; b0 += inner_step) {
            const int64_t b = b0 + inner_step <= inner ? b0 : inner - inner_step;
            const int64_t i = (by_columns ? b : a) + (back ? mr - 1 : 0);
            const int64_t j = by_columns ? a : b;
            k->micro.table(d + i * k->d_row + j * k->e, s + i * k->s_row, d_row, off + j);
        }
    }
    if (rows_b < rows) /* bottom edge */
        tile_items(k, d + rows_b * k->d_row, s + rows_b * k->s_row, rows - rows_b, cols, off);
}

static void transpose_tile(const ctx *k, char *d, const char *s, int64_t rows,
                           int64_t cols)
{
    if (k->micro.fn == NULL)
        k->small(k, d, s, rows, cols);
    else
        blocked_tile(k, d, s, rows, cols, NULL);
}

static void planes_tile(const ctx *k, char *d, const char *s, int64_t rows,
                        int64_t cols, const int64_t *off)
{
    blocked_tile(k, d, s, rows, cols, off);
}

/* Ask for a tile's source lines ahead: its rows lie in as many pages as the
 * tile has columns, too many streams for the hardware prefetcher when they
 * are many (measured: 0.55 -> 0.63 of memcpy with 64 float32 columns, but
 * 0.85 -> 0.77 with 6 float64 columns). */
static void prefetch_tile(const ctx *k, const char *s, int64_t rows,
                          int64_t cols)
{
    const int64_t span = (rows - 1) * k->s_row + k->e; /* bytes of a source row */
    for (int64_t j = 0; j < cols; j++)
        for (int64_t b = 0; b < span; b += 64)
            __builtin_prefetch(s + j * k->s_col + b, 0, 3);
}

/* Cache blocking: each tile's source and destination lines stay in L1,
 * while the next tile's source lines are on their way. */
static void transpose_tiles(const ctx *k, char *d, const char *s, int64_t rows,
                            int64_t cols)
{
    const int64_t tr = k->p->tile_rows, tc = k->p->tile_cols;
    /* Only for columns in lines of their own whose rows span a line or more:
     * otherwise the source is a few sequential streams the hardware
     * prefetcher follows, or lines the previous tile already brought. */
    const int prefetch = min64(tc, cols) >= PF_PREFETCH_MIN_COLS
                         && llabs_(k->s_col) >= 64
                         && llabs_(k->s_row) * min64(tr, rows) >= 64;
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

/* Rows by a byte-permute program: whole groups of rows (blocks), or
 * pieces of each row; the rest by the portable loop. */
static void program_group(const ctx *k, char *d, const char *s, int64_t count,
                          int64_t s_step, int64_t len)
{
    const pf_plan *p = k->p;
    if (p->program == 1) {
        const int64_t r = p->program_rows, runs = count / r;
        k->program(p, d, s, runs, r * s_step, r * k->row_bytes);
        k->tail(k, d + runs * r * k->row_bytes, s + runs * r * s_step, 1, 0,
                count - runs * r, s_step, len);
        return;
    }
    const int64_t m = p->program_items, runs = len / m;
    for (int64_t i = 0; i < count; i++, s += s_step, d += len * k->e) {
        k->program(p, d, s, runs, m * k->s_col, m * k->e);
        k->tail(k, d + runs * m * k->e, s + runs * m * k->s_col, 1, 0, 1, 0,
                len - runs * m);
    }
}

static void program_rows(const ctx *k, char *d, const char *s, int64_t groups,
                         int64_t s_group, int64_t count, int64_t s_step, int64_t len)
{
    for (int64_t g = 0; g < groups; g++, d += count * k->row_bytes, s += s_group)
        program_group(k, d, s, count, s_step, len);
}

/* Tiles whose rows are SIMD gathers (no register block fits them). */
static void simd_tile(const ctx *k, char *d, const char *s, int64_t rows,
                      int64_t cols)
{
    for (int64_t i = 0; i < rows; i++)
        k->simd_rows(d + i * k->d_row, s + i * k->s_row, 1, 0, cols);
}

/* ---- the loop nest ---------------------------------------------------------- */

/* Row kernels: units are ranges of rows, or pieces of one long row. */
static void run_row_units(const ctx *k, int64_t begin, int64_t end)
{
    const pf_plan *p = k->p;
    const int last = k->n_axes - 1;
    if (k->col_chunks > 1) {
        for (int64_t u = begin; u < end; u++) {
            int64_t r = u / k->col_chunks, c = u % k->col_chunks;
            int64_t soff = 0, rest = r;
            for (int a = last; a >= 0; a--) {
                soff += rest % k->count[a] * k->sstep[a];
                rest /= k->count[a];
            }
            int64_t first = c * p->col_chunk;
            k->rows(k, k->dst + r * k->row_bytes + first * k->e,
                    k->src + soff + first * k->s_col, 1, 0, 1, 0,
                    min64(p->col_chunk, p->row_elems - first));
        }
        return;
    }

    const int64_t r_end = min64(end * p->row_chunk, p->rows);
    int64_t r = begin * p->row_chunk;
    int64_t idx[PF_MAX_DIMS + 2], soff = 0, rest = r;
    for (int a = last; a >= 0; a--) {
        idx[a] = rest % k->count[a];
        rest /= k->count[a];
        soff += idx[a] * k->sstep[a];
    }
    char *d = k->dst + r * k->row_bytes;
    while (r < r_end) {
        const int64_t n = min64(k->count[last] - idx[last], r_end - r);
        /* Whole runs of the innermost axis: as many as fit of the axis
         * before, in one call; else the rest of this run. */
        const int whole = last > 0 && idx[last] == 0 && n == k->count[last];
        const int step_axis = whole ? last - 1 : last;
        const int64_t groups = whole ? min64(k->count[last - 1] - idx[last - 1], (r_end - r) / n)
                                     : 1;
        k->rows(k, d, k->src + soff, groups, whole ? k->sstep[last - 1] : 0, n,
                k->sstep[last], p->row_elems);
        r += groups * n;
        d += groups * n * k->row_bytes;
        const int64_t steps = whole ? groups : n;
        soff += steps * k->sstep[step_axis];
        idx[step_axis] += steps;
        for (int a = step_axis; a >= 0 && idx[a] == k->count[a]; a--) { /* carry */
            soff -= k->sstep[a] * k->count[a];
            idx[a] = 0;
            if (a > 0) {
                soff += k->sstep[a - 1];
                idx[a - 1]++;
            }
        }
    }
}

/* Transposes: units are tile chunks, for each index of the other axes. */
static void run_tile_units(const ctx *k, int64_t begin, int64_t end)
{
    const pf_plan *p = k->p;
    const int n = k->n_axes, r_axis = n - 2, c_axis = n - 1;
    const int64_t rows = p->shape[p->rows_axis], cols = p->shape[p->cols_axis];
    int64_t idx[PF_MAX_DIMS + 2], soff = 0, doff = 0, rest = begin;
    for (int a = n - 1; a >= 0; a--) {
        idx[a] = rest % k->count[a];
        rest /= k->count[a];
        soff += idx[a] * k->sstep[a];
        doff += idx[a] * k->dstep[a];
    }
    for (int64_t u = begin; u < end; u++) {
        k->copy2d(k, k->dst + doff, k->src + soff,
                  min64(p->row_chunk, rows - idx[r_axis] * p->row_chunk),
                  min64(p->col_chunk, cols - idx[c_axis] * p->col_chunk));
        for (int a = n - 1; a >= 0; a--) { /* odometer step */
            soff += k->sstep[a];
            doff += k->dstep[a];
            if (++idx[a] < k->count[a])
                break;
            soff -= k->sstep[a] * k->count[a];
            doff -= k->dstep[a] * k->count[a];
            idx[a] = 0;
        }
    }
}

/* Transposes against planes: unit u is plane chunk u % count[n-1] of row
 * chunk u / count[n-1] % count[n-2] for one index of the other axes; the
 * chunk's offsets start at k->off + its first plane. */
static void run_plane_units(const ctx *k, int64_t begin, int64_t end)
{
    const pf_plan *p = k->p;
    const int n = k->n_axes;
    const int64_t rows = p->shape[p->rows_axis], planes = p->row_elems;
    for (int64_t u = begin; u < end; u++) {
        int64_t rest = u, idx[PF_MAX_DIMS + 2], soff = 0, doff = 0;
        for (int a = n - 1; a >= 0; a--) {
            idx[a] = rest % k->count[a];
            rest /= k->count[a];
            soff += idx[a] * k->sstep[a];
            doff += idx[a] * k->dstep[a];
        }
        const int64_t first_row = idx[n - 2] * p->row_chunk, first = idx[n - 1] * p->col_chunk;
        k->planes(k, k->dst + doff, k->src + soff, min64(p->row_chunk, rows - first_row),
                  min64(p->col_chunk, planes - first), k->off + first);
    }
}

static void run_job(void *c, int64_t begin, int64_t end)
{
    const ctx *k = c;
    if (begin >= end)
        return;
    if (k->p->kernel == PF_KERNEL_TRANSPOSE && k->p->block_axis >= 0)
        run_plane_units(k, begin, end);
    else if (k->p->kernel == PF_KERNEL_TRANSPOSE)
        run_tile_units(k, begin, end);
    else
        run_row_units(k, begin, end);
    if (k->p->streaming)
        pf_stream_fence();
}

static void setup_rows(ctx *k, const pf_plan *p)
{
    const int row_axes = p->kernel == PF_KERNEL_BLOCK ? p->block_axis : p->ndim - 1;
    k->s_col = p->src_strides[p->cols_axis];
    k->row_bytes = p->row_elems * k->e;
    k->col_chunks = (p->row_elems + p->col_chunk - 1) / p->col_chunk;
    k->n_axes = 0;
    for (int d = 0; d < row_axes; d++) {
        k->count[k->n_axes] = p->shape[d];
        k->sstep[k->n_axes] = p->src_strides[d];
        k->n_axes++;
    }
    if (k->n_axes == 0) { /* a single row */
        k->count[0] = 1;
        k->sstep[0] = 0;
        k->n_axes = 1;
    }
    const fixed_loops loops = loops_for(k->e);
    switch (p->kernel) {
    case PF_KERNEL_MEMCPY:
        k->rows = p->streaming ? stream_rows : run_rows;
        break;
    case PF_KERNEL_REVERSE:
        k->simd_rows = p->simd != PF_SIMD_NONE && !p->program ? pf_reverse_for(k->e, p->simd)
                                                              : NULL;
        k->rows = k->simd_rows ? simd_rows : loops.gather;
        break;
    case PF_KERNEL_BLOCK:
        k->off = p->block_offsets;
        k->rows = loops.block;
        break;
    default: /* gather */
        if (p->program) {
            k->rows = loops.gather;
        } else if (k->s_col == 0 && splat_for(k->e)) {
            k->rows = splat_for(k->e);
        } else if (p->simd != PF_SIMD_NONE
                   && (k->simd_rows = pf_gather_for(k->e, k->s_col, p->simd))) {
            k->rows = simd_rows;
        } else {
            k->rows = loops.gather;
        }
        break;
    }
    if (p->program && (k->program = pf_program_runner(p)) != NULL) {
        k->tail = k->rows;
        k->rows = program_rows;
    }
}

/* The source offset of each plane (the axes block_axis.., destination
 * order) into table[0 .. row_elems). */
static void fill_plane_table(const pf_plan *p, int64_t *table)
{
    int64_t idx[PF_MAX_DIMS] = {0}, off = 0;
    const int b = p->block_axis, last = p->ndim - 1;
    for (int64_t j = 0; j < p->row_elems; j++) {
        table[j] = off;
        for (int a = last; a >= b; a--) { /* odometer step */
            off += p->src_strides[a];
            if (++idx[a] < p->shape[a])
                break;
            off -= p->src_strides[a] * p->shape[a];
            idx[a] = 0;
        }
    }
}

/* Transposes against planes: the other axes in destination order, then
 * the row chunks, then the plane chunks (k->off: the offset table). */
static void setup_planes(ctx *k, const pf_plan *p, const int64_t *table)
{
    k->d_row = p->dst_strides[p->rows_axis];
    k->s_row = p->src_strides[p->rows_axis];
    k->off = table;
    k->planes = k->planes_small = loops_for(k->e).planes;
    if (p->micro_rows > 0) {
        k->micro = pf_square_micro_for(k->e, p->shape[p->rows_axis], p->row_elems, p->simd);
        if (k->micro.table != NULL && k->micro.rows == p->micro_rows
                && k->micro.cols == p->micro_cols)
            k->planes = planes_tile; /* else not what was planned: stay portable */
    }
    int n = 0;
    for (int d = 0; d < p->block_axis; d++) {
        if (d == p->rows_axis)
            continue;
        k->count[n] = p->shape[d];
        k->sstep[n] = p->src_strides[d];
        k->dstep[n] = p->dst_strides[d];
        n++;
    }
    k->count[n] = (p->shape[p->rows_axis] + p->row_chunk - 1) / p->row_chunk;
    k->sstep[n] = k->s_row * p->row_chunk;
    k->dstep[n] = k->d_row * p->row_chunk;
    n++;
    k->count[n] = (p->row_elems + p->col_chunk - 1) / p->col_chunk;
    k->sstep[n] = 0; /* the chunk's offsets are in the table */
    k->dstep[n] = k->e * p->col_chunk;
    k->n_axes = n + 1;
}

static void setup_tiles(ctx *k, const pf_plan *p)
{
    k->s_col = p->src_strides[p->cols_axis];
    k->d_row = p->dst_strides[p->rows_axis];
    k->s_row = p->src_strides[p->rows_axis];
    k->copy2d = transpose_tiles;
    k->small = loops_for(k->e).tile;
    if (p->simd != PF_SIMD_NONE
            && (k->simd_rows = pf_gather_for(k->e, k->s_col, p->simd)) != NULL)
        k->small = simd_tile; /* rows of the tile are gathers at step 2 */
    if (p->micro_rows > 0) {
        k->micro = pf_micro_for(k->e, p->shape[p->rows_axis], p->shape[p->cols_axis],
                                k->s_row < 0 ? -k->d_row : k->d_row, p->simd);
        if (k->micro.rows != p->micro_rows || k->micro.cols != p->micro_cols)
            k->micro.fn = NULL; /* not what was planned: stay portable */
    }
    /* Unit axes, slowest first: the outer axes in destination order (or
     * source order, see pf_plan), then the row chunks, then the column
     * chunks. */
    int n = 0;
    for (int d = 0; d < p->ndim; d++) {
        if (d == p->rows_axis || d == p->cols_axis)
            continue;
        int at = n++;
        if (p->source_order) /* insertion by descending |source stride| */
            for (; at > 0 && llabs_(k->sstep[at - 1]) < llabs_(p->src_strides[d]); at--) {
                k->count[at] = k->count[at - 1];
                k->sstep[at] = k->sstep[at - 1];
                k->dstep[at] = k->dstep[at - 1];
            }
        k->count[at] = p->shape[d];
        k->sstep[at] = p->src_strides[d];
        k->dstep[at] = p->dst_strides[d];
    }
    const int64_t rows = p->shape[p->rows_axis], cols = p->shape[p->cols_axis];
    k->count[n] = (rows + p->row_chunk - 1) / p->row_chunk;
    k->sstep[n] = k->s_row * p->row_chunk;
    k->dstep[n] = k->d_row * p->row_chunk;
    n++;
    k->count[n] = (cols + p->col_chunk - 1) / p->col_chunk;
    k->sstep[n] = k->s_col * p->col_chunk;
    k->dstep[n] = k->e * p->col_chunk;
    k->n_axes = n + 1;
}

int pf_plan_execute(const pf_plan *p, const char *src, char *dst)
{
    if (p == NULL)
        return PF_ERR_NULL;
    if (p->kernel == PF_KERNEL_NONE)
        return PF_OK;
    if (src == NULL || dst == NULL)
        return PF_ERR_NULL;
    ctx k;
    memset(&k, 0, sizeof k);
    k.p = p;
    k.src = src;
    k.dst = dst;
    k.e = p->itemsize;
    /* Transposes against planes: their offset table, on the stack when
     * small (it is built for each run: plans stay small for the cache). */
    int64_t local[PF_LOCAL_PLANES], *table = NULL;
    if (p->kernel == PF_KERNEL_TRANSPOSE && p->block_axis >= 0) {
        table = p->row_elems <= PF_LOCAL_PLANES ? local
                                                 : malloc((size_t)p->row_elems * sizeof *table);
        if (table == NULL)
            return PF_ERR_NOMEM;
        fill_plane_table(p, table);
        setup_planes(&k, p, table);
    } else if (p->kernel == PF_KERNEL_TRANSPOSE) {
        setup_tiles(&k, p);
    } else {
        setup_rows(&k, p);
    }
    /* One thread or the pool: decided here, above both. */
    int status = PF_OK;
    if (p->num_threads > 1)
        status = pf_pool_run(p->num_threads, p->units, run_job, &k);
    else
        run_job(&k, 0, p->units);
    if (table != local)
        free(table);
    return status;
}
