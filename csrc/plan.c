/* Planning: normalise the layout, then choose kernel, tiles, chunks and threads.
 *
 * The destination is always C-contiguous, so only the source decides which
 * axes can merge, and the destination order fixes the loop order (writes
 * stay sequential).
 */
#include "pyflat.h"
#include "internal.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

static _Atomic int64_t forced_min_bytes_per_thread = -1;

int64_t pf_force_min_bytes_per_thread(int64_t nbytes)
{
    return atomic_exchange(&forced_min_bytes_per_thread, nbytes);
}

static int64_t abs64(int64_t x) { return x < 0 ? -x : x; }

_Static_assert(PF_BLOCK_MAX == sizeof(((pf_plan *)0)->block_offsets) / sizeof(int64_t),
               "the plan holds PF_BLOCK_MAX block offsets");
_Static_assert(PF_PREFETCH_LINES_MAX
                   == sizeof(((pf_plan *)0)->prefetch_offsets) / sizeof(int64_t),
               "the plan holds PF_PREFETCH_LINES_MAX prefetch offsets");

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

/* a / b rounded up, for a >= 0, b >= 1 (no overflow). */
static int64_t ceil_div(int64_t a, int64_t b) { return a / b + (a % b != 0); }

/* First axis of the longest suffix of axes holding at most PF_BLOCK_MAX
 * elements (p->ndim if even the last axis is longer). */
static int block_start(const pf_plan *p)
{
    int64_t elems = 1;
    int k = p->ndim;
    while (k > 0 && p->shape[k - 1] <= PF_BLOCK_MAX / elems) {
        elems *= p->shape[k - 1];
        k--;
    }
    return k;
}

/* Whether an in-register transpose block fits a tile of axes t x last. */
static pf_micro_kernel micro_for_axes(const pf_plan *p, int t)
{
    const int last = p->ndim - 1;
    pf_micro_kernel none = {NULL, NULL, 0, 0, PF_SIMD_NONE};
    const int64_t e = p->itemsize;
    if (p->src_strides[t] != e && p->src_strides[t] != -e)
        return none;
    /* Rows backwards (stride -e): the block is read from its last row up
     * and written bottom to top (a negative destination step), which only
     * the square blocks allow (interleaves write packed rows forwards). */
    const int64_t d_row = p->src_strides[t] == e ? p->dst_strides[t] : -p->dst_strides[t];
    pf_micro_kernel m = pf_micro_for(e, p->shape[t], p->shape[last], d_row, pf_simd_level());
    if (m.fn == NULL || p->shape[t] < m.rows || p->shape[last] < m.cols)
        return none;
    return m;
}

/* Source offset of element j of the block of axes kb.. (destination order). */
static int64_t block_offset(const pf_plan *p, int kb, int64_t j)
{
    int64_t off = 0;
    for (int d = p->ndim - 1; d >= kb; d--) {
        off += j % p->shape[d] * p->src_strides[d];
        j /= p->shape[d];
    }
    return off;
}

/* A byte-permute program for blocks of axes kb.. (at most PF_PROGRAM_BYTES),
 * as many consecutive blocks of the axis before at once as fit, moving at
 * least min_items items per run: 1 if it builds (the plan's program fields
 * are then set). */
static int try_block_program(pf_plan *p, int kb, int64_t min_items)
{
    const int64_t e = p->itemsize;
    if (e >= PF_PROGRAM_MAX_ITEM)
        return 0; /* such items already move as whole vectors */
    int64_t elems = 1;
    for (int d = kb; d < p->ndim; d++) {
        if (p->shape[d] > PF_PROGRAM_BYTES / elems)
            return 0;
        elems *= p->shape[d];
    }
    if (elems * e > PF_PROGRAM_BYTES)
        return 0;
    const int ra = kb - 1;
    int64_t rows = PF_PROGRAM_BYTES / (elems * e);
    if (ra < 0 || rows > p->shape[ra])
        rows = ra < 0 ? 1 : p->shape[ra];
    const int64_t s_a = ra < 0 ? 0 : p->src_strides[ra];
    int64_t off[PF_PROGRAM_BYTES];
    for (; rows >= 1; rows = rows > 1 ? 1 : 0) {
        /* A run must move enough bytes to pay for itself (measured: runs of
         * one 4-byte block, 0.03 of memcpy; the item loop, 0.14). */
        if (rows * elems * e < (rows > 1 ? PF_PROGRAM_MIN_BYTES : 2 * PF_PROGRAM_MIN_BYTES)
                || rows * elems < min_items)
            return 0;
        for (int64_t i = 0; i < rows; i++)
            for (int64_t j = 0; j < elems; j++)
                off[i * elems + j] = i * s_a + block_offset(p, kb, j);
        if (pf_build_program(p, off, rows * elems)) {
            p->program = 1;
            p->program_rows = rows;
            return 1;
        }
    }
    return 0;
}

/* Gathers and reversed runs: a program for pieces of a row. */
static int try_row_program(pf_plan *p)
{
    const int64_t e = p->itemsize, s_col = p->src_strides[p->ndim - 1];
    int64_t items = PF_PROGRAM_BYTES / e;
    if (items > p->row_elems)
        items = p->row_elems;
    if (items < 1 || s_col == 0 || e > PF_ROW_PROGRAM_MAX_ITEM
            || items * e < (e == 1 ? 2 * PF_PROGRAM_MIN_BYTES : PF_ROW_PROGRAM_MIN_BYTES))
        return 0;
    int64_t off[PF_PROGRAM_BYTES];
    for (int64_t j = 0; j < items; j++)
        off[j] = j * s_col;
    if (!pf_build_program(p, off, items))
        return 0;
    p->program = 2;
    p->program_rows = 1;
    return 1;
}

