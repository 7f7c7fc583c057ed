/* Declarations shared by the C files, not part of the API, and the tuning
 * constants in one place. */
#ifndef PYFLAT_INTERNAL_H
#define PYFLAT_INTERNAL_H

#include "pyflat.h"

/* Work is cut into units of about this many bytes: small enough for threads
 * to balance, large enough that per-unit overhead vanishes. */
#define PF_UNIT_BYTES ((int64_t)256 * 1024)

/* Below this many bytes per thread, waking the pool costs more than it
 * saves.  Measured (2-core Xeon, float32 transpose and row copies into
 * out=): 512 KiB on 2 threads took 0.54-0.64 of the 1-thread time, 256 KiB
 * (a single unit) gained nothing. */
#define PF_MIN_BYTES_PER_THREAD PF_UNIT_BYTES

/* Contiguous runs shorter than this are copied with inline overlapping
 * 16-byte moves; longer ones call memcpy. */
#define PF_MEMCPY_MIN_BYTES 256

/* Items up to this many bytes have loops of their own (fixed-size moves);
 * larger ones move as 16-byte words plus an overlapping last word. */
#define PF_FIXED_MAX 32

/* A row (or small block) of at most this many bytes is "short": the block
 * kernel gathers several innermost axes into one row by a table. */
#define PF_SHORT_ROW_BYTES 64
/* ... and contiguous runs shorter than this go by programs, where the CPU
 * has them. */
#define PF_SHORT_RUN_BYTES 16

/* Transposes whose source rows (the tile's rows axis) span fewer bytes
 * than this run their outer axes in source order. */
#define PF_LINE_REUSE_BYTES 256

/* Transpose tiles span about this many bytes per row (8 to 64 elements);
 * twice as many rows when the destination rows are this narrow. */
#define PF_TILE_BYTES 256
/* ... four times as many rows when the columns are this far apart. */
#define PF_TALL_TILE_STRIDE ((int64_t)64 * 1024)
/* ... and this many columns of items of 8 bytes or more, moved one by one
 * from rows read at a step (see choose_kernel in plan.c). */
#define PF_STEP_ROWS_TILE_COLS 8
/* Transposes by register blocks of 8-byte items with this many rows and
 * columns or more take tiles of PF_LONG_TILE_ROWS rows, one block wide
 * (see choose_kernel). */
#define PF_LONG_TILE_MIN_ROWS 256
#define PF_LONG_TILE_MIN_COLS 16
#define PF_LONG_TILE_ROWS 512
/* Tiles whose rows are vector gathers: this many columns (measured: 2 x 64
 * tiles cost 2.5x a 2 x 512 one per item). */
#define PF_FEW_ROWS_TILE_COLS 512
#define PF_NARROW_ROW_BYTES 16

/* Transpose tiles at least this wide prefetch the next tile's source: more
 * source streams than the hardware prefetcher follows. */
#define PF_PREFETCH_MIN_COLS 16

/* Block rows prefetch the source lines of a row ahead: the hardware
 * prefetchers follow streams, not a block's scattered lines repeated at a
 * row step.  Only where the source's extent and the output make
 * PF_PREFETCH_MIN_BYTES and more (less comes from the last-level cache,
 * where the prefetches are only cost), for rows of
 * PF_PREFETCH_BLOCK_MIN_ITEMS items and more whose source spans
 * PF_PREFETCH_LINES_MIN to PF_PREFETCH_LINES_MAX lines; about
 * PF_PREFETCH_AHEAD_LINES lines ahead.  Measured on the 233 layouts of
 * tuning seeds 11, 12, 13 and 777 with table rows, variants alternating in
 * one process, two runs: the 119 it changes 1.12x faster by geometric
 * mean, up to 2.7x, 17 slower by 5% in both runs (down to 0.75x); the 114
 * others 1.00x.  Without the size limit, outputs under 4 MB 0.93-0.96x;
 * rows of fewer items 1.06x (0.5x on rows of 4 items); more lines 0.99x. */
#define PF_PREFETCH_MIN_BYTES ((int64_t)8 << 20)
#define PF_PREFETCH_BLOCK_MIN_ITEMS 16
#define PF_PREFETCH_LINES_MIN 4
#define PF_PREFETCH_LINES_MAX 64
#define PF_PREFETCH_AHEAD_LINES 32
/* Tiles of planes prefetch each plane's line this many lines of rows ahead
 * (see choose_plane_prefetch in plan.c). */
