/* x86-64 vector conversion loops for the pairs data pipelines use: the
 * small integers and float64 to float32, the small integers and float32 to
 * float64, float32 <-> float16 (F16C), with the optional multiply and add in
 * the destination type.  Each has the portable loop's exact results
 * (convert_scalar.c):
 * - integer -> float conversions round as the scalar casts do (MXCSR's
 *   round to nearest even; Python never changes it), and the products and
 *   sums are the same IEEE operations, not fused;
 * - F16C rounds float32 -> float16 to nearest even as numpy does, but
 *   quiets signalling NaNs where numpy keeps them: vectors holding a NaN go
 *   to the portable loop (rare: NaN-free data never pays for it).
 * Compiled with target attributes, called after the runtime CPU check.
 */
#include "internal.h"

#include <stdatomic.h>
#include <string.h>

#if defined(__x86_64__)

#include <cpuid.h>
#include <immintrin.h>

#define AVX2 __attribute__((target("avx2,f16c")))

/* ---- loads: 8 source elements as float32, 4 as float64 ---- */

AVX2 static inline __m256 u8x8_f32(const char *p)
{
    return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)p)));
}
AVX2 static inline __m256 i8x8_f32(const char *p)
{
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)p)));
}
AVX2 static inline __m256 u16x8_f32(const char *p)
{
    return _mm256_cvtepi32_ps(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(const void *)p)));
}
AVX2 static inline __m256 i16x8_f32(const char *p)
{
    return _mm256_cvtepi32_ps(_mm256_cvtepi16_epi32(_mm_loadu_si128((const __m128i *)(const void *)p)));
}
AVX2 static inline __m256 i32x8_f32(const char *p)
{
    return _mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i *)(const void *)p));
}
AVX2 static inline __m256 f64x8_f32(const char *p)
{
    const double *q = (const double *)(const void *)p;
    return _mm256_set_m128(_mm256_cvtpd_ps(_mm256_loadu_pd(q + 4)),
                           _mm256_cvtpd_ps(_mm256_loadu_pd(q)));
}
AVX2 static inline __m256 f16x8_f32(const char *p)
{
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)p));
}
AVX2 static inline __m256 f32x8_f32(const char *p)
{
    return _mm256_loadu_ps((const float *)(const void *)p);
}

static inline __m128i low32(const char *p)
{
    int32_t w;
    memcpy(&w, p, 4);
    return _mm_cvtsi32_si128(w);
}
AVX2 static inline __m256d u8x4_f64(const char *p)
{
    return _mm256_cvtepi32_pd(_mm_cvtepu8_epi32(low32(p)));
}
AVX2 static inline __m256d i8x4_f64(const char *p)
{
    return _mm256_cvtepi32_pd(_mm_cvtepi8_epi32(low32(p)));
}
AVX2 static inline __m256d u16x4_f64(const char *p)
{
    return _mm256_cvtepi32_pd(_mm_cvtepu16_epi32(_mm_loadl_epi64((const __m128i *)(const void *)p)));
}
AVX2 static inline __m256d i16x4_f64(const char *p)
{
    return _mm256_cvtepi32_pd(_mm_cvtepi16_epi32(_mm_loadl_epi64((const __m128i *)(const void *)p)));
}
AVX2 static inline __m256d i32x4_f64(const char *p)
{
    return _mm256_cvtepi32_pd(_mm_loadu_si128((const __m128i *)(const void *)p));
}
AVX2 static inline __m256d f32x4_f64(const char *p)
{
    return _mm256_cvtps_pd(_mm_loadu_ps((const float *)(const void *)p));
}

AVX2 static inline int has_nan(__m256 v)
{
    return _mm256_movemask_ps(_mm256_cmp_ps(v, v, _CMP_UNORD_Q)) != 0;
}

/* Rounds float32 lanes to float16 (nearest even). */
#define TO_F16(v) _mm256_cvtps_ph((v), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)

/* ---- loops ---- */

/* Streaming stores need aligned vectors: the first elements up to the
 * next `align`-byte boundary go through the portable loop.  Returns them. */
static int64_t stream_head(char *d, const char *s, int64_t n, const pf_factors *f,
                           int64_t *j, int64_t e, int64_t align, pf_convert_fn portable,
                           int *bad)
{
    if (!f->stream)
        return 0;
    int64_t head = (int64_t)((align - (uintptr_t)d % (uintptr_t)align) % (uintptr_t)align) / e;
    if (head > n)
        head = n;
    *bad |= portable(d, s, head, f, *j);
    *j += head;
    if (*j >= f->period)
        *j -= f->period;
    return head;
}