/* First axis of the longest suffix of axes after t whose elements (the
 * planes) fill at most PF_PLANE_ROW_BYTES (p->ndim if none). */
static int plane_start(const pf_plan *p, int t)
{
    int64_t planes = 1;
    int b = p->ndim;
    while (b > t + 1 && p->shape[b - 1] <= PF_PLANE_ROW_BYTES / p->itemsize / planes) {
        planes *= p->shape[b - 1];
        b--;
    }
    return b;
}

/* Elements of the axes b.. (at most PF_PLANE_ROW_BYTES, see plane_start). */
static int64_t planes_from(const pf_plan *p, int b)
{
    int64_t planes = 1;
    for (int d = b; d < p->ndim; d++)
        planes *= p->shape[d];
    return planes;
}

static void describe(pf_plan *p, const char *what)
{
    const int64_t e = p->itemsize;
    if (e <= PF_FIXED_MAX)
        snprintf(p->inner, sizeof p->inner, "%s, %lld-byte items", what, (long long)e);
    else
        snprintf(p->inner, sizeof p->inner, "%s, %lld-byte items as words", what,
                 (long long)e);
}

/* Whether the block kernel's offset table takes the block of axes kb..
 * (one table-driven row per outer index, t the transpose axis): tiny
 * transposes, those that no register block fits, and short strided rows. */
static int table_block_fits(const pf_plan *p, int kb, int t)
{
    const int last = p->ndim - 1;
    const int64_t e = p->itemsize, s_last = p->src_strides[last];
    if (kb >= last || s_last == e
            || (s_last == -e && p->shape[last] > 1
                && p->shape[last] * e > PF_TABLE_REVERSED_ROW_BYTES))
        return 0; /* runs: the memcpy and reverse kernels */
    const pf_micro_kernel micro = t >= 0 ? micro_for_axes(p, t)
                                         : (pf_micro_kernel){NULL, NULL, 0, 0, PF_SIMD_NONE};
    int64_t block_elems = 1;
    for (int d = kb; d < p->ndim; d++)
        block_elems *= p->shape[d]; /* <= PF_BLOCK_MAX */
    /* Register blocks pay on blocks of more than a few hundred bytes, or
     * of a few lines of 1- or 2-byte items that they tile whole (see
     * PF_TINY_BLOCK_BYTES). */
    const int64_t block_bytes = block_elems * e;
    const int whole = micro.fn != NULL && p->shape[t] % micro.rows == 0
                      && p->shape[last] % micro.cols == 0 && e <= 2;
    const int tiny = block_bytes <= PF_TABLE_BLOCK_BYTES
                     || (block_bytes <= PF_TINY_BLOCK_BYTES && !whole);
    const int short_row = p->shape[last] * e <= PF_SHORT_ROW_BYTES;
    /* A transpose of a tiny tile in the block: its tiles would be units of
     * a few items each, a call and an odometer step apiece (measured on
     * the 3 layouts of the tuning seeds whose plan this changes, and fuzz
     * 5150 #34, median of two runs: 1.3x to 3x faster; #34 went from 0.88x
     * to 2.7x numpy's speed). */
    if (t >= kb && p->shape[t] * p->shape[last] <= PF_TINY_TILE_ITEMS)
        return 1;
    if (micro.fn == NULL && p->shape[last] >= PF_TABLE_MAX_ROW_ITEMS)
        return 0; /* rows at a constant step: the gather's item loop */
    return (micro.fn == NULL || tiny) && (t >= kb || (t < 0 && short_row));
}

/* Whether the source's extent and the output make PF_PREFETCH_MIN_BYTES
 * or more: less comes from the last-level cache. */
static int beyond_the_cache(const pf_plan *p)
{
    int64_t span = p->itemsize; /* the source's extent (fits: pf_plan_make) */
    for (int d = 0; d < p->ndim; d++)
        span += (p->shape[d] - 1) * abs64(p->src_strides[d]);
    return span >= PF_PREFETCH_MIN_BYTES - p->nbytes;
}

/* a / 64 rounded down (offsets may be negative). */
static int64_t line_of(int64_t offset) { return offset >= 0 ? offset / 64 : -((63 - offset) / 64); }

/* The distinct source lines of a row of the block of axes kb.. (their
 * offsets into lines_at): how many, or 0 where block rows do not prefetch
 * (see PF_PREFETCH_MIN_BYTES): the source within the cache, blocks of
 * fewer than PF_PREFETCH_BLOCK_MIN_ITEMS items, fewer lines than
 * PF_PREFETCH_LINES_MIN or more than PF_PREFETCH_LINES_MAX. */
