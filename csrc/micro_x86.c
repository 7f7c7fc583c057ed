/* x86-64 micro-kernels: in-register transposes of one block whose source
 * rows are contiguous, dst[i*d_row + j*e] = src[i*e + j*s_col].
 *
 * SSE2 is the x86-64 baseline; AVX2 and SSSE3 kernels carry target
 * attributes and are only called after a runtime CPU check (simd.c).  All
 * loads and stores are unaligned-safe, and shuffles move bits untouched, so
 * NaN payloads and any bytes survive exactly.
 */
#include "internal.h"

#include <string.h>

#if defined(__x86_64__)

#include <immintrin.h>

#define LOADU(p) _mm_loadu_si128((const __m128i *)(const void *)(p))
#define STOREU(p, v) _mm_storeu_si128((__m128i *)(void *)(p), (v))

/* One pass of the classic unpack network: pairs of rows interleave at the
 * given width.  After log2(K) passes (widths e, 2e, ..., 8 bytes) vector i
 * holds source column bitrev(i). */
#define UNPACK_PASS(v, K, LO, HI)                                              \
    do {                                                                       \
        __m128i t_[K];                                                         \
        for (int i_ = 0; i_ < (K) / 2; i_++) {                                 \
            t_[i_] = LO(v[2 * i_], v[2 * i_ + 1]);                             \
            t_[i_ + (K) / 2] = HI(v[2 * i_], v[2 * i_ + 1]);                   \
        }                                                                      \
        for (int i_ = 0; i_ < (K); i_++)                                       \
            v[i_] = t_[i_];                                                    \
    } while (0)

static const int bitrev16[16] = {0, 8, 4, 12, 2, 10, 6, 14,
                                 1, 9, 5, 13, 3, 11, 7, 15};
static const int bitrev8[8] = {0, 4, 2, 6, 1, 5, 3, 7};
static const int bitrev4[4] = {0, 2, 1, 3};

static void sse2_16x16_e1(char *dst, const char *src, int64_t d_row,
                          int64_t s_col)
{
    __m128i v[16];
    for (int r = 0; r < 16; r++)
        v[r] = LOADU(src + r * s_col);
    UNPACK_PASS(v, 16, _mm_unpacklo_epi8, _mm_unpackhi_epi8);
    UNPACK_PASS(v, 16, _mm_unpacklo_epi16, _mm_unpackhi_epi16);
    UNPACK_PASS(v, 16, _mm_unpacklo_epi32, _mm_unpackhi_epi32);
    UNPACK_PASS(v, 16, _mm_unpacklo_epi64, _mm_unpackhi_epi64);
    for (int i = 0; i < 16; i++)
        STOREU(dst + bitrev16[i] * d_row, v[i]);
}

static void sse2_8x8_e2(char *dst, const char *src, int64_t d_row,
                        int64_t s_col)
{
    __m128i v[8];
    for (int r = 0; r < 8; r++)
        v[r] = LOADU(src + r * s_col);
    UNPACK_PASS(v, 8, _mm_unpacklo_epi16, _mm_unpackhi_epi16);
    UNPACK_PASS(v, 8, _mm_unpacklo_epi32, _mm_unpackhi_epi32);
    UNPACK_PASS(v, 8, _mm_unpacklo_epi64, _mm_unpackhi_epi64);
    for (int i = 0; i < 8; i++)
        STOREU(dst + bitrev8[i] * d_row, v[i]);
}

static void sse2_4x4_e4(char *dst, const char *src, int64_t d_row,
                        int64_t s_col)
{
    __m128i v[4];
    for (int r = 0; r < 4; r++)
        v[r] = LOADU(src + r * s_col);
    UNPACK_PASS(v, 4, _mm_unpacklo_epi32, _mm_unpackhi_epi32);
    UNPACK_PASS(v, 4, _mm_unpacklo_epi64, _mm_unpackhi_epi64);
    for (int i = 0; i < 4; i++)
        STOREU(dst + bitrev4[i] * d_row, v[i]);
}

static void sse2_2x2_e8(char *dst, const char *src, int64_t d_row,
                        int64_t s_col)
{
    __m128i a = LOADU(src), b = LOADU(src + s_col);
    STOREU(dst, _mm_unpacklo_epi64(a, b));
    STOREU(dst + d_row, _mm_unpackhi_epi64(a, b));
}

/* Narrow: 16 rows of 2 or 4 one-byte columns, destination rows packed
 * (d_row == columns): planes interleave into 32 or 64 contiguous bytes. */