/* j + by, wrapped into [0, period) (by < period). */
static inline int64_t advance(int64_t j, int64_t by, int64_t period)
{
    j += by;
    return j >= period ? j - period : j;
}

/* One float32 result vector: NaN lanes (NAN_CHECK: the load may quiet
 * them, F16C) go to the portable loop; factors at j; then the store. */
#define F32_VECTOR(LOAD, NAN_CHECK, SRC_AT, OUT_AT, JQ)                                               \
    do {                                                                             \
        __m256 v = LOAD(SRC_AT);                                                     \
        if (NAN_CHECK && has_nan(v)) {                                               \
            portable(OUT_AT, SRC_AT, 8, f, (JQ));                                    \
            break;                                                                   \
        }                                                                            \
        if (fs)                                                                      \
            v = _mm256_mul_ps(v, _mm256_loadu_ps(fs + (JQ)));                        \
        if (fo)                                                                      \
            v = _mm256_add_ps(v, _mm256_loadu_ps(fo + (JQ)));                        \
        if (f->stream)                                                               \
            _mm256_stream_ps((float *)(void *)(OUT_AT), v);                          \
        else                                                                         \
            _mm256_storeu_ps((float *)(void *)(OUT_AT), v);                          \
    } while (0)

/* float32 results, four vectors per step (one wrap of the factor index). */
#define LOOP_F32(NAME, SRC, ES, LOAD, NAN_CHECK)                                   \
    AVX2 static int NAME(char *d, const char *s, int64_t n, const pf_factors *f,     \
                         int64_t j)                                                  \
    {                                                                                \
        const pf_convert_fn portable = pf_convert_portable(SRC, PF_TYPE_FLOAT32);     \
        const float *fs = f->scale, *fo = f->offset;                                 \
        int bad = 0;                                                                 \
        int64_t i = stream_head(d, s, n, f, &j, 4, 32, portable, &bad);              \
        for (; i + 32 <= n; i += 32) {                                               \
            for (int q = 0; q < 4; q++)                                              \
                F32_VECTOR(LOAD, NAN_CHECK, s + (i + 8 * q) * ES, d + 4 * (i + 8 * q),                \
                           advance(j, 8 * q, f->period));                            \
            j = advance(j, 32, f->period);                                           \
        }                                                                            \
        for (; i + 8 <= n; i += 8) {                                                 \
            F32_VECTOR(LOAD, NAN_CHECK, s + i * ES, d + 4 * i, j);                                    \
            j = advance(j, 8, f->period);                                            \
        }                                                                            \
        return bad | portable(d + 4 * i, s + i * ES, n - i, f, j);                   \
    }

#define F64_VECTOR(LOAD, SRC_AT, OUT_AT, JQ)                                               \
    do {                                                                             \
        __m256d v = LOAD(SRC_AT);                                                    \
        if (fs)                                                                      \
            v = _mm256_mul_pd(v, _mm256_loadu_pd(fs + (JQ)));                        \
        if (fo)                                                                      \
            v = _mm256_add_pd(v, _mm256_loadu_pd(fo + (JQ)));                        \
        if (f->stream)                                                               \
            _mm256_stream_pd((double *)(void *)(OUT_AT), v);                         \
        else                                                                         \
            _mm256_storeu_pd((double *)(void *)(OUT_AT), v);                         \
    } while (0)

#define LOOP_F64(NAME, SRC, ES, LOAD)                                                \
    AVX2 static int NAME(char *d, const char *s, int64_t n, const pf_factors *f,     \
                         int64_t j)                                                  \
    {                                                                                \
        const pf_convert_fn portable = pf_convert_portable(SRC, PF_TYPE_FLOAT64);     \
        const double *fs = f->scale, *fo = f->offset;                                \
        int bad = 0;                                                                 \
        int64_t i = stream_head(d, s, n, f, &j, 8, 32, portable, &bad);              \
        for (; i + 16 <= n; i += 16) {                                               \
            for (int q = 0; q < 4; q++)                                              \
                F64_VECTOR(LOAD, s + (i + 4 * q) * ES, d + 8 * (i + 4 * q), j + 4 * q);    \
            j = advance(j, 16, f->period);                                           \
        }                                                                            \
        for (; i + 4 <= n; i += 4) {                                                 \
            F64_VECTOR(LOAD, s + i * ES, d + 8 * i, j);                                    \
            j = advance(j, 4, f->period);                                            \
        }                                                                            \
        return bad | portable(d + 8 * i, s + i * ES, n - i, f, j);                   \
    }