static int64_t block_prefetch_lines(const pf_plan *p, int kb, int64_t *lines_at)
{
    int64_t elems = 1;
    for (int d = kb; d < p->ndim; d++)
        elems *= p->shape[d]; /* <= PF_BLOCK_MAX */
    if (elems < PF_PREFETCH_BLOCK_MIN_ITEMS || !beyond_the_cache(p))
        return 0;
    int64_t lines = 0;
    for (int64_t j = 0; j < elems; j++) {
        const int64_t offset = block_offset(p, kb, j);
        const int64_t last = line_of(offset + p->itemsize - 1);
        for (int64_t line = line_of(offset); line <= last; line++) {
            int64_t seen = 0;
            while (seen < lines && lines_at[seen] != line * 64)
                seen++;
            if (seen < lines)
                continue;
            if (lines == PF_PREFETCH_LINES_MAX)
                return 0;
            lines_at[lines++] = line * 64;
        }
    }
    return lines < PF_PREFETCH_LINES_MIN ? 0 : lines;
}

/* A block the offset table would take, by a byte-shuffle program at the
 * AVX2 level instead (items of 1, 2 and 4 bytes): the table's block, or
 * failing that the largest smaller one whose program builds, where its
 * 16-byte chunks need few source windows on average (see
 * PF_OVER_TABLE_WINDOWS_X2), and not where the table's rows would
 * prefetch, which programs do not.  1 if the plan now has the program. */
static int shuffles_over_table(pf_plan *p, int kb)
{
    const int64_t e = p->itemsize;
    int64_t lines_at[PF_PREFETCH_LINES_MAX];
    if (pf_simd_level() != PF_SIMD_AVX2 || (e != 1 && e != 2 && e != 4)
            || block_prefetch_lines(p, kb, lines_at) > 0)
        return 0;
    pf_plan trial = *p;
    int b = kb;
    while (b < p->ndim
           && !try_block_program(&trial, b, b > kb ? PF_PROGRAM_MIN_ITEMS_OVER_TABLE : 1))
        b++;
    if (b == p->ndim || !trial.program_shuffle)
        return 0;
    int64_t windows = 0;
    for (int c = 0; c < trial.program_chunks; c++)
        windows += trial.shuffle_windows[c];
    const int64_t windows_x2 = b > kb ? PF_OVER_TABLE_WINDOWS_X2_SMALLER_BLOCK
                               : e == 4 ? PF_OVER_TABLE_WINDOWS_X2_ITEMS_4
                                        : PF_OVER_TABLE_WINDOWS_X2;
    if (2 * windows > windows_x2 * trial.program_chunks)
        return 0;
    *p = trial;
    p->kernel = PF_KERNEL_BLOCK;
    p->block_axis = b;
    p->simd = PF_SIMD_AVX2;
    snprintf(p->inner, sizeof p->inner, "byte-shuffle program, %lld block(s) per run",
             (long long)p->program_rows);
    return 1;
}

