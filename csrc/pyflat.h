/* pyflat: copy a strided N-d view into C-contiguous memory.
 *
 * This header is both the C API and the cffi cdef (pyflat/_build.py reads it):
 * declarations live in one place.  Keep it within what cffi's parser accepts:
 * no macros other than integer #defines, no inline code.  Lines starting with
 * '#' other than '#define NAME <integer>' are dropped before cdef.
 */
#ifndef PYFLAT_H
#define PYFLAT_H

#include <stddef.h>
#include <stdint.h>

#define PF_MAX_DIMS 64
/* The most elements of one small block (kernel "block"). */
#define PF_BLOCK_MAX 256
/* Byte-shuffle programs (pshufb, AVX2 level): at most this many 16-byte
 * destination chunks per run, each from at most PF_SHUFFLE_WINDOWS 16-byte
 * source windows. */
#define PF_SHUFFLE_CHUNKS 16
#define PF_SHUFFLE_WINDOWS 4
/* The most threads one copy uses. */
#define PF_MAX_THREADS 256

/* Status codes; pf_strerror() turns them into text. */
typedef enum {
    PF_OK = 0,
    PF_ERR_NULL = 1,       /* a required pointer is NULL */
    PF_ERR_NDIM = 2,       /* ndim outside [0, PF_MAX_DIMS] */
    PF_ERR_SHAPE = 3,      /* a negative extent */
    PF_ERR_ITEMSIZE = 4,   /* itemsize < 1 */
    PF_ERR_OVERFLOW = 5,   /* the total size does not fit in int64 */
    PF_ERR_THREADS = 6,    /* num_threads < 0 */
    PF_ERR_NOMEM = 7,      /* the thread pool could not be set up */
    PF_ERR_RANGE = 8,      /* a float value has no integer conversion (NaN,
                              infinite, or out of the destination's range) */
    PF_ERR_TYPE = 9,       /* an element type outside pf_type, or a bool
                              destination */
    PF_ERR_FACTORS = 10    /* scale/offset lengths: 1 or the same count */
} pf_status;

/* Element types of converting copies (native byte order). */
typedef enum {
    PF_TYPE_BOOL = 0,
    PF_TYPE_INT8 = 1,
    PF_TYPE_UINT8 = 2,
    PF_TYPE_INT16 = 3,
    PF_TYPE_UINT16 = 4,
    PF_TYPE_INT32 = 5,
    PF_TYPE_UINT32 = 6,
    PF_TYPE_INT64 = 7,
    PF_TYPE_UINT64 = 8,
    PF_TYPE_FLOAT16 = 9,
    PF_TYPE_FLOAT32 = 10,
    PF_TYPE_FLOAT64 = 11
} pf_type;
#define PF_TYPE_COUNT 12

/* The innermost block kernel: what one destination row (or tile) is. */
typedef enum {
    PF_KERNEL_NONE = 0,      /* nothing to copy (zero-size) */
    PF_KERNEL_MEMCPY = 1,    /* innermost axis contiguous in source: runs of bytes */
    PF_KERNEL_GATHER = 2,    /* innermost axis at a constant step (or 0) */
    PF_KERNEL_TRANSPOSE = 3, /* another axis is more contiguous: cache-blocked tiles */
    PF_KERNEL_REVERSE = 4,   /* innermost axis contiguous, backwards */
    PF_KERNEL_BLOCK = 5      /* a small block of the innermost axes (at most
                                PF_BLOCK_MAX elements) by an offset table */
} pf_kernel;

/* Instruction set used by the transpose tiles. */
typedef enum {
    PF_SIMD_NONE = 0,   /* portable C */
    PF_SIMD_SSE2 = 1,
    PF_SIMD_AVX2 = 2,
    PF_SIMD_AVX512 = 3, /* AVX-512 BW + VBMI: byte-permute programs */
    PF_SIMD_AUTO = -1   /* for pf_force_simd: back to runtime detection */
} pf_simd;