LOOP_F32(u8_f32, PF_TYPE_UINT8, 1, u8x8_f32, 0)
LOOP_F32(i8_f32, PF_TYPE_INT8, 1, i8x8_f32, 0)
LOOP_F32(u16_f32, PF_TYPE_UINT16, 2, u16x8_f32, 0)
LOOP_F32(i16_f32, PF_TYPE_INT16, 2, i16x8_f32, 0)
LOOP_F32(i32_f32, PF_TYPE_INT32, 4, i32x8_f32, 0)
LOOP_F32(f64_f32, PF_TYPE_FLOAT64, 8, f64x8_f32, 0)
LOOP_F32(f16_f32, PF_TYPE_FLOAT16, 2, f16x8_f32, 1)
LOOP_F32(f32_f32, PF_TYPE_FLOAT32, 4, f32x8_f32, 0)

LOOP_F64(u8_f64, PF_TYPE_UINT8, 1, u8x4_f64)
LOOP_F64(i8_f64, PF_TYPE_INT8, 1, i8x4_f64)
LOOP_F64(u16_f64, PF_TYPE_UINT16, 2, u16x4_f64)
LOOP_F64(i16_f64, PF_TYPE_INT16, 2, i16x4_f64)
LOOP_F64(i32_f64, PF_TYPE_INT32, 4, i32x4_f64)
LOOP_F64(f32_f64, PF_TYPE_FLOAT32, 4, f32x4_f64)

/* float32 -> float16, each step rounded to float16 as numpy's half ufuncs
 * do (float32 arithmetic, rounded back). */
AVX2 static int f32_f16(char *d, const char *s, int64_t n, const pf_factors *f, int64_t j)
{
    const pf_convert_fn portable = pf_convert_portable(PF_TYPE_FLOAT32, PF_TYPE_FLOAT16);
    const float *fs = f->scale, *fo = f->offset;
    int bad = 0;
    int64_t i = stream_head(d, s, n, f, &j, 2, 16, portable, &bad);
    for (; i + 8 <= n; i += 8) {
        const __m256 v = f32x8_f32(s + 4 * i);
        if (has_nan(v)) {
            portable(d + 2 * i, s + 4 * i, 8, f, j);
        } else {
            __m128i h = TO_F16(v);
            if (fs)
                h = TO_F16(_mm256_mul_ps(_mm256_cvtph_ps(h), _mm256_loadu_ps(fs + j)));
            if (fo)
                h = TO_F16(_mm256_add_ps(_mm256_cvtph_ps(h), _mm256_loadu_ps(fo + j)));
            if (f->stream)
                _mm_stream_si128((__m128i *)(void *)(d + 2 * i), h);
            else
                _mm_storeu_si128((__m128i *)(void *)(d + 2 * i), h);
        }
        j += 8;
        if (j >= f->period)
            j -= f->period;
    }
    return bad | portable(d + 2 * i, s + 4 * i, n - i, f, j);
}

/* Pixels of P float32 to convert one by one before d + 4*P*i is `align`
 * aligned, so that the vector loop can stream; -1 if no i < 16 does. */
static int64_t planes_head(const char *d, int64_t P, int64_t align)
{
    for (int64_t i = 0; i < 16; i++)
        if ((uintptr_t)(d + 4 * P * i) % (uintptr_t)align == 0)
            return i;
    return -1;
}

/* Converts pixels [i, end) one element at a time. */
static int planes_portable(pf_convert_fn portable, char *d, const char *s, int64_t i,
                           int64_t end, int64_t P, int64_t ES, int64_t plane_step,
                           const pf_factors *f, int64_t *j)
{
    int bad = 0;
    for (; i < end; i++) {
        for (int64_t p = 0; p < P; p++) {
            bad |= portable(d + 4 * (i * P + p), s + p * plane_step + i * ES, 1, f, *j);
            if (++*j == f->period)
                *j = 0;
        }
    }
    return bad;
}

/* ---- planes: P strided source planes interleaved into float32 ----
 *
 * Channels-first pixels (and stereo frames): element i of plane p goes to
 * destination element i*P + p.  Eight elements of each plane are loaded
 * and converted, then interleaved in registers: lane L of output vector k
 * is element (8k+L)/P of plane (8k+L)%P, a lane permute of every plane
 * and blends.  One pass, no scratch.
 */