static void choose_kernel(pf_plan *p)
{
    const int last = p->ndim - 1;
    const int64_t e = p->itemsize;
    const int64_t s_last = p->src_strides[last];

    p->cols_axis = last;
    p->block_axis = -1;
    const int kb0 = block_start(p);
    const int t0 = transpose_axis(p);
    /* Contiguous rows: inline moves do rows of 16 bytes and more as well
     * (measured: 40-byte float32 rows, 0.45 of memcpy by moves, 0.18 by a
     * program; tiny copies also pay the program's planning). */
    const int level = pf_simd_level();
    /* Without VBMI, byte shuffles (16-byte windows) pay only on items of 1
     * and 2 bytes, runs under PF_SHUFFLE_RUN_BYTES, and blocks that neither
     * register blocks nor reversing shuffles take, nor an offset table of
     * a larger block (see PF_SHUFFLE_RUN_BYTES); blocks the table takes
     * may go by programs after all (shuffles_over_table). */
    const int shuffles = level == PF_SIMD_AVX2 && e <= 2
                         && !(t0 >= 0 && micro_for_axes(p, t0).fn != NULL)
                         && !(s_last == -e && pf_reverse_for(e, level));
    const int64_t short_limit = s_last != e ? PF_SHORT_ROW_BYTES
                                : shuffles ? PF_SHUFFLE_RUN_BYTES : PF_SHORT_RUN_BYTES;
    if ((level >= PF_SIMD_AVX512 || shuffles)
            && (p->shape[last] * e < short_limit || (t0 >= kb0 && s_last != e))) {
        /* Short rows, tiny transposes: a byte-permute program moves several
         * blocks per run; the largest block whose program builds. */
        const int table = table_block_fits(p, kb0, t0);
        for (int kb = kb0; kb <= last; kb++) {
            if (kb > t0 && t0 >= kb0 && p->shape[last] * e >= short_limit)
                break; /* the block no longer holds the transpose */
            if (shuffles && kb > kb0 && table)
                break; /* see PF_SHUFFLE_RUN_BYTES */
            /* A smaller block than the offset table's must move many
             * items per run to beat its one move per item (measured,
             * seeds 11, 777 and 4669, against the table: runs of 8 float32
             * items 0.14x its speed, of 32 8-byte items 0.7x and 0.8x, of
             * 56 3-byte items 1.85x). */
            const int64_t min_items = kb > kb0 && table ? PF_PROGRAM_MIN_ITEMS_OVER_TABLE : 1;
            if (try_block_program(p, kb, min_items)) {
                p->kernel = PF_KERNEL_BLOCK;
                p->block_axis = kb;
                p->simd = p->program_shuffle ? PF_SIMD_AVX2 : PF_SIMD_AVX512;
                snprintf(p->inner, sizeof p->inner, "byte-%s program, %lld block(s) per run",
                         p->program_shuffle ? "shuffle" : "permute",
                         (long long)p->program_rows);
                return;
            }
        }
    }
    if (s_last == e) {
        p->kernel = PF_KERNEL_MEMCPY;
        snprintf(p->inner, sizeof p->inner, "%s",
                 p->shape[last] * e < PF_MEMCPY_MIN_BYTES ? "overlapping 16-byte moves"
                                                           : "memcpy");
        return;
    }
    if (s_last == -e && p->shape[last] > 1) {
        if (table_block_fits(p, kb0, t0)) { /* short reversed rows */
            if (shuffles_over_table(p, kb0))
                return;
            p->kernel = PF_KERNEL_BLOCK;
            p->block_axis = kb0;
            describe(p, "offset table");
            return;
        }
        p->kernel = PF_KERNEL_REVERSE;
        p->simd = pf_reverse_for(e, pf_simd_level()) ? pf_simd_level() : PF_SIMD_NONE;
        describe(p, p->simd != PF_SIMD_NONE ? "vector shuffles" : "item moves");
        return;
    }
    const int t = t0, kb = kb0; /* the layout has not changed since */
    pf_micro_kernel micro = {NULL, NULL, 0, 0, PF_SIMD_NONE};
    if (t >= 0)
        micro = micro_for_axes(p, t);
    if (table_block_fits(p, kb, t)) {
        if (shuffles_over_table(p, kb))
            return;
        p->kernel = PF_KERNEL_BLOCK;
        p->block_axis = kb;
        describe(p, "offset table");
        return;
    }
    /* Tiles of item moves pay only where a tile's rows share source lines:
     * not for fewer than PF_MIN_TILE_ROWS rows, nor along a broadcast axis;
     * the gather's item moves, in destination order, get the same lines
     * from the cache (measured on the 49 such layouts of 4 x 300 fuzz
     * layouts: the gather faster on 38, up to 5x; slower on 11, up to 2x). */
    const int tiles_pay = micro.fn != NULL
                          || (t >= 0 && p->shape[t] >= PF_MIN_TILE_ROWS && p->src_strides[t] != 0);
    const int pb = t >= 0 ? plane_start(p, t) : p->ndim;
    if (t >= 0 && pb < last && p->shape[last] * e < PF_TILE_BYTES
            && p->shape[t] >= PF_MIN_TILE_ROWS
            && (pb == t + 1 || p->shape[t] < PF_PLANE_MIDDLE_ROWS)
            && (abs64(p->src_strides[t]) == e || p->shape[last] * e <= 8)) {
        /* Destination rows of several axes after the rows axis, the last
         * of them short: tiles of the rows axis x all those axes (through
         * an offset table) write whole stretches of destination rows,
         * where tiles of the rows axis x the last axis write a few items
         * of each row per pass over them.  Measured on the 60 such layouts
         * of tuning seeds 11 and 12: 1.28x faster (geometric mean), 3
         * slower by over 10%, with these limits; with none, 1.27x but 15
         * slower (rows read at a step but for the tiniest last axes,
         * destination rows over PF_PLANE_ROW_BYTES, fewer than
         * PF_MIN_TILE_ROWS rows).  Longer rows: the planes are their
         * longest suffix of axes that fits, the axes between are outer,
         * for fewer than PF_PLANE_MIDDLE_ROWS rows (tiles of the rows axis
         * x the last axis are as short; measured on the 39 such layouts of
         * the tuning seeds: 1.6x faster (geometric mean) with fewer than
         * 300 rows, 1.0x with more, 0.53 to 0.78x on 4 of them). */
        p->kernel = PF_KERNEL_TRANSPOSE;
        p->rows_axis = t;
        p->block_axis = pb;
        const int64_t planes = planes_from(p, pb);
        const pf_micro_kernel square = pf_square_micro_for(e, p->shape[t], planes,
                                                           pf_simd_level());
        if (square.table != NULL && abs64(p->src_strides[t]) == e && p->shape[t] >= square.rows
                && planes >= square.cols) {
            p->simd = square.simd;
            p->micro_rows = square.rows;
            p->micro_cols = square.cols;
        }
        describe(p, p->micro_rows ? "register blocks + item moves, offset table"
                                  : "item moves, offset table");
        return;
    }
    if (t >= 0 && tiles_pay) {
        p->kernel = PF_KERNEL_TRANSPOSE;
        p->rows_axis = t;
        p->tile_cols = pf_tile_edge(e);
        /* Rows of a few bytes (uint8 RGB): taller tiles, fewer of them
         * (measured: 0.52 -> 0.63 of memcpy on uint8 RGB planes, mean of 10
         * runs; but 0.85 -> 0.79 with rows of six float64). */
        p->tile_rows = p->tile_cols * (p->shape[last] * e <= PF_NARROW_ROW_BYTES ? 2 : 1);
        /* Columns far apart (each in pages of its own): 4x taller tiles
         * read longer runs of each (measured on the 42 such transposes of
         * tuning seed 11: 1.09x faster by geometric mean, 0.86 to 1.6x). */
        if (abs64(s_last) >= PF_TALL_TILE_STRIDE) {
            p->tile_rows *= 4;
            /* ... and where their rows are read at a step, items of 8 bytes
             * and more moved one by one: 8 columns, as many more rows (a
             * quarter of the source streams at once, or fewer).  Measured
             * against numpy's time in the same process, median of three
             * runs: float64 rows at step 2 x 35 columns 1.6 MB apart 0.81x
             * -> 1.09x numpy's speed; the 7 such layouts of tuning seeds 13
             * and 777 1.18x, then 0.97x in a rerun, the 7 of seeds 11 and 12
             * 1.07x (this machine's noise, about 30%, hides smaller
             * effects).  Not with rows read contiguously (0.99x, 0.66 to
             * 1.44x on 23 layouts), nor on 1- to 4-byte items (mixed). */
            if (micro.fn == NULL && e >= 8 && abs64(p->src_strides[t]) != e) {
                p->tile_rows = p->tile_rows * p->tile_cols / PF_STEP_ROWS_TILE_COLS;
                p->tile_cols = PF_STEP_ROWS_TILE_COLS; /* pf_tile_edge: >= 8 */
            }
        }
        /* Register blocks of 8-byte items, many rows read forwards and many
         * columns: tiles one block wide read each column's rows as one long
         * run the hardware prefetcher follows (4 KB), where square tiles
         * read 256 bytes of each of 32 columns.  Measured with variants
         * alternating in one process, on the 31 layouts it changed among
         * tuning seeds 11, 12, 13, 777, 2718, 31415, 90210, 161803 and seeds
         * used before (4669 to 65537): 1.17x faster from the cache and from
         * memory, up to 1.8x on square tiles; tiles two blocks wide 0.86x;
         * at 4 bytes, blocks one wide 1.10x and 1.04x (not kept); under 16
         * columns 0.7x to 0.9x; rows read backwards 0.76x to 1.15x (seed 13
         * #197, and the fresh seed 555444's #40, which it was judged on). */
        if (micro.fn != NULL && e == 8 && p->src_strides[t] == e
                && p->shape[t] >= PF_LONG_TILE_MIN_ROWS
                && p->shape[last] >= PF_LONG_TILE_MIN_COLS) {
            p->tile_rows = PF_LONG_TILE_ROWS;
            p->tile_cols = micro.cols;
        }
        p->simd = micro.fn ? micro.simd : PF_SIMD_NONE;
        p->micro_rows = micro.rows;
        p->micro_cols = micro.cols;
        if (micro.fn == NULL && pf_gather_for(e, s_last, pf_simd_level())) {
            p->simd = pf_simd_level(); /* tile rows: vector gathers at step 2 */
            p->tile_cols = PF_FEW_ROWS_TILE_COLS;
        }
        /* Tiles whose source rows use only part of their lines: the rest
         * of those lines belongs to other outer indices; visit those next
         * (source order), while the lines are cached.  Destination rows of
         * a tile are whole lines or more, so that order costs no writes. */
        p->source_order = abs64(p->src_strides[t]) * p->shape[t] < PF_LINE_REUSE_BYTES
                          && p->shape[last] * e >= 64;
        describe(p, micro.fn ? "register blocks + item moves"
                    : p->simd != PF_SIMD_NONE ? "vector gathers (every other item)"
                                              : "item moves");
        return;
    }
    p->kernel = PF_KERNEL_GATHER;
    if (s_last == 0 && pf_has_splat(e)) {
        describe(p, e == 1 && p->shape[last] >= PF_MEMSET_MIN_BYTES
                    ? "one item repeated, memset" : "one item repeated, 16-byte stores");
    } else if (pf_gather_for(e, s_last, pf_simd_level())) {
        p->simd = pf_simd_level();
        describe(p, "vector shuffles (every other item)");
    } else {
        describe(p, "item moves");
    }
}