static void sse2_16x2_e1(char *dst, const char *src, int64_t d_row,
                         int64_t s_col)
{
    (void)d_row;
    __m128i p0 = LOADU(src), p1 = LOADU(src + s_col);
    STOREU(dst, _mm_unpacklo_epi8(p0, p1));
    STOREU(dst + 16, _mm_unpackhi_epi8(p0, p1));
}

static void sse2_16x4_e1(char *dst, const char *src, int64_t d_row,
                         int64_t s_col)
{
    (void)d_row;
    __m128i p0 = LOADU(src), p1 = LOADU(src + s_col);
    __m128i p2 = LOADU(src + 2 * s_col), p3 = LOADU(src + 3 * s_col);
    __m128i a = _mm_unpacklo_epi8(p0, p1), b = _mm_unpackhi_epi8(p0, p1);
    __m128i c = _mm_unpacklo_epi8(p2, p3), d = _mm_unpackhi_epi8(p2, p3);
    STOREU(dst, _mm_unpacklo_epi16(a, c));
    STOREU(dst + 16, _mm_unpackhi_epi16(a, c));
    STOREU(dst + 32, _mm_unpacklo_epi16(b, d));
    STOREU(dst + 48, _mm_unpackhi_epi16(b, d));
}

/* Narrow, 3 one-byte columns (RGB planes -> packed pixels), SSSE3 pshufb:
 * output byte g comes from plane g % 3, pixel g / 3. */
#define PICK(g, j) ((g) % 3 == (j) ? (g) / 3 : -128)
#define MASK(o, j)                                                             \
    _mm_setr_epi8(PICK(o, j), PICK(o + 1, j), PICK(o + 2, j), PICK(o + 3, j), \
                  PICK(o + 4, j), PICK(o + 5, j), PICK(o + 6, j),              \
                  PICK(o + 7, j), PICK(o + 8, j), PICK(o + 9, j),              \
                  PICK(o + 10, j), PICK(o + 11, j), PICK(o + 12, j),           \
                  PICK(o + 13, j), PICK(o + 14, j), PICK(o + 15, j))
#define INTERLEAVE3(o)                                                         \
    _mm_or_si128(_mm_or_si128(_mm_shuffle_epi8(p0, MASK(o, 0)),                \
                              _mm_shuffle_epi8(p1, MASK(o, 1))),               \
                 _mm_shuffle_epi8(p2, MASK(o, 2)))

__attribute__((target("ssse3"))) static void ssse3_16x3_e1(
    char *dst, const char *src, int64_t d_row, int64_t s_col)
{
    (void)d_row;
    __m128i p0 = LOADU(src), p1 = LOADU(src + s_col), p2 = LOADU(src + 2 * s_col);
    STOREU(dst, INTERLEAVE3(0));
    STOREU(dst + 16, INTERLEAVE3(16));
    STOREU(dst + 32, INTERLEAVE3(32));
}

#define LOADU256(p) _mm256_loadu_si256((const __m256i *)(const void *)(p))
#define STOREU256(p, v) _mm256_storeu_si256((__m256i *)(void *)(p), (v))