AVX2 static inline void interleave(int P, const __m256 *v, __m256 *o)
{
    for (int k = 0; k < P; k++) {
        const int q = 8 * k;
        const __m256i idx = _mm256_setr_epi32(q / P, (q + 1) / P, (q + 2) / P, (q + 3) / P,
                                              (q + 4) / P, (q + 5) / P, (q + 6) / P, (q + 7) / P);
        __m256 acc = _mm256_permutevar8x32_ps(v[0], idx);
        for (int p = 1; p < P; p++) {
#define LANE(L) ((q + (L)) % P == p ? -1 : 0)
            const __m256i mask = _mm256_setr_epi32(LANE(0), LANE(1), LANE(2), LANE(3), LANE(4),
                                                   LANE(5), LANE(6), LANE(7));
#undef LANE
            acc = _mm256_blendv_ps(acc, _mm256_permutevar8x32_ps(v[p], idx),
                                   _mm256_castsi256_ps(mask));
        }
        o[k] = acc;
    }
}

#define LOOP_PLANES(NAME, SRC, ES, LOAD, P)                                          \
    AVX2 static int NAME(char *d, const char *s, int64_t m, int64_t plane_step,       \
                         const pf_factors *f, int64_t j)                              \
    {                                                                                \
        const pf_convert_fn portable = pf_convert_portable(SRC, PF_TYPE_FLOAT32);     \
        const float *fs = f->scale, *fo = f->offset;                                 \
        const int64_t head = f->stream ? planes_head(d, P, 32) : -1;                 \
        const int stream = head >= 0 && head <= m;                                   \
        int64_t i = stream ? head : 0;                                               \
        int bad = planes_portable(portable, d, s, 0, i, P, ES, plane_step, f, &j);   \
        for (; i + 8 <= m; i += 8) {                                                 \
            __m256 v[P], o[P];                                                       \
            for (int p = 0; p < P; p++)                                              \
                v[p] = LOAD(s + p * plane_step + i * ES);                            \
            interleave(P, v, o);                                                     \
            for (int q = 0; q < P; q++) { /* factors j .. j+8P-1: in the pattern */ \
                __m256 x = o[q];                                                     \
                if (fs)                                                              \
                    x = _mm256_mul_ps(x, _mm256_loadu_ps(fs + j + 8 * q));           \
                if (fo)                                                              \
                    x = _mm256_add_ps(x, _mm256_loadu_ps(fo + j + 8 * q));           \
                float *out = (float *)(void *)(d + 4 * (i * P + 8 * q));             \
                if (stream)                                                          \
                    _mm256_stream_ps(out, x);                                        \
                else                                                                 \
                    _mm256_storeu_ps(out, x);                                        \
            }                                                                        \
            j = advance(j, 8 * P, f->period);                                        \
        }                                                                            \
        return bad | planes_portable(portable, d, s, i, m, P, ES, plane_step, f, &j); \
    }