/* A copy, planned.  Everything here is plain data so that Python can show it.
 *
 * The layout after normalisation (size-1 axes dropped, axes contiguous in
 * the source merged; the destination is C-contiguous, so its order is the
 * loop order) is ndim/shape/src_strides/dst_strides.  A plan is a loop nest
 * (an odometer over the outer axes) around one innermost block kernel:
 *
 * - memcpy, gather, reverse, block: the destination is a sequence of `rows`
 *   rows of `row_elems` elements each; a row is the last axis (memcpy,
 *   gather, reverse) or the axes block_axis.. (block: an offset table).
 *   rows_axis is the last axis of the row space (-1 if none); a unit is
 *   `row_chunk` consecutive rows, or, for rows longer than a unit, a piece
 *   of `col_chunk` elements of one row.
 * - transpose: a 2-d tiled copy of rows_axis (the axis with the smallest
 *   source stride) x cols_axis (the last axis); a unit is a chunk of
 *   row_chunk x col_chunk elements for one index of the other axes.  Or,
 *   with block_axis > rows_axis, of rows_axis x the row_elems "planes"
 *   (the elements of axes block_axis.., through an offset table built for
 *   each run); a unit is one tile, for one index of the other axes.
 *   micro_rows/cols: the register block at the core of a tile, or 0.
 *
 * Threads take ranges of units.  Source and destination item sizes are
 * kept apart (they are equal today; converting copies are planned).
 */
typedef struct {
    int ndim;
    int64_t shape[PF_MAX_DIMS];
    int64_t src_strides[PF_MAX_DIMS];   /* bytes */
    int64_t dst_strides[PF_MAX_DIMS];   /* bytes, C-contiguous */
    int64_t itemsize;                   /* = dst_itemsize */
    int64_t src_itemsize;
    int64_t dst_itemsize;
    int64_t nbytes;                     /* bytes written */

    int kernel;          /* pf_kernel */
    int rows_axis;       /* see above, or -1 */
    int cols_axis;       /* the last axis */
    int block_axis;      /* block: first axis of the block; transposes:
                            first axis of the planes, or -1 */
    int64_t rows;        /* row kernels: rows in all; transpose: 0 */
    int64_t row_elems;   /* row kernels: elements per row; planes */
    int64_t row_chunk;   /* rows per unit */
    int64_t col_chunk;   /* columns per unit */
    int64_t units;       /* units of work */
    int64_t tile_rows;   /* transposes: tile size in elements; else 0 */
    int64_t tile_cols;
    int64_t micro_rows;  /* transposes: the in-register block, if any; else 0 */
    int64_t micro_cols;
    int micro_by_columns; /* 1: a tile's blocks go a column of blocks at a
                             time, 0: a row of blocks at a time */
    int simd;            /* pf_simd of the inner loop */
    int streaming;       /* 1: non-temporal stores */
    int num_threads;     /* threads that will run it */
    int source_order;    /* transposes: 1 if the outer axes run in source
                            order (smallest source stride fastest), so that
                            partly used source lines are used up while
                            cached; 0: destination order */
    int numpy_faster;    /* cost model: numpy's own copy is expected faster */
    char inner[128];     /* the inner loop, in words */
    /* A byte-permute program (AVX-512 VBMI) for the row kernel, or none:
     * program 1 moves program_rows consecutive rows (blocks) at once,
     * program 2 moves program_items items of a row at a time (gathers and
     * reversed runs).  Each 64-byte destination chunk is the OR of up to
     * two 128-byte source windows permuted; loads and stores are masked to
     * the bytes used, so nothing outside the view is touched. */
    int program;         /* 0 none, 1 rows of blocks, 2 pieces of rows */
    int64_t program_items;
    int64_t program_rows;
    int program_chunks;
    int program_windows[4];
    int64_t program_base[4][2];      /* window start, from the first item */
    uint64_t program_lanes[4][2];    /* destination bytes from the window */
    uint64_t program_load[4][2][2];  /* bytes read of the window's halves */
    uint64_t program_store[4];       /* bytes stored of the chunk */
    int64_t program_dst[4];          /* chunk start in the destination */
    uint8_t program_index[4][2][64]; /* vpermt2b indices */
    /* ... or, where the CPU has AVX2 but not VBMI (program_shuffle 1), each
     * 16-byte destination chunk (the last one overlapping the one before)
     * is the OR of up to PF_SHUFFLE_WINDOWS 16-byte source windows through
     * pshufb; the windows lie between the run's lowest and highest source
     * byte, inside the view's memory. */
    int program_shuffle;
    int shuffle_windows[PF_SHUFFLE_CHUNKS];
    int64_t shuffle_base[PF_SHUFFLE_CHUNKS][PF_SHUFFLE_WINDOWS];
    uint8_t shuffle_index[PF_SHUFFLE_CHUNKS][PF_SHUFFLE_WINDOWS][16];
    int64_t block_offsets[256];  /* block: source byte offset of element j
                                    of a block (PF_BLOCK_MAX of them) */
    /* Block rows: while copying a row, the source lines of the row
     * prefetch_rows ahead are asked for (0: none), prefetch_lines of them
     * at these offsets from its start (PF_PREFETCH_LINES_MAX at most).
     * Tiles of planes by item moves or by rows of register blocks: each
     * plane's line prefetch_rows rows ahead, once per line of rows. */
    int64_t prefetch_rows;
    int64_t prefetch_lines;
    int64_t prefetch_offsets[64];
} pf_plan;