/* The offset table of a block: source offset of each of its elements, in
 * destination order. */
static void fill_block(pf_plan *p)
{
    const int kb = p->block_axis;
    int64_t elems = 1;
    for (int d = kb; d < p->ndim; d++)
        elems *= p->shape[d];
    for (int64_t j = 0; j < elems; j++)
        p->block_offsets[j] = block_offset(p, kb, j);
    p->row_elems = elems;
}

/* Row kernels: rows of about PF_UNIT_BYTES per unit, or pieces of rows
 * longer than that. */
static void choose_row_chunks(pf_plan *p)
{
    const int64_t e = p->itemsize;
    if (p->kernel == PF_KERNEL_BLOCK)
        fill_block(p);
    else
        p->row_elems = p->shape[p->ndim - 1];
    const int row_axes = p->kernel == PF_KERNEL_BLOCK ? p->block_axis : p->ndim - 1;
    p->rows_axis = row_axes - 1;
    /* Programs for long rows only where no 16/32-byte shuffle loop exists
     * (measured: int32 step-2 rows of 36 items, 0.37 of memcpy by program,
     * 0.61 by the SSSE3 loop). */
    const int64_t s_last = p->src_strides[p->ndim - 1];
    if ((p->kernel == PF_KERNEL_GATHER || p->kernel == PF_KERNEL_REVERSE)
            && pf_simd_level() >= PF_SIMD_AVX512
            && !(p->kernel == PF_KERNEL_GATHER && (s_last == 0 || pf_gather_for(e, s_last, pf_simd_level())))
            && !(p->kernel == PF_KERNEL_REVERSE && pf_reverse_for(e, pf_simd_level()))
            && try_row_program(p)) {
        p->simd = PF_SIMD_AVX512;
        snprintf(p->inner, sizeof p->inner, "byte-permute program, %lld items per run",
                 (long long)p->program_items);
    }
    const int64_t row_bytes = p->row_elems * e; /* <= nbytes */
    p->rows = p->nbytes / row_bytes;
    if (row_bytes > PF_UNIT_BYTES) {
        p->row_chunk = 1;
        p->col_chunk = clamp64(PF_UNIT_BYTES / e, 1, p->row_elems);
        p->units = p->rows * ceil_div(p->row_elems, p->col_chunk); /* <= elements */
    } else {
        p->col_chunk = p->row_elems;
        p->row_chunk = clamp64(PF_UNIT_BYTES / row_bytes, 1, p->rows);
        p->units = ceil_div(p->rows, p->row_chunk);
    }
}