#define PLANES_FROM(S, SRC, ES)                                                      \
    LOOP_PLANES(S##_f32_planes2, SRC, ES, S##x8_f32, 2)                              \
    LOOP_PLANES(S##_f32_planes3, SRC, ES, S##x8_f32, 3)                              \
    LOOP_PLANES(S##_f32_planes4, SRC, ES, S##x8_f32, 4)

PLANES_FROM(u8, PF_TYPE_UINT8, 1)
PLANES_FROM(i8, PF_TYPE_INT8, 1)
PLANES_FROM(u16, PF_TYPE_UINT16, 2)
PLANES_FROM(i16, PF_TYPE_INT16, 2)
PLANES_FROM(i32, PF_TYPE_INT32, 4)
PLANES_FROM(f32, PF_TYPE_FLOAT32, 4)
PLANES_FROM(f64, PF_TYPE_FLOAT64, 8)

#define PLANES_CASE(TYPE, S)                                                         \
    case TYPE:                                                                       \
        return planes == 2 ? S##_f32_planes2 : planes == 3 ? S##_f32_planes3 : S##_f32_planes4;



/* ---- wide planes: 8 or more strided planes into float32 rows ----
 *
 * Fortran-ordered tables: destination row i holds element i of each of P
 * planes (columns).  A block of PF_WIDE_ROWS rows at a time: for each group
 * of eight planes (the last group overlaps the one before: the same values
 * again), eight rows of each are loaded and converted, an 8x8 transpose in
 * registers turns them into eight row pieces, stored into a block buffer
 * in L1; the finished block is copied out (streamed).  Reads and writes
 * interleave finely, as in the contiguous loops: measured (float64 Fortran
 * table 500000 x 20 to float32, one thread), blocks of 8 rows 5.0-5.4 ms,
 * 16 rows 4.8-5.1 ms, 32 rows 5.4-5.6 ms, 64 rows 6.5-7.5 ms, 256 rows
 * 7.3-7.5 ms; planar chunks (convert.c) 6.8-7.3 ms.
 */
#define PF_WIDE_ROWS 16
#define PF_WIDE_MAX_PLANES 128

AVX2 static inline void transpose8(__m256 *r)
{
    const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
    r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
    r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
    r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
    r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
    r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
    r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
    r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

#define LOOP_WIDE(NAME, SRC, ES, LOAD)                                               \
    AVX2 static int NAME(char *d, const char *s, int64_t rows, int64_t plane_step,    \
                         int64_t P, const pf_factors *f)                              \
    {                                                                                \
        const pf_convert_fn portable = pf_convert_portable(SRC, PF_TYPE_FLOAT32);     \
        const float *fs = f->scale, *fo = f->offset;                                 \
        _Alignas(64) float block[PF_WIDE_ROWS * PF_WIDE_MAX_PLANES];                 \
        int bad = 0;                                                                 \
        for (int64_t r0 = 0; r0 < rows; r0 += PF_WIDE_ROWS) {                        \
            const int64_t n = rows - r0 < PF_WIDE_ROWS ? rows - r0 : PF_WIDE_ROWS;    \
            const int64_t vec_rows = n / 8 * 8;                                      \
            for (int64_t p0 = 0;; p0 += 8) {                                         \
                if (p0 > P - 8)                                                      \
                    p0 = P - 8;                                                      \
                const char *sp = s + p0 * plane_step + r0 * ES;                      \
                const int64_t jf = p0 % f->channels;                                 \
                for (int64_t i = 0; i < vec_rows; i += 8) {                          \
                    __m256 v[8];                                                     \
                    for (int q = 0; q < 8; q++)                                      \
                        v[q] = LOAD(sp + q * plane_step + i * ES);                   \
                    transpose8(v);                                                   \
                    for (int q = 0; q < 8; q++) {                                    \
                        if (fs)                                                      \
                            v[q] = _mm256_mul_ps(v[q], _mm256_loadu_ps(fs + jf));    \
                        if (fo)                                                      \
                            v[q] = _mm256_add_ps(v[q], _mm256_loadu_ps(fo + jf));    \
                        _mm256_storeu_ps(block + (i + q) * P + p0, v[q]);            \
                    }                                                                \
                }                                                                    \
                if (p0 == P - 8)                                                     \
                    break;                                                           \
            }                                                                        \
            for (int64_t i = vec_rows; i < n; i++)                                   \
                for (int64_t p = 0; p < P; p++)                                      \
                    bad |= portable((char *)(block + i * P + p),                     \
                                    s + p * plane_step + (r0 + i) * ES, 1, f, p % f->channels); \
            char *out = d + 4 * r0 * P;                                              \
            if (f->stream)                                                           \
                pf_stream_copy(out, (const char *)block, 4 * n * P);                 \
            else                                                                     \
                memcpy(out, block, (size_t)(4 * n * P));                             \
        }                                                                            \
        return bad;                                                                  \
    }

LOOP_WIDE(u8_f32_wide, PF_TYPE_UINT8, 1, u8x8_f32)
LOOP_WIDE(i8_f32_wide, PF_TYPE_INT8, 1, i8x8_f32)
LOOP_WIDE(u16_f32_wide, PF_TYPE_UINT16, 2, u16x8_f32)
LOOP_WIDE(i16_f32_wide, PF_TYPE_INT16, 2, i16x8_f32)
LOOP_WIDE(i32_f32_wide, PF_TYPE_INT32, 4, i32x8_f32)
LOOP_WIDE(f32_f32_wide, PF_TYPE_FLOAT32, 4, f32x8_f32)
LOOP_WIDE(f64_f32_wide, PF_TYPE_FLOAT64, 8, f64x8_f32)

/* ---- AVX-512: the float32 results, sixteen lanes ----
 *
 * The same loops at twice the width, for CPUs at PF_SIMD_AVX512: half the
 * instructions per element, which the channels-first planes need to keep
 * up with memory (measured below AVX-512: 4-7 G elements/s in cache).
 */
#define AVX512 __attribute__((target("avx512f,avx2,f16c")))

AVX512 static inline __m512 u8x16_f32(const char *p)
{
    return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(const void *)p)));
}
AVX512 static inline __m512 i8x16_f32(const char *p)
{
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(const void *)p)));
}
AVX512 static inline __m512 u16x16_f32(const char *p)
{
    return _mm512_cvtepi32_ps(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(const void *)p)));
}
AVX512 static inline __m512 i16x16_f32(const char *p)
{
    return _mm512_cvtepi32_ps(_mm512_cvtepi16_epi32(_mm256_loadu_si256((const __m256i *)(const void *)p)));
}
AVX512 static inline __m512 i32x16_f32(const char *p)
{
    return _mm512_cvtepi32_ps(_mm512_loadu_si512(p));
}
AVX512 static inline __m512 f64x16_f32(const char *p)
{
    const double *q = (const double *)(const void *)p;
    const __m256 lo = _mm512_cvtpd_ps(_mm512_loadu_pd(q));
    const __m256 hi = _mm512_cvtpd_ps(_mm512_loadu_pd(q + 8));
    return _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castps_pd(_mm512_castps256_ps512(lo)),
                                               _mm256_castps_pd(hi), 1));
}
AVX512 static inline __m512 f16x16_f32(const char *p)
{
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)p));
}
AVX512 static inline __m512 f32x16_f32(const char *p)
{
    return _mm512_loadu_ps((const float *)(const void *)p);
}