#define PF_PREFETCH_PLANE_LINES 4
/* Register blocks go a column of blocks at a time for items up to this
 * size, a row of blocks at a time for larger ones, unless a tile is this
 * many times longer the other way (see choose_block_order in plan.c). */
#define PF_BLOCK_COLUMNS_MAX_ITEM 4
#define PF_BLOCK_ORDER_RATIO 4

static inline int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

/* Rows read at a step of s_row bytes that share a 64-byte line (1 if they
 * are a line apart or more; s_row > INT64_MIN). */
static inline int64_t pf_rows_per_line(int64_t s_row)
{
    if (s_row < 0)
        s_row = -s_row;
    return s_row > 0 && s_row < 64 ? 64 / s_row : 1;
}

/* Streaming stores (whole lines, pf_stream_copy) for rows of contiguous
 * runs: they spare the read of each destination line that plain stores
 * make, once the output is past what the last-level cache holds, and only
 * for long runs.  Measured on a 2-core AMD EPYC (Zen 3, 32 MB L3, about
 * 16 MB of it ours): the 21 such layouts of tuning seeds 11, 12, 13 and
 * 777 (outputs of 8 to 63 MB, runs of 1 KiB and more), median of three
 * runs: 1.33x faster by geometric mean, up to 2.5x, 3 slower by 5 to 15%;
 * runs from 4 KiB only: 1.25x.  Every row kernel streaming through an
 * 8 KiB buffer in L1 (gathers, blocks, short runs), on tuning seed 11:
 * 0.82 to 0.91x (the extra pass costs more than the saved reads).
 * An earlier machine (session 5) measured 1.05x on 34 MB of 8 KiB rows. */
#define PF_STREAMING_MIN_BYTES ((int64_t)8 << 20)
#define PF_STREAMING_MIN_RUN 1024

/* Transposes against several axes (planes, see choose_kernel): for
 * destination rows of at most PF_PLANE_ROW_BYTES (their offset table is
 * built for each run); tiles write runs of PF_PLANE_RUN_BYTES of each row
 * and span about PF_PLANE_TILE_BYTES (measured on 60 fuzz layouts of the
 * tuning seeds, against runs of 64 B and 16 KB tiles: 1.27x / 1.20x
 * faster than tiles of the rows axis x the last axis alone). */
#define PF_PLANE_ROW_BYTES 4096
/* ... and, when the planes are not all the axes after the rows axis, for
 * fewer rows than this (see choose_kernel). */
#define PF_PLANE_MIDDLE_ROWS 256
#define PF_PLANE_RUN_BYTES 256
#define PF_PLANE_TILE_BYTES ((int64_t)64 * 1024)

/* Transposes by item moves (no register block) need at least this many
 * rows (see choose_kernel). */
#define PF_MIN_TILE_ROWS 8

/* Transpose tiles: edge in elements (a multiple of every micro-kernel's). */
int64_t pf_tile_edge(int64_t itemsize);

/* In-register transposes of `blocks` rows x cols blocks whose source rows
 * are contiguous, block b at dst + b*d_block and src + b*s_block:
 * dst[i*d_row + j*e] = src[i*e + j*s_col].  A strip of blocks per call, not
 * one: an interleave block writes only 32 to 128 bytes, and the indirect
 * call cost as much as its moves. */
typedef void (*pf_micro_fn)(char *dst, const char *src, int64_t d_row,
                            int64_t s_col, int64_t blocks, int64_t d_block,
                            int64_t s_block);
/* The same block with its columns at table offsets (transposes against
 * planes): dst[i*d_row + j*e] = src[i*e + off[j]]. */
typedef void (*pf_micro_table_fn)(char *dst, const char *src, int64_t d_row,
                                  const int64_t *off);
typedef struct {
    pf_micro_fn fn;   /* NULL: none for this itemsize / level */
    pf_micro_table_fn table; /* NULL: none (interleaves have none) */
    int64_t rows, cols;
    int simd;         /* pf_simd level it needs */
} pf_micro_kernel;

/* The SIMD level in force: what the CPU has, capped by pf_force_simd. */
int pf_simd_level(void);

/* The best micro-kernel for a transpose of `rows` rows x `cols` columns
 * whose destination rows are d_row bytes apart, needing at most level
 * `simd` (micro_x86.c). */
