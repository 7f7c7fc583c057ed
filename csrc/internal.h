/* Declarations shared by the C files, not part of the API, and the tuning
 * constants in one place. */
#ifndef PYFLAT_INTERNAL_H
#define PYFLAT_INTERNAL_H

#include "pyflat.h"

/* Work is cut into units of about this many bytes: small enough for threads
 * to balance, large enough that per-unit overhead vanishes. */
#define PF_UNIT_BYTES ((int64_t)256 * 1024)

/* Below this many bytes per thread, starting threads costs more than it
 * saves (measured: see bench/RESULTS.md). */
#define PF_MIN_BYTES_PER_THREAD ((int64_t)1 << 20)

#define PF_MAX_THREADS 256

/* Transpose tiles: edge in elements, and the SIMD level available for a
 * tile whose source rows have the given stride (PF_SIMD_NONE if none). */
int64_t pf_tile_edge(int64_t itemsize);
int pf_tile_simd(int64_t itemsize, int64_t src_row_stride);

/* A tile with contiguous source rows, in-register transposed:
 * dst[i*dst_row + j*e] = src[i*e + j*src_col] for i < rows, j < cols. */
typedef void (*pf_tile_fn)(char *dst, const char *src, int64_t rows,
                           int64_t cols, int64_t dst_row, int64_t src_col);
pf_tile_fn pf_simd_tile(int simd, int64_t itemsize);

/* 1: write the output with non-temporal stores. */
int pf_use_streaming(int64_t nbytes);

/* Run units [begin, end) of a plan on the calling thread. */
void pf_run_units(const pf_plan *p, const char *src, char *dst,
                  int64_t begin, int64_t end);

/* Run all units of a plan on p->num_threads threads (the caller included). */
int pf_pool_run(const pf_plan *p, const char *src, char *dst);

#endif /* PYFLAT_INTERNAL_H */