AVX512 static inline int has_nan16(__m512 v)
{
    return _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q) != 0;
}

#define F32X16_VECTOR(LOAD, NAN_CHECK, SRC_AT, OUT_AT, JQ)                            \
    do {                                                                             \
        __m512 v = LOAD(SRC_AT);                                                     \
        if (NAN_CHECK && has_nan16(v)) {                                             \
            portable(OUT_AT, SRC_AT, 16, f, (JQ));                                   \
            break;                                                                   \
        }                                                                            \
        if (fs)                                                                      \
            v = _mm512_mul_ps(v, _mm512_loadu_ps(fs + (JQ)));                        \
        if (fo)                                                                      \
            v = _mm512_add_ps(v, _mm512_loadu_ps(fo + (JQ)));                        \
        if (f->stream)                                                               \
            _mm512_stream_ps((float *)(void *)(OUT_AT), v);                          \
        else                                                                         \
            _mm512_storeu_ps((float *)(void *)(OUT_AT), v);                          \
    } while (0)

#define LOOP_F32X16(NAME, SRC, ES, LOAD, NAN_CHECK)                                 \
    AVX512 static int NAME(char *d, const char *s, int64_t n, const pf_factors *f,   \
                           int64_t j)                                                \
    {                                                                                \
        const pf_convert_fn portable = pf_convert_portable(SRC, PF_TYPE_FLOAT32);     \
        const float *fs = f->scale, *fo = f->offset;                                 \
        int bad = 0;                                                                 \
        int64_t i = stream_head(d, s, n, f, &j, 4, 64, portable, &bad);              \
        for (; i + 64 <= n; i += 64) {                                               \
            for (int q = 0; q < 4; q++)                                              \
                F32X16_VECTOR(LOAD, NAN_CHECK, s + (i + 16 * q) * ES,                \
                              d + 4 * (i + 16 * q), advance(j, 16 * q, f->period));  \
            j = advance(j, 64, f->period);                                           \
        }                                                                            \
        for (; i + 16 <= n; i += 16) {                                               \
            F32X16_VECTOR(LOAD, NAN_CHECK, s + i * ES, d + 4 * i, j);                \
            j = advance(j, 16, f->period);                                           \
        }                                                                            \
        return bad | portable(d + 4 * i, s + i * ES, n - i, f, j);                   \
    }

LOOP_F32X16(u8_f32x16, PF_TYPE_UINT8, 1, u8x16_f32, 0)
LOOP_F32X16(i8_f32x16, PF_TYPE_INT8, 1, i8x16_f32, 0)
LOOP_F32X16(u16_f32x16, PF_TYPE_UINT16, 2, u16x16_f32, 0)
LOOP_F32X16(i16_f32x16, PF_TYPE_INT16, 2, i16x16_f32, 0)
LOOP_F32X16(i32_f32x16, PF_TYPE_INT32, 4, i32x16_f32, 0)
LOOP_F32X16(f64_f32x16, PF_TYPE_FLOAT64, 8, f64x16_f32, 0)
LOOP_F32X16(f16_f32x16, PF_TYPE_FLOAT16, 2, f16x16_f32, 1)
LOOP_F32X16(f32_f32x16, PF_TYPE_FLOAT32, 4, f32x16_f32, 0)

/* Planes, sixteen pixels a step: output vector k, lane L is element
 * (16k+L)/P of plane (16k+L)%P: a permute of plane 0, then masked permutes
 * of the others, with indices and masks made once. */