pf_micro_kernel pf_micro_for(int64_t itemsize, int64_t rows, int64_t cols, int64_t d_row,
                             int simd);

/* The best square block (one with a table twin) for `rows` rows x `cols`
 * columns at level `simd`, or none. */
pf_micro_kernel pf_square_micro_for(int64_t e, int64_t rows, int64_t cols, int simd);

/* 1: write the output with non-temporal stores (memcpy kernel only). */
int pf_use_streaming(int64_t nbytes);
/* pf_force_streaming's setting: -1 auto, 0 off, 1 on. */
int pf_streaming_forced(void);

/* memcpy with non-temporal stores; pf_stream_fence() orders them before
 * the results are handed over. */
void pf_stream_copy(char *dst, const char *src, int64_t n);
void pf_stream_fence(void);

/* Runs units [begin, end) of a job. */
typedef void (*pf_job_fn)(void *ctx, int64_t begin, int64_t end);

/* Run units [0, units) of a job on num_threads threads (the caller
 * included); on the caller alone when num_threads < 2 or the pool is busy. */
int pf_pool_run(int num_threads, int64_t units, pf_job_fn fn, void *ctx);

/* Vector row kernels (micro_x86.c): copy `count` rows of `len` items of
 * e bytes, row i from s + i*s_step, to d + i*len*e (contiguous).  Reverse:
 * the row's items run backwards from s (s points at the row's first item). */
typedef void (*pf_rows_simd_fn)(char *d, const char *s, int64_t count,
                                int64_t s_step, int64_t len);
pf_rows_simd_fn pf_reverse_for(int64_t e, int simd);
/* Gathers at a small constant step s_col (bytes), or NULL. */
pf_rows_simd_fn pf_gather_for(int64_t e, int64_t s_col, int simd);

/* Blocks of at most PF_TINY_BLOCK_BYTES go through the block kernel's offset
 * table even where a register block fits them, unless they are larger than
 * PF_TABLE_BLOCK_BYTES and register blocks tile them whole (CPUs without
 * AVX-512 VBMI, whose byte-permute programs take such blocks first).
 * Measured at the AVX2 level, fraction of memcpy, table / register blocks:
 * float32 4x3 (48 B) 0.19 / 0.09; uint8 3x64 (192 B) 0.10 / 0.17; int16
 * 2x64 (256 B) 0.15 / 0.31; 4-byte 5x5 blocks (300 B, ragged) table faster.
 * Blocks of 4- and 8-byte items take the table even where register blocks
 * tile them whole (measured, the 3 such layouts of tuning seeds 11, 12, 13
 * and 777, kernel against numpy, two runs each: float64 2x2 blocks in a
 * 128-byte block 0.54x -> 1.44x numpy's speed, float64 24x2 3.3x faster,
 * float32 8x8 1.2x faster). */
#define PF_TINY_BLOCK_BYTES 512
#define PF_TABLE_BLOCK_BYTES 64
/* ... but blocks whose last axis has this many items or more, with no
 * register block, go by the gather: a loop at a constant step, without the
 * table's load per item (measured, kernel against numpy, two runs: the 7
 * such layouts of tuning seeds 11, 12, 13 and 777, 1.08x by geometric mean,
 * 4 of them from under numpy's speed to 0.99x-1.10x; fuzz 5150 #8, int16
 * rows of 85 items at step 18, 1.12x; with 12 items or more, the 20 more
 * layouts with rows of 12 to 31 items 0.94x). */
#define PF_TABLE_MAX_ROW_ITEMS 32
/* Transposes of at most this many items (rows x columns) inside a block
 * of PF_BLOCK_MAX go by its offset table whatever their itemsize and block
 * size: their tiles would be units of a few items each. */
#define PF_TINY_TILE_ITEMS 64
/* Reversed rows of at most this many bytes, in a block the offset table
 * takes, go by the table rather than the reverse kernel (measured on the
 * 20 such layouts of tuning seeds 11, 12, 13, 777 and earlier seeds 31415,
 * 90210, 4669 and 60221, variants alternating in one process: 2.2x faster
 * by geometric mean, up to 12x, one 7% slower; rows up to 64 bytes: 0.71x
 * and 0.84x on two with rows of 16 items). */
#define PF_TABLE_REVERSED_ROW_BYTES 32