/* Block rows: the source lines of a row ahead are prefetched, each line of
 * the block's items once. */
static void choose_block_prefetch(pf_plan *p)
{
    if (p->kernel != PF_KERNEL_BLOCK || p->program)
        return;
    const int64_t lines = block_prefetch_lines(p, p->block_axis, p->prefetch_offsets);
    if (lines == 0)
        return;
    p->prefetch_lines = lines;
    p->prefetch_rows = ceil_div(PF_PREFETCH_AHEAD_LINES, lines);
    const size_t used = strlen(p->inner);
    snprintf(p->inner + used, sizeof p->inner - used, ", prefetch %lld row(s) ahead",
             (long long)p->prefetch_rows);
}

/* Tiles of planes by item moves, or by register blocks a row of blocks at
 * a time (choose_block_order): each line of rows asks for the planes'
 * lines PF_PREFETCH_PLANE_LINES lines of rows ahead, where the tile has
 * PF_PREFETCH_MIN_COLS planes or more (as many source streams).  Register
 * blocks measured with variants alternating in one process, 8-byte items
 * then all by rows, on the 14 layouts it changed among tuning seeds 11,
 * 12, 13, 777 and six seeds used for tuning before: 1.22x faster from the
 * cache, 1.24x with the data in memory, 0.81x to 1.76x (2 and 4 lines
 * ahead alike, 8 and 16 1.11x).  8 of them, tiles of 10 to 61 rows, still
 * go by rows; the 6 others now by columns. */
static void choose_plane_prefetch(pf_plan *p)
{
    if (p->micro_by_columns || p->tile_cols < PF_PREFETCH_MIN_COLS || !beyond_the_cache(p))
        return;
    const int64_t s_row = p->src_strides[p->rows_axis];
    p->prefetch_rows = PF_PREFETCH_PLANE_LINES * pf_rows_per_line(s_row);
    const size_t used = strlen(p->inner);
    snprintf(p->inner + used, sizeof p->inner - used, ", prefetch %lld rows ahead",
             (long long)p->prefetch_rows);
}

/* Register blocks of a tile: a column of blocks at a time reads a few
 * source streams, which the hardware prefetcher follows, and writes part
 * of each destination line per column; a row of blocks at a time writes
 * whole stretches of destination rows from as many streams as the tile
 * has columns.  Items of up to PF_BLOCK_COLUMNS_MAX_ITEM bytes go by
 * columns: their tiles span 64 columns or planes and more (measured on
 * the 47 layouts of tuning seeds 11 and 12 with such blocks: planes 1.12
 * to 1.19x faster than by rows, up to 2.6x on uint8 with 60 planes;
 * two-axis tiles 1.02 to 1.09x), unless the tile is PF_BLOCK_ORDER_RATIO
 * times wider than tall (a call of the micro-kernel would move a strip of
 * one or two blocks).  Larger items go by rows, unless the tile is as
 * much taller than wide and, by rows, would read PF_PREFETCH_MIN_COLS
 * streams or more, or make a call per row of one block or two.
 * Measured with the orders alternating in one process, on the register-
 * block transposes of tuning seeds 11, 12, 13, 777 and six earlier ones,
 * from the cache and with the data in memory: 8-byte items, the 51 whose
 * tiles are 4 times taller than wide 1.36x and 1.25x faster by geometric
 * mean; by columns all wins on fewer columns than two blocks (1.15x to
 * 2.7x) and on 30 and more (1.0x to 1.5x), and is mixed on 9 to 18 (0.66x
 * to 1.97x; on the fresh seed 42424, 0.61x and 0.75x on 14 and 8 float64
 * columns), and on tiles of 6 to 12 planes, whose 64 KB leave L1 before a
 * column's strips come back to their destination lines (0.55x to 1.16x).
 * Items of up to 4 bytes, the 23 it changes 1.14x and 1.07x. */
static void choose_block_order(pf_plan *p)
{
    if (p->micro_rows == 0)
        return;
    const int64_t planes = p->block_axis >= 0 ? planes_from(p, p->block_axis)
                                              : p->shape[p->cols_axis];
    const int64_t rows = min64(min64(p->tile_rows, p->row_chunk), p->shape[p->rows_axis]);
    const int64_t cols = min64(min64(p->tile_cols, p->col_chunk), planes);
    if (p->itemsize <= PF_BLOCK_COLUMNS_MAX_ITEM)
        p->micro_by_columns = cols < PF_BLOCK_ORDER_RATIO * rows;
    else
        p->micro_by_columns = rows >= PF_BLOCK_ORDER_RATIO * cols
                              && (cols >= PF_PREFETCH_MIN_COLS
                                  || (p->block_axis < 0 && cols < 2 * p->micro_cols));
    const size_t used = strlen(p->inner);
    snprintf(p->inner + used, sizeof p->inner - used, ", blocks by %s",
             p->micro_by_columns ? "columns" : "rows");
}