#define LOOP_PLANES16(NAME, SRC, ES, LOAD, P)                                        \
    AVX512 static int NAME(char *d, const char *s, int64_t m, int64_t plane_step,     \
                           const pf_factors *f, int64_t j)                            \
    {                                                                                \
        const pf_convert_fn portable = pf_convert_portable(SRC, PF_TYPE_FLOAT32);     \
        const float *fs = f->scale, *fo = f->offset;                                 \
        const int64_t head = f->stream ? planes_head(d, P, 64) : -1;                 \
        const int stream = head >= 0 && head <= m;                                   \
        __m512i idx[P];                                                              \
        __mmask16 mask[P][P];                                                        \
        for (int k = 0; k < P; k++) {                                                \
            int32_t lanes[16];                                                       \
            for (int p = 0; p < P; p++)                                              \
                mask[k][p] = 0;                                                      \
            for (int L = 0; L < 16; L++) {                                           \
                lanes[L] = (16 * k + L) / P;                                         \
                mask[k][(16 * k + L) % P] |= (__mmask16)(1u << L);                   \
            }                                                                        \
            idx[k] = _mm512_loadu_si512(lanes);                                      \
        }                                                                            \
        int64_t i = stream ? head : 0;                                               \
        int bad = planes_portable(portable, d, s, 0, i, P, ES, plane_step, f, &j);   \
        for (; i + 16 <= m; i += 16) {                                               \
            __m512 v[P];                                                             \
            for (int p = 0; p < P; p++)                                              \
                v[p] = LOAD(s + p * plane_step + i * ES);                            \
            for (int k = 0; k < P; k++) { /* factors j .. j+16P-1: in the pattern */ \
                __m512 x = _mm512_permutexvar_ps(idx[k], v[0]);                      \
                for (int p = 1; p < P; p++)                                          \
                    x = _mm512_mask_permutexvar_ps(x, mask[k][p], idx[k], v[p]);     \
                if (fs)                                                              \
                    x = _mm512_mul_ps(x, _mm512_loadu_ps(fs + j + 16 * k));          \
                if (fo)                                                              \
                    x = _mm512_add_ps(x, _mm512_loadu_ps(fo + j + 16 * k));          \
                float *out = (float *)(void *)(d + 4 * (i * P + 16 * k));            \
                if (stream)                                                          \
                    _mm512_stream_ps(out, x);                                        \
                else                                                                 \
                    _mm512_storeu_ps(out, x);                                        \
            }                                                                        \
            j = advance(j, 16 * P, f->period);                                       \
        }                                                                            \
        return bad | planes_portable(portable, d, s, i, m, P, ES, plane_step, f, &j); \
    }