__attribute__((target("avx2"))) static void avx2_8x8_e4(
    char *dst, const char *src, int64_t d_row, int64_t s_col)
{
    __m256 r[8], t[8], u[8];
    for (int j = 0; j < 8; j++)
        r[j] = _mm256_castsi256_ps(LOADU256(src + j * s_col));
    for (int j = 0; j < 8; j += 2) {
        t[j] = _mm256_unpacklo_ps(r[j], r[j + 1]);
        t[j + 1] = _mm256_unpackhi_ps(r[j], r[j + 1]);
    }
    for (int j = 0; j < 8; j += 4) {
        u[j] = _mm256_shuffle_ps(t[j], t[j + 2], _MM_SHUFFLE(1, 0, 1, 0));
        u[j + 1] = _mm256_shuffle_ps(t[j], t[j + 2], _MM_SHUFFLE(3, 2, 3, 2));
        u[j + 2] = _mm256_shuffle_ps(t[j + 1], t[j + 3], _MM_SHUFFLE(1, 0, 1, 0));
        u[j + 3] = _mm256_shuffle_ps(t[j + 1], t[j + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int i = 0; i < 4; i++) {
        STOREU256(dst + i * d_row,
                  _mm256_castps_si256(_mm256_permute2f128_ps(u[i], u[i + 4], 0x20)));
        STOREU256(dst + (i + 4) * d_row,
                  _mm256_castps_si256(_mm256_permute2f128_ps(u[i], u[i + 4], 0x31)));
    }
}

__attribute__((target("avx2"))) static void avx2_4x4_e8(
    char *dst, const char *src, int64_t d_row, int64_t s_col)
{
    __m256d r[4];
    for (int j = 0; j < 4; j++)
        r[j] = _mm256_castsi256_pd(LOADU256(src + j * s_col));
    __m256d t0 = _mm256_unpacklo_pd(r[0], r[1]), t1 = _mm256_unpackhi_pd(r[0], r[1]);
    __m256d t2 = _mm256_unpacklo_pd(r[2], r[3]), t3 = _mm256_unpackhi_pd(r[2], r[3]);
    STOREU256(dst, _mm256_castpd_si256(_mm256_permute2f128_pd(t0, t2, 0x20)));
    STOREU256(dst + d_row, _mm256_castpd_si256(_mm256_permute2f128_pd(t1, t3, 0x20)));
    STOREU256(dst + 2 * d_row, _mm256_castpd_si256(_mm256_permute2f128_pd(t0, t2, 0x31)));
    STOREU256(dst + 3 * d_row, _mm256_castpd_si256(_mm256_permute2f128_pd(t1, t3, 0x31)));
}

void pf_stream_copy(char *dst, const char *src, int64_t n)
{
    int64_t head = (int64_t)(-(uintptr_t)dst & 15); /* to 16-byte alignment */
    if (head > n)
        head = n;
    memcpy(dst, src, (size_t)head);
    dst += head, src += head, n -= head;
    for (; n >= 64; n -= 64, dst += 64, src += 64) {
        __m128i a = LOADU(src), b = LOADU(src + 16);
        __m128i c = LOADU(src + 32), d = LOADU(src + 48);
        _mm_stream_si128((__m128i *)(void *)dst, a);
        _mm_stream_si128((__m128i *)(void *)(dst + 16), b);
        _mm_stream_si128((__m128i *)(void *)(dst + 32), c);
        _mm_stream_si128((__m128i *)(void *)(dst + 48), d);
    }
    for (; n >= 16; n -= 16, dst += 16, src += 16)
        _mm_stream_si128((__m128i *)(void *)dst, LOADU(src));
    memcpy(dst, src, (size_t)n);
}

void pf_stream_fence(void) { _mm_sfence(); }

pf_micro_kernel pf_micro_for(int64_t e, int64_t cols, int64_t d_row, int simd)
{
    pf_micro_kernel none = {NULL, 0, 0, PF_SIMD_NONE};
    if (simd < PF_SIMD_SSE2)
        return none;
    if (e == 1 && d_row == cols) { /* packed narrow rows: interleave planes */
        if (cols == 2)
            return (pf_micro_kernel){sse2_16x2_e1, 16, 2, PF_SIMD_SSE2};
        if (cols == 4)
            return (pf_micro_kernel){sse2_16x4_e1, 16, 4, PF_SIMD_SSE2};
        if (cols == 3 && simd >= PF_SIMD_AVX2) /* every AVX2 CPU has SSSE3 */
            return (pf_micro_kernel){ssse3_16x3_e1, 16, 3, PF_SIMD_AVX2};
    }
    switch (e) {
    case 1: return (pf_micro_kernel){sse2_16x16_e1, 16, 16, PF_SIMD_SSE2};
    case 2: return (pf_micro_kernel){sse2_8x8_e2, 8, 8, PF_SIMD_SSE2};
    case 4: /* the wide block only where rows hold a whole one */
        if (simd >= PF_SIMD_AVX2 && cols >= 8)
            return (pf_micro_kernel){avx2_8x8_e4, 8, 8, PF_SIMD_AVX2};
        return (pf_micro_kernel){sse2_4x4_e4, 4, 4, PF_SIMD_SSE2};
    case 8:
        if (simd >= PF_SIMD_AVX2 && cols >= 4)
            return (pf_micro_kernel){avx2_4x4_e8, 4, 4, PF_SIMD_AVX2};
        return (pf_micro_kernel){sse2_2x2_e8, 2, 2, PF_SIMD_SSE2};
    default:
        return none;
    }
}

#else /* not x86-64: the portable loops only */

void pf_stream_copy(char *dst, const char *src, int64_t n)
{
    memcpy(dst, src, (size_t)n);
}

void pf_stream_fence(void) {}

pf_micro_kernel pf_micro_for(int64_t e, int64_t cols, int64_t d_row, int simd)
{
    (void)e, (void)cols, (void)d_row, (void)simd;
    return (pf_micro_kernel){NULL, 0, 0, PF_SIMD_NONE};
}

#endif