/* Transposes against the axes block_axis.. (planes): a unit is one tile
 * of at most tile_rows rows x tile_cols planes, for one index of the other
 * axes: destination runs of PF_PLANE_RUN_BYTES, and as many rows as make
 * PF_PLANE_TILE_BYTES, so that each plane's source is one long stream. */
static void choose_plane_chunks(pf_plan *p)
{
    const int64_t e = p->itemsize;
    const int64_t rows = p->shape[p->rows_axis];
    const int64_t planes = planes_from(p, p->block_axis);
    p->row_elems = planes;
    p->tile_cols = clamp64(ceil_div(PF_PLANE_RUN_BYTES, e), 16, planes);
    p->tile_rows = clamp64(PF_PLANE_TILE_BYTES / (p->tile_cols * e), PF_MIN_TILE_ROWS, rows);
    p->row_chunk = p->tile_rows;
    p->col_chunk = p->tile_cols;
    int64_t units = ceil_div(rows, p->row_chunk) * ceil_div(planes, p->col_chunk);
    for (int d = 0; d < p->block_axis; d++) /* the product stays <= elements */
        if (d != p->rows_axis)
            units *= p->shape[d];
    p->units = units;
}

/* Transposes: units of about PF_UNIT_BYTES, whole rows of tiles when they
 * are short, else row pieces of whole tiles. */
static void choose_tile_chunks(pf_plan *p)
{
    const int64_t cols = p->shape[p->cols_axis];
    const int64_t rows = p->shape[p->rows_axis];
    const int64_t row_step = p->tile_rows, col_step = p->tile_cols;
    const int64_t row_bytes = cols * p->itemsize; /* <= nbytes */

    if (row_bytes >= PF_UNIT_BYTES / row_step) {
        p->row_chunk = row_step;
        p->col_chunk = PF_UNIT_BYTES / (row_step * p->itemsize) / col_step * col_step;
    } else {
        p->col_chunk = cols;
        p->row_chunk = PF_UNIT_BYTES / row_bytes / row_step * row_step;
    }
    p->row_chunk = clamp64(p->row_chunk, row_step, rows);
    p->col_chunk = clamp64(p->col_chunk, col_step, cols);
    /* Units narrower than a tile: tiles as many times taller, the same
     * area, fewer of them (measured with builds alternating in one process
     * on the two-axis transposes of tuning seeds 11, 12, 13, 777 and of
     * 2718, 31415, 90210, 161803: the 128 and 126 it changes 1.04x faster
     * by geometric mean, 0.64x to 1.5x, the others 1.00x; where units are
     * shorter than a tile, wider tiles: 1.03x to 1.06x on 15 and 14,
     * 0.71x to 1.7x, not kept). */
    if (cols < col_step && p->row_chunk > row_step)
        p->tile_rows = clamp64(row_step * (col_step / cols), row_step, p->row_chunk);

    int64_t units = ceil_div(rows, p->row_chunk) * ceil_div(cols, p->col_chunk);
    for (int d = 0; d < p->ndim; d++) /* the product stays <= elements */
        if (d != p->rows_axis && d != p->cols_axis)
            units *= p->shape[d];
    p->units = units;
}

int pf_threads_for(int64_t nbytes, int64_t units, int num_threads)
{
    int64_t wanted = num_threads > 0 ? num_threads : pf_get_default_threads();
    int64_t min_bytes = atomic_load(&forced_min_bytes_per_thread);
    if (min_bytes < 1)
        min_bytes = PF_MIN_BYTES_PER_THREAD;
    int64_t by_size = nbytes / min_bytes;
    if (wanted > by_size)
        wanted = by_size;
    if (wanted > units)
        wanted = units;
    if (wanted > PF_MAX_THREADS)
        wanted = PF_MAX_THREADS;
    return wanted < 1 ? 1 : (int)wanted;
}

static void init_plan(pf_plan *p, int64_t itemsize)
{
    memset(p, 0, sizeof *p);
    p->itemsize = p->src_itemsize = p->dst_itemsize = itemsize;
    p->rows_axis = -1;
    p->block_axis = -1;
    p->num_threads = 1;
}

int pf_normalise_layout(int ndim, const int64_t *shape, const int64_t *src_strides,
                        int64_t itemsize, int64_t *out_shape, int64_t *out_strides)
{
    int n = drop_unit_axes(ndim, shape, src_strides, out_shape, out_strides);
    n = merge_contiguous_axes(n, out_shape, out_strides);
    if (n == 0) { /* a single element */
        out_shape[0] = 1;
        out_strides[0] = itemsize;
        return 1;
    }
    return n;
}

/* The destination strides of p's layout (C order, items of p->itemsize). */
static void set_dst_strides(pf_plan *p)
{
    const int n = p->ndim;
    p->dst_strides[n - 1] = p->itemsize;
    for (int d = n - 2; d >= 0; d--)
        p->dst_strides[d] = p->dst_strides[d + 1] * p->shape[d + 1]; /* <= nbytes */
}