#define PLANES16_FROM(S, SRC, ES)                                                    \
    LOOP_PLANES16(S##_f32_planes2x16, SRC, ES, S##x16_f32, 2)                        \
    LOOP_PLANES16(S##_f32_planes3x16, SRC, ES, S##x16_f32, 3)                        \
    LOOP_PLANES16(S##_f32_planes4x16, SRC, ES, S##x16_f32, 4)

PLANES16_FROM(u8, PF_TYPE_UINT8, 1)
PLANES16_FROM(i8, PF_TYPE_INT8, 1)
PLANES16_FROM(u16, PF_TYPE_UINT16, 2)
PLANES16_FROM(i16, PF_TYPE_INT16, 2)
PLANES16_FROM(i32, PF_TYPE_INT32, 4)
PLANES16_FROM(f32, PF_TYPE_FLOAT32, 4)
PLANES16_FROM(f64, PF_TYPE_FLOAT64, 8)

#define PLANES16_CASE(TYPE, S)                                                       \
    case TYPE:                                                                       \
        return planes == 2 ? S##_f32_planes2x16                                      \
               : planes == 3 ? S##_f32_planes3x16 : S##_f32_planes4x16;

static pf_convert_fn vector16_f32(int src_type)
{
    switch (src_type) {
    case PF_TYPE_UINT8: return u8_f32x16;
    case PF_TYPE_INT8: return i8_f32x16;
    case PF_TYPE_UINT16: return u16_f32x16;
    case PF_TYPE_INT16: return i16_f32x16;
    case PF_TYPE_INT32: return i32_f32x16;
    case PF_TYPE_FLOAT64: return f64_f32x16;
    case PF_TYPE_FLOAT32: return f32_f32x16;
    case PF_TYPE_FLOAT16: return f16_f32x16;
    default: return NULL;
    }
}

static pf_planes_fn planes16_f32(int src_type, int64_t planes)
{
    switch (src_type) {
    PLANES16_CASE(PF_TYPE_UINT8, u8)
    PLANES16_CASE(PF_TYPE_INT8, i8)
    PLANES16_CASE(PF_TYPE_UINT16, u16)
    PLANES16_CASE(PF_TYPE_INT16, i16)
    PLANES16_CASE(PF_TYPE_INT32, i32)
    PLANES16_CASE(PF_TYPE_FLOAT32, f32)
    PLANES16_CASE(PF_TYPE_FLOAT64, f64)
    default: return NULL;
    }
}

/* CPUID leaf 1, ECX bit 29 (older clang's __builtin_cpu_supports lacks
 * "f16c"), asked once: CPUID traps to the hypervisor in a VM (measured: 9 us
 * a call). */
static int cpu_f16c(void)
{
    static _Atomic int known = -1;
    int has = atomic_load_explicit(&known, memory_order_relaxed);
    if (has < 0) {
        unsigned a, b, c, d;
        has = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C) != 0;
        atomic_store_explicit(&known, has, memory_order_relaxed);
    }
    return has;
}

pf_convert_fn pf_convert_vector(int src_type, int dst_type, int simd, const char **name)
{
    if (simd < PF_SIMD_AVX2 || !cpu_f16c())
        return NULL;
    if (simd >= PF_SIMD_AVX512 && dst_type == PF_TYPE_FLOAT32 && vector16_f32(src_type)) {
        *name = src_type == PF_TYPE_FLOAT16 ? "avx512+f16c" : "avx512";
        return vector16_f32(src_type);
    }
    *name = "avx2";
    if (dst_type == PF_TYPE_FLOAT32) {
        switch (src_type) {
        case PF_TYPE_UINT8: return u8_f32;
        case PF_TYPE_INT8: return i8_f32;
        case PF_TYPE_UINT16: return u16_f32;
        case PF_TYPE_INT16: return i16_f32;
        case PF_TYPE_INT32: return i32_f32;
        case PF_TYPE_FLOAT64: return f64_f32;
        case PF_TYPE_FLOAT32: return f32_f32;
        case PF_TYPE_FLOAT16: *name = "avx2+f16c"; return f16_f32;
        default: return NULL;
        }
    }
    if (dst_type == PF_TYPE_FLOAT64) {
        switch (src_type) {
        case PF_TYPE_UINT8: return u8_f64;
        case PF_TYPE_INT8: return i8_f64;
        case PF_TYPE_UINT16: return u16_f64;
        case PF_TYPE_INT16: return i16_f64;
        case PF_TYPE_INT32: return i32_f64;
        case PF_TYPE_FLOAT32: return f32_f64;
        default: return NULL;
        }
    }
    if (dst_type == PF_TYPE_FLOAT16 && src_type == PF_TYPE_FLOAT32) {
        *name = "avx2+f16c";
        return f32_f16;
    }
    return NULL;
}

pf_planes_fn pf_convert_planes(int src_type, int dst_type, int64_t planes, int simd)
{
    if (simd < PF_SIMD_AVX2 || !cpu_f16c() || dst_type != PF_TYPE_FLOAT32 || planes < 2
            || planes > 4)
        return NULL;
    if (simd >= PF_SIMD_AVX512)
        return planes16_f32(src_type, planes);
    switch (src_type) {
    PLANES_CASE(PF_TYPE_UINT8, u8)
    PLANES_CASE(PF_TYPE_INT8, i8)
    PLANES_CASE(PF_TYPE_UINT16, u16)
    PLANES_CASE(PF_TYPE_INT16, i16)
    PLANES_CASE(PF_TYPE_INT32, i32)
    PLANES_CASE(PF_TYPE_FLOAT32, f32)
    PLANES_CASE(PF_TYPE_FLOAT64, f64)
    default: return NULL;
    }
}

pf_wide_fn pf_convert_wide(int src_type, int dst_type, int64_t planes, int simd)
{
    if (simd < PF_SIMD_AVX2 || !cpu_f16c() || dst_type != PF_TYPE_FLOAT32 || planes < 8
            || planes > PF_WIDE_MAX_PLANES)
        return NULL;
    switch (src_type) {
    case PF_TYPE_UINT8: return u8_f32_wide;
    case PF_TYPE_INT8: return i8_f32_wide;
    case PF_TYPE_UINT16: return u16_f32_wide;
    case PF_TYPE_INT16: return i16_f32_wide;
    case PF_TYPE_INT32: return i32_f32_wide;
    case PF_TYPE_FLOAT32: return f32_f32_wide;
    case PF_TYPE_FLOAT64: return f64_f32_wide;
    default: return NULL;
    }
}

#else /* not x86-64: the portable loops only */

pf_wide_fn pf_convert_wide(int src_type, int dst_type, int64_t planes, int simd)
{
    (void)src_type;
    (void)dst_type;
    (void)planes;
    (void)simd;
    return NULL;
}

pf_planes_fn pf_convert_planes(int src_type, int dst_type, int64_t planes, int simd)
{
    (void)src_type;
    (void)dst_type;
    (void)planes;
    (void)simd;
    return NULL;
}

pf_convert_fn pf_convert_vector(int src_type, int dst_type, int simd, const char **name)
{
    (void)src_type;
    (void)dst_type;
    (void)simd;
    (void)name;
    return NULL;
}

#endif