/* Without VBMI, byte-shuffle programs (pshufb over 16-byte windows) take
 * contiguous runs shorter than this (see choose_kernel; measured on the 76
 * layouts of tuning seeds 11, 12, 13 and 777 they took with runs under 16
 * bytes, items of 1 or 2 bytes, and no register blocks or reversing
 * shuffles, kernel against numpy, two runs: 2.2x faster by geometric mean,
 * up to 29x on bytes broadcast; but runs of 8 to 15 bytes 0.47x to 1.05x,
 * and blocks smaller than the offset table's 0.89x and 1.8x). */
#define PF_SHUFFLE_RUN_BYTES 8

/* ... and blocks the offset table would take (one load and store per
 * item) go by such a program where its 16-byte chunks need on average at
 * most half as many source windows (a load and a pshufb each) as these
 * numbers: 3 for items of 1 and 2 bytes (16 and 8 items a chunk), 2 for
 * 4-byte items (4 a chunk), 1.5 for a block smaller than the table's (more
 * runs, each from its own lines); not where the table's rows prefetch.  Measured with the
 * rule on and off alternating in one process, on the 32 layouts it changes
 * among tuning seeds 11, 12, 13, 777, 2718, 31415, 90210, 161803 and seeds
 * used before (4669 to 65537): 1.47x and 1.49x faster from the cache (two
 * runs), 1.23x with the data in memory, up to 4.4x on uint8 blocks of 42
 * items; before the limits, 4 windows a chunk gave 0.68x on int16 blocks of
 * 80 items, and rows the table prefetched 0.6x to 0.9x on 3 of 21. */
#define PF_OVER_TABLE_WINDOWS_X2 6
#define PF_OVER_TABLE_WINDOWS_X2_ITEMS_4 4
#define PF_OVER_TABLE_WINDOWS_X2_SMALLER_BLOCK 3

/* Byte-permute programs move at most this many bytes per run. */
#define PF_PROGRAM_BYTES 256
/* ... and at least this many (twice as many for a single block or row
 * piece, whose sources may lie far from the next run's), or the portable
 * loops run instead (measured: 32-byte blocks 16 MB apart, one per run,
 * 0.41x numpy's speed).  Items of PF_PROGRAM_MAX_ITEM bytes or more never
 * take programs (measured: 28- and 32-byte items reversed, 0.84-0.95x). */
#define PF_PROGRAM_MIN_BYTES 32
#define PF_PROGRAM_MAX_ITEM 16
/* A program for a smaller block than the offset table would take moves at
 * least this many items per run (see choose_kernel). */
#define PF_PROGRAM_MIN_ITEMS_OVER_TABLE 48
/* Pieces of rows (gathers, reversed runs) go by programs only for items of
 * up to 4 bytes, and (but for bytes) runs of PF_ROW_PROGRAM_MIN_BYTES or
 * more; item moves are faster otherwise (measured, 8 MB, steps -4 to 5,
 * rows of 8 to 100 items: 8- and 12-byte items 1.3 to 5x faster by moves,
 * 5- and 6-byte items 1.1x on average; 2- to 4-byte items 1.1 to 2x faster
 * by moves on 40-item rows, 1.1 to 1.3x slower on 100-item rows). */
#define PF_ROW_PROGRAM_MAX_ITEM 4
#define PF_ROW_PROGRAM_MIN_BYTES 192

/* The byte-permute program of a plan's row kernel (micro_x86.c), for
 * items at offsets off[0..items) (bytes, from the first): 1 if built.  At
 * the SIMD level in force: VBMI permutes, or AVX2-level byte shuffles. */
int pf_build_program(pf_plan *p, const int64_t *off, int64_t items);

/* Runs a plan's program `groups` times, the n-th from s + n*s_step to
 * d + n*d_step; NULL where the build has none (x86-64 only). */
typedef void (*pf_program_fn2)(const pf_plan *p, char *d, const char *s,
                               int64_t groups, int64_t s_step, int64_t d_step);
pf_program_fn2 pf_program_runner(const pf_plan *p);

/* Zero-step rows of 1-byte items at least this long are written by memset:
 * wider, aligned stores (measured, 4 MB of rows of 64 to 1000 bytes: 1.6 to
 * 2.7x faster than 16-byte moves; rows under 64 bytes: 15% slower). */
#define PF_MEMSET_MIN_BYTES 64

/* Item sizes whose zero-step rows store a repeated pattern (kernels.c). */
int pf_has_splat(int64_t e);