/* Contiguous runs of at most PF_FIXED_MAX bytes copied by memcpy's loop
 * become items of their own (the innermost axis folded into the item):
 * the other kernels then see the layout as it is, a small block, a
 * transpose or a broadcast of fixed-size items, where the run loop makes
 * one call per few runs when the axis before is short.  Not where the
 * folded layout is a gather at a step: its loop is the run loop (measured
 * on the 52 layouts of the tuning seeds with such runs: folded blocks,
 * transposes, reversed runs and broadcasts 1.5 to 4.8x faster, gathers
 * 0.8 to 1.5x). */
static void fold_short_runs(pf_plan *p)
{
    const int n = p->ndim;
    const int64_t run = p->shape[n - 1] * p->itemsize, nbytes = p->nbytes;
    pf_plan folded;
    init_plan(&folded, run);
    folded.nbytes = nbytes;
    folded.ndim = n - 1;
    memcpy(folded.shape, p->shape, (size_t)(n - 1) * sizeof *p->shape);
    memcpy(folded.src_strides, p->src_strides, (size_t)(n - 1) * sizeof *p->src_strides);
    set_dst_strides(&folded);
    choose_kernel(&folded);
    if (folded.kernel == PF_KERNEL_GATHER && folded.src_strides[n - 2] != 0)
        return;
    *p = folded;
    static const char suffix[] = ", contiguous runs as items";
    char inner[sizeof p->inner];
    memcpy(inner, p->inner, sizeof inner);
    snprintf(p->inner, sizeof p->inner, "%.*s%s", (int)(sizeof p->inner - sizeof suffix),
             inner, suffix);
}

/* The plan proper, for a checked layout of p->nbytes (> 0) bytes. */
static void plan_layout(pf_plan *p, int ndim, const int64_t *shape,
                        const int64_t *src_strides, int64_t itemsize, int num_threads)
{
    p->ndim = pf_normalise_layout(ndim, shape, src_strides, itemsize, p->shape,
                                  p->src_strides);
    set_dst_strides(p);
    choose_kernel(p);
    if (p->kernel == PF_KERNEL_MEMCPY && p->ndim >= 2
            && p->shape[p->ndim - 1] * itemsize <= PF_FIXED_MAX)
        fold_short_runs(p);
    if (p->kernel == PF_KERNEL_TRANSPOSE && p->block_axis >= 0) {
        choose_plane_chunks(p);
        choose_block_order(p);
        choose_plane_prefetch(p);
    } else if (p->kernel == PF_KERNEL_TRANSPOSE) {
        choose_tile_chunks(p);
        choose_block_order(p);
    } else {
        choose_row_chunks(p);
        choose_block_prefetch(p);
    }
    p->streaming = p->kernel == PF_KERNEL_MEMCPY
                   && p->shape[p->cols_axis] * p->itemsize >= PF_STREAMING_MIN_RUN
                   && pf_use_streaming(p->nbytes);
    p->num_threads = pf_threads_for(p->nbytes, p->units, num_threads);
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

    int empty = 0;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0)
            return PF_ERR_SHAPE;
        empty |= shape[d] == 0;
    }
    if (empty) { /* nothing to copy, whatever the other extents */
        init_plan(p, itemsize);
        p->kernel = PF_KERNEL_NONE;
        return PF_OK;
    }
    int64_t nbytes = itemsize;
    for (int d = 0; d < ndim; d++)
        if (__builtin_mul_overflow(nbytes, shape[d], &nbytes))
            return PF_ERR_OVERFLOW;

    /* Every source offset the loops form (up to shape x |stride| per axis,
     * summed over the axes) must fit in int64. */
    int64_t span = itemsize;
    for (int d = 0; d < ndim; d++) {
        int64_t reach;
        if (shape[d] == 1)
            continue;
        if (src_strides[d] == INT64_MIN
                || __builtin_mul_overflow(shape[d], abs64(src_strides[d]), &reach)
                || __builtin_add_overflow(span, reach, &span))
            return PF_ERR_OVERFLOW;
    }

    /* Everything a plan depends on besides its arguments (see plan_cache.c). */
    int64_t settings[PF_PLAN_SETTINGS] = {
        pf_simd_level(), num_threads > 0 ? num_threads : pf_get_default_threads(),
        atomic_load(&forced_min_bytes_per_thread), pf_use_streaming(nbytes)};
    pf_plan_key key;
    const int cacheable = pf_plan_key_make(&key, ndim, shape, src_strides, itemsize, settings);
    if (cacheable && pf_plan_cache_get(p, &key))
        return PF_OK;
    init_plan(p, itemsize);
    p->nbytes = nbytes;
    plan_layout(p, ndim, shape, src_strides, itemsize, num_threads);
    if (cacheable)
        pf_plan_cache_put(p, &key);
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
    case PF_ERR_RANGE: return "a float value has no integer conversion (NaN, infinite or out of range)";
    case PF_ERR_TYPE: return "unsupported element type pair";
    case PF_ERR_FACTORS: return "scale and offset lengths must be 1 or the same channel count";
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
    case PF_KERNEL_REVERSE: return "reverse";
    case PF_KERNEL_BLOCK: return "block";
    default: return "unknown";
    }
}