/* Plan a copy of the view (shape, src_strides in bytes, itemsize) into a
 * C-contiguous destination.  num_threads: 0 means the library default. */
int pf_plan_make(pf_plan *plan, int ndim, const int64_t *shape,
                 const int64_t *src_strides, int64_t itemsize, int num_threads);

/* Run a plan.  src points at the view's first element, dst at plan->nbytes
 * writable bytes that do not overlap the source. */
int pf_plan_execute(const pf_plan *plan, const char *src, char *dst);

/* pf_plan_make + pf_plan_execute. */
int pf_copy(const char *src, char *dst, int ndim, const int64_t *shape,
            const int64_t *src_strides, int64_t itemsize, int num_threads);

/* A converting copy: dst (C order, dst_type) = view (src_type) converted,
 * then times scale, then plus offset, each step in the destination type
 * with numpy's rounding (see csrc/convert.c).  scale / offset: NULL, or
 * arrays of the destination type of scale_len / offset_len values, each 1
 * (one factor for all) or C: the factor of destination element k is
 * factor[k % C].  Returns PF_ERR_RANGE, with dst partly written, when a
 * float -> integer conversion meets a value it cannot convert. */
int pf_convert_copy(const char *src, char *dst, int ndim, const int64_t *shape,
                    const int64_t *src_strides, int src_type, int dst_type,
                    const void *scale, int64_t scale_len,
                    const void *offset, int64_t offset_len, int num_threads);

/* Whether pf_convert_copy converts src_type -> dst_type. */
int pf_convert_supported(int src_type, int dst_type);

/* The conversion loop's instruction set at the SIMD level in force (static
 * storage), e.g. "avx2", "avx2+f16c", "portable". */
const char *pf_convert_loop_name(int src_type, int dst_type);

/* Bytes of one element of a pf_type, or 0. */
int64_t pf_type_size(int type);

/* Text for a status code (static storage). */
const char *pf_strerror(int status);

/* Name of a pf_kernel / pf_simd value (static storage). */
const char *pf_kernel_name(int kernel);
const char *pf_simd_name(int simd);

/* Library default thread count (0 or less: reset to the CPUs available). */
void pf_set_default_threads(int num_threads);
int pf_get_default_threads(void);

/* Worker threads now alive, and stopping them (they restart on demand). */
int pf_pool_size(void);
void pf_pool_shutdown(void);

/* Test switches, process-wide: force a SIMD level (PF_SIMD_AUTO to undo;
 * a level the CPU lacks is clamped to what it has), streaming stores
 * (-1 auto, 0 off, 1 on), and the bytes of output each thread needs at least
 * before several are used (-1 auto).  Each returns the previous setting. */
int pf_force_simd(int simd);
int pf_force_streaming(int streaming);
int64_t pf_force_min_bytes_per_thread(int64_t nbytes);

#endif /* PYFLAT_H */