/* Converting copies.  Factors are expanded to a pattern of `period`
 * values (a multiple of the channel count, at least PF_CONVERT_LANES) plus
 * PF_CONVERT_LANES more, so that the factors of up to PF_CONVERT_LANES
 * elements starting at any index j < period are consecutive (the vector
 * loops step j once per up to 64 elements); their type is the destination's
 * compute type (float for float16 and float32, double, uint64 for the
 * integers).  NULL: no such step. */
#define PF_CONVERT_LANES 64
typedef struct {
    const void *scale;
    const void *offset;
    int64_t period;
    int64_t channels; /* factor values: pattern[i] is factor[i % channels] */
    int stream;  /* vector loops: non-temporal stores (the caller fences) */
} pf_factors;

/* Converts n contiguous source elements to n destination elements, factor
 * index j for the first; returns 1 if some float -> integer value could
 * not be converted (see convert_scalar.c), else 0. */
typedef int (*pf_convert_fn)(char *d, const char *s, int64_t n,
                             const pf_factors *f, int64_t j);

/* The portable loop for a pair, or NULL (convert_scalar.c). */
pf_convert_fn pf_convert_portable(int src_type, int dst_type);
/* A vector loop for a pair at SIMD level `simd`, or NULL (convert_x86.c);
 * *name: its instruction set. */
pf_convert_fn pf_convert_vector(int src_type, int dst_type, int simd,
                                const char **name);

/* Converts m elements of each of `planes` source planes (plane p at
 * s + p*plane_step, elements contiguous) into m*planes destination
 * elements, element i of plane p to i*planes + p; factor index j for the
 * first.  Returns as pf_convert_fn. */
typedef int (*pf_planes_fn)(char *d, const char *s, int64_t m, int64_t plane_step,
                            const pf_factors *f, int64_t j);
/* A planes loop at SIMD level `simd`, or NULL (convert_x86.c). */
pf_planes_fn pf_convert_planes(int src_type, int dst_type, int64_t planes, int simd);

/* Converts `rows` elements of each of `planes` source planes (plane p at
 * s + p*plane_step, elements contiguous) into rows x planes row-major
 * destination elements; plane p's factors are pattern value
 * p % f->channels (planes is a multiple of the channel count).  Returns as
 * pf_convert_fn. */
typedef int (*pf_wide_fn)(char *d, const char *s, int64_t rows, int64_t plane_step,
                          int64_t planes, const pf_factors *f);
/* A wide-planes loop (8 or more planes) at SIMD level `simd`, or NULL
 * (convert_x86.c). */
pf_wide_fn pf_convert_wide(int src_type, int dst_type, int64_t planes, int simd);

/* numpy's float16 conversions (round to nearest even, NaN payloads kept). */
uint16_t pf_f32_to_f16(float x);
float pf_f16_to_f32(uint16_t h);

/* The layout a plan starts from: size-1 axes dropped, axes contiguous in
 * the source merged (at least one axis); returns its ndim (plan.c).  A
 * plan's own layout may differ (short runs folded into items). */
int pf_normalise_layout(int ndim, const int64_t *shape, const int64_t *src_strides,
                        int64_t itemsize, int64_t *out_shape, int64_t *out_strides);

/* The thread count for a job of `units` units writing nbytes (plan.c). */
int pf_threads_for(int64_t nbytes, int64_t units, int num_threads);

/* Plan cache (plan_cache.c): a plan's key is its arguments and the
 * process-wide settings it was made with; layouts of more than
 * PF_PLAN_CACHE_DIMS axes are not cached. */
#define PF_PLAN_CACHE_DIMS 8
#define PF_PLAN_SETTINGS 4
typedef struct {
    int64_t ndim, itemsize, settings[PF_PLAN_SETTINGS];
    int64_t shape[PF_PLAN_CACHE_DIMS], strides[PF_PLAN_CACHE_DIMS];
} pf_plan_key;
/* 1 if the key was made (the layout is cacheable). */
int pf_plan_key_make(pf_plan_key *k, int ndim, const int64_t *shape,
                     const int64_t *src_strides, int64_t itemsize,
                     const int64_t settings[PF_PLAN_SETTINGS]);
/* 1 and the plan in *p on a hit. */
int pf_plan_cache_get(pf_plan *p, const pf_plan_key *k);
void pf_plan_cache_put(const pf_plan *p, const pf_plan_key *k);

#endif /* PYFLAT_INTERNAL_H */
