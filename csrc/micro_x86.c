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

#define ALWAYS_INLINE static inline __attribute__((always_inline))
#define LOADU(p) _mm_loadu_si128((const __m128i *)(const void *)(p))
#define STOREU(p, v) _mm_storeu_si128((__m128i *)(void *)(p), (v))

/* One pass of the classic unpack network: pairs of rows interleave at the
 * given width.  After log2(K) passes (widths e, 2e, ..., 8 bytes) vector i
 * holds source column bitrev(i). */
#define UNPACK_PASS(v, K, LO, HI)                                              \
    do {                                                                       \
        __typeof__(v[0]) t_[K];                                                \
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

/* The square blocks come twice: columns at a constant step (s_col), and
 * columns at table offsets (off[j], transposes against planes); one body,
 * column j at COLUMN(j). */
#define COLUMN(j) (off ? src + off[j] : src + (j) * s_col)

ALWAYS_INLINE void sse2_16x16_e1_body(char *dst, const char *src, int64_t d_row,
                                      int64_t s_col, const int64_t *off)
{
    __m128i v[16];
    for (int r = 0; r < 16; r++)
        v[r] = LOADU(COLUMN(r));
    UNPACK_PASS(v, 16, _mm_unpacklo_epi8, _mm_unpackhi_epi8);
    UNPACK_PASS(v, 16, _mm_unpacklo_epi16, _mm_unpackhi_epi16);
    UNPACK_PASS(v, 16, _mm_unpacklo_epi32, _mm_unpackhi_epi32);
    UNPACK_PASS(v, 16, _mm_unpacklo_epi64, _mm_unpackhi_epi64);
    for (int i = 0; i < 16; i++)
        STOREU(dst + bitrev16[i] * d_row, v[i]);
}

ALWAYS_INLINE void sse2_8x8_e2_body(char *dst, const char *src, int64_t d_row,
                                    int64_t s_col, const int64_t *off)
{
    __m128i v[8];
    for (int r = 0; r < 8; r++)
        v[r] = LOADU(COLUMN(r));
    UNPACK_PASS(v, 8, _mm_unpacklo_epi16, _mm_unpackhi_epi16);
    UNPACK_PASS(v, 8, _mm_unpacklo_epi32, _mm_unpackhi_epi32);
    UNPACK_PASS(v, 8, _mm_unpacklo_epi64, _mm_unpackhi_epi64);
    for (int i = 0; i < 8; i++)
        STOREU(dst + bitrev8[i] * d_row, v[i]);
}

ALWAYS_INLINE void sse2_4x4_e4_body(char *dst, const char *src, int64_t d_row,
                                    int64_t s_col, const int64_t *off)
{
    __m128i v[4];
    for (int r = 0; r < 4; r++)
        v[r] = LOADU(COLUMN(r));
    UNPACK_PASS(v, 4, _mm_unpacklo_epi32, _mm_unpackhi_epi32);
    UNPACK_PASS(v, 4, _mm_unpacklo_epi64, _mm_unpackhi_epi64);
    for (int i = 0; i < 4; i++)
        STOREU(dst + bitrev4[i] * d_row, v[i]);
}

/* Narrow, 3 one-byte columns (RGB planes -> packed pixels), SSSE3 pshufb
 * with the masks as constants (measured: 0.69-0.75 of memcpy on uint8 RGB
 * planes, 0.61-0.64 with the generic K-plane masks loaded from memory):
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
    char *dst, const char *src, int64_t d_row, int64_t s_col, int64_t blocks,
    int64_t d_block, int64_t s_block)
{
    (void)d_row;
    for (int64_t b = 0; b < blocks; b++, dst += d_block, src += s_block) {
        __m128i p0 = LOADU(src), p1 = LOADU(src + s_col), p2 = LOADU(src + 2 * s_col);
        STOREU(dst, INTERLEAVE3(0));
        STOREU(dst + 16, INTERLEAVE3(16));
        STOREU(dst + 32, INTERLEAVE3(32));
    }
}

#define LOADU256(p) _mm256_loadu_si256((const __m256i *)(const void *)(p))
#define STOREU256(p, v) _mm256_storeu_si256((__m256i *)(void *)(p), (v))

__attribute__((target("avx2"))) ALWAYS_INLINE void avx2_8x8_e4_body(
    char *dst, const char *src, int64_t d_row, int64_t s_col, const int64_t *off)
{
    __m256 r[8], t[8], u[8];
    for (int j = 0; j < 8; j++)
        r[j] = _mm256_castsi256_ps(LOADU256(COLUMN(j)));
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

__attribute__((target("avx2"))) ALWAYS_INLINE void avx2_4x4_e8_body(
    char *dst, const char *src, int64_t d_row, int64_t s_col, const int64_t *off)
{
    __m256d r[4];
    for (int j = 0; j < 4; j++)
        r[j] = _mm256_castsi256_pd(LOADU256(COLUMN(j)));
    __m256d t0 = _mm256_unpacklo_pd(r[0], r[1]), t1 = _mm256_unpackhi_pd(r[0], r[1]);
    __m256d t2 = _mm256_unpacklo_pd(r[2], r[3]), t3 = _mm256_unpackhi_pd(r[2], r[3]);
    STOREU256(dst, _mm256_castpd_si256(_mm256_permute2f128_pd(t0, t2, 0x20)));
    STOREU256(dst + d_row, _mm256_castpd_si256(_mm256_permute2f128_pd(t1, t3, 0x20)));
    STOREU256(dst + 2 * d_row, _mm256_castpd_si256(_mm256_permute2f128_pd(t0, t2, 0x31)));
    STOREU256(dst + 3 * d_row, _mm256_castpd_si256(_mm256_permute2f128_pd(t1, t3, 0x31)));
}

/* 1- and 2-byte items at the AVX2 level: the SSE2 network on both 128-bit
 * lanes at once, columns loaded 32 bytes deep, the low lane holding the
 * block's first rows and the high lane the next ones: the same shuffles
 * for twice the items (measured on the 43 layouts of the tuning seeds
 * whose plan changed: 1.08x faster by geometric mean over two runs each,
 * 1.4x on uint8 (145001, 110) transposed). */
__attribute__((target("avx2"))) ALWAYS_INLINE void avx2_32x16_e1_body(
    char *dst, const char *src, int64_t d_row, int64_t s_col, const int64_t *off)
{
    __m256i v[16];
    for (int r = 0; r < 16; r++)
        v[r] = LOADU256(COLUMN(r));
    UNPACK_PASS(v, 16, _mm256_unpacklo_epi8, _mm256_unpackhi_epi8);
    UNPACK_PASS(v, 16, _mm256_unpacklo_epi16, _mm256_unpackhi_epi16);
    UNPACK_PASS(v, 16, _mm256_unpacklo_epi32, _mm256_unpackhi_epi32);
    UNPACK_PASS(v, 16, _mm256_unpacklo_epi64, _mm256_unpackhi_epi64);
    for (int i = 0; i < 16; i++) {
        STOREU(dst + bitrev16[i] * d_row, _mm256_castsi256_si128(v[i]));
        STOREU(dst + (16 + bitrev16[i]) * d_row, _mm256_extracti128_si256(v[i], 1));
    }
}

__attribute__((target("avx2"))) ALWAYS_INLINE void avx2_16x8_e2_body(
    char *dst, const char *src, int64_t d_row, int64_t s_col, const int64_t *off)
{
    __m256i v[8];
    for (int r = 0; r < 8; r++)
        v[r] = LOADU256(COLUMN(r));
    UNPACK_PASS(v, 8, _mm256_unpacklo_epi16, _mm256_unpackhi_epi16);
    UNPACK_PASS(v, 8, _mm256_unpacklo_epi32, _mm256_unpackhi_epi32);
    UNPACK_PASS(v, 8, _mm256_unpacklo_epi64, _mm256_unpackhi_epi64);
    for (int i = 0; i < 8; i++) {
        STOREU(dst + bitrev8[i] * d_row, _mm256_castsi256_si128(v[i]));
        STOREU(dst + (8 + bitrev8[i]) * d_row, _mm256_extracti128_si256(v[i], 1));
    }
}

#define SQUARE_PAIR(NAME, TARGET)                                              \
    TARGET static void NAME(char *dst, const char *src, int64_t d_row,         \
                            int64_t s_col, int64_t blocks, int64_t d_block,    \
                            int64_t s_block)                                   \
    {                                                                          \
        for (int64_t b = 0; b < blocks; b++)                                   \
            NAME##_body(dst + b * d_block, src + b * s_block, d_row, s_col,    \
                        NULL);                                                 \
    }                                                                          \
    TARGET static void NAME##_table(char *dst, const char *src, int64_t d_row, \
                                    const int64_t *off)                        \
    {                                                                          \
        NAME##_body(dst, src, d_row, 0, off);                                  \
    }
#define SSE2_TARGET
#define AVX2_TARGET __attribute__((target("avx2")))
SQUARE_PAIR(sse2_16x16_e1, SSE2_TARGET)
SQUARE_PAIR(sse2_8x8_e2, SSE2_TARGET)
SQUARE_PAIR(sse2_4x4_e4, SSE2_TARGET)
SQUARE_PAIR(avx2_32x16_e1, AVX2_TARGET)
SQUARE_PAIR(avx2_16x8_e2, AVX2_TARGET)
SQUARE_PAIR(avx2_8x8_e4, AVX2_TARGET)
SQUARE_PAIR(avx2_4x4_e8, AVX2_TARGET)
#undef SQUARE_PAIR
#undef SSE2_TARGET
#undef AVX2_TARGET
#undef COLUMN

/* ---- narrow interleaves: K planes of E-byte items into packed rows ------
 * (an unpack network: pairs of planes interleave at width E, then pairs of
 * those at 2E, ...; 16 bytes of each plane give 16*K output bytes). */

ALWAYS_INLINE __m128i unpack_lo(__m128i a, __m128i b, int w)
{
    switch (w) {
    case 1: return _mm_unpacklo_epi8(a, b);
    case 2: return _mm_unpacklo_epi16(a, b);
    case 4: return _mm_unpacklo_epi32(a, b);
    case 8: return _mm_unpacklo_epi64(a, b);
    default: return a; /* width 16: the vectors are the halves */
    }
}

ALWAYS_INLINE __m128i unpack_hi(__m128i a, __m128i b, int w)
{
    switch (w) {
    case 1: return _mm_unpackhi_epi8(a, b);
    case 2: return _mm_unpackhi_epi16(a, b);
    case 4: return _mm_unpackhi_epi32(a, b);
    case 8: return _mm_unpackhi_epi64(a, b);
    default: return b;
    }
}

ALWAYS_INLINE void il2(__m128i a, __m128i b, int w, __m128i *o)
{
    o[0] = unpack_lo(a, b, w);
    o[1] = unpack_hi(a, b, w);
}

ALWAYS_INLINE void il4(const __m128i *v, int w, __m128i *o)
{
    __m128i a[2], b[2];
    il2(v[0], v[1], w, a);
    il2(v[2], v[3], w, b);
    il2(a[0], b[0], 2 * w, o);
    il2(a[1], b[1], 2 * w, o + 2);
}

ALWAYS_INLINE void interleave(char *dst, const char *src, int64_t s_col, int k,
                              int e)
{
    __m128i v[8], o[8];
    for (int j = 0; j < k; j++)
        v[j] = LOADU(src + j * s_col);
    if (k == 2) {
        il2(v[0], v[1], e, o);
    } else if (k == 4) {
        il4(v, e, o);
    } else { /* 8 */
        __m128i a[4], b[4];
        il4(v, e, a);
        il4(v + 4, e, b);
        for (int i = 0; i < 4; i++)
            il2(a[i], b[i], 4 * e, o + 2 * i);
    }
    for (int i = 0; i < k; i++)
        STOREU(dst + 16 * i, o[i]);
}

#define INTERLEAVE_FN(K, E)                                                    \
    static void sse2_il##K##_e##E(char *dst, const char *src, int64_t d_row,  \
                                  int64_t s_col, int64_t blocks,               \
                                  int64_t d_block, int64_t s_block)            \
    {                                                                          \
        (void)d_row;                                                           \
        for (int64_t b = 0; b < blocks; b++)                                   \
            interleave(dst + b * d_block, src + b * s_block, s_col, K, E);     \
    }
INTERLEAVE_FN(2, 1) INTERLEAVE_FN(2, 2) INTERLEAVE_FN(2, 4) INTERLEAVE_FN(2, 8)
INTERLEAVE_FN(4, 1) INTERLEAVE_FN(4, 2) INTERLEAVE_FN(4, 4) INTERLEAVE_FN(4, 8)
INTERLEAVE_FN(8, 1) INTERLEAVE_FN(8, 2) INTERLEAVE_FN(8, 4)

static pf_micro_fn interleave_for(int64_t k, int64_t e)
{
#define PICK_IL(K, E) if (k == K && e == E) return sse2_il##K##_e##E;
    PICK_IL(2, 1) PICK_IL(2, 2) PICK_IL(2, 4) PICK_IL(2, 8)
    PICK_IL(4, 1) PICK_IL(4, 2) PICK_IL(4, 4) PICK_IL(4, 8)
    PICK_IL(8, 1) PICK_IL(8, 2) PICK_IL(8, 4)
#undef PICK_IL
    return NULL;
}

/* ---- 9 to 15 one-byte columns: the 16x16 byte network ------------------
 * (the missing columns zero); each destination row, K bytes, is two 8-byte
 * stores that overlap, so that nothing outside the block is written. */
#define NARROW_E1(K)                                                           \
    static void sse2_narrow##K##_e1(char *dst, const char *src, int64_t d_row, \
                                    int64_t s_col, int64_t blocks,             \
                                    int64_t d_block, int64_t s_block)          \
    {                                                                          \
        for (int64_t b = 0; b < blocks; b++, dst += d_block, src += s_block) { \
            __m128i v[16];                                                     \
            for (int r = 0; r < 16; r++)                                       \
                v[r] = r < (K) ? LOADU(src + r * s_col) : _mm_setzero_si128(); \
            UNPACK_PASS(v, 16, _mm_unpacklo_epi8, _mm_unpackhi_epi8);          \
            UNPACK_PASS(v, 16, _mm_unpacklo_epi16, _mm_unpackhi_epi16);        \
            UNPACK_PASS(v, 16, _mm_unpacklo_epi32, _mm_unpackhi_epi32);        \
            UNPACK_PASS(v, 16, _mm_unpacklo_epi64, _mm_unpackhi_epi64);        \
            for (int i = 0; i < 16; i++) {                                     \
                char *row = dst + bitrev16[i] * d_row;                         \
                _mm_storel_epi64((__m128i *)(void *)row, v[i]);                \
                _mm_storel_epi64((__m128i *)(void *)(row + (K) - 8),           \
                                 _mm_srli_si128(v[i], (K) - 8));               \
            }                                                                  \
        }                                                                      \
    }
NARROW_E1(9) NARROW_E1(10) NARROW_E1(11) NARROW_E1(12) NARROW_E1(13) NARROW_E1(14)
NARROW_E1(15)
#undef NARROW_E1

static pf_micro_fn narrow_e1_for(int64_t cols)
{
    static const pf_micro_fn fns[] = {sse2_narrow9_e1,  sse2_narrow10_e1, sse2_narrow11_e1,
                                      sse2_narrow12_e1, sse2_narrow13_e1, sse2_narrow14_e1,
                                      sse2_narrow15_e1};
    return cols >= 9 && cols <= 15 ? fns[cols - 9] : NULL;
}

/* ---- reversed rows: items of 1, 2, 4, 8 or 16 bytes, backwards ---------- */

ALWAYS_INLINE __m128i rev_sse2(__m128i x, int e)
{
    switch (e) {
    case 2:
        x = _mm_shufflelo_epi16(x, _MM_SHUFFLE(0, 1, 2, 3));
        x = _mm_shufflehi_epi16(x, _MM_SHUFFLE(0, 1, 2, 3));
        return _mm_shuffle_epi32(x, _MM_SHUFFLE(1, 0, 3, 2));
    case 4: return _mm_shuffle_epi32(x, _MM_SHUFFLE(0, 1, 2, 3));
    case 8: return _mm_shuffle_epi32(x, _MM_SHUFFLE(1, 0, 3, 2));
    default: return x; /* 16 */
    }
}

/* Row i: items s + i*s_step - j*e for j < len, to d (contiguous).  Loads
 * stay inside each row's bytes: W-byte chunks, the last one overlapping the
 * one before where W does not divide the row (it writes the same bytes
 * again); rows shorter than W, where HALF, two overlapping 16-byte chunks
 * (HREV); shorter ones item by item (measured: bool rows of 23 bytes went
 * item by item at 0.1 of memcpy, and 1.4x slower or faster with nothing
 * changed but where the loop fell in the code). */
#define REVERSE_ROWS(NAME, ATTR, E, W, LOAD, STORE, REV, HALF, HREV)           \
    ATTR static void NAME(char *d, const char *s, int64_t count,               \
                          int64_t s_step, int64_t len)                         \
    {                                                                          \
        const int64_t n = len * (E);                                           \
        for (int64_t i = 0; i < count; i++, s += s_step, d += n) {             \
            if (n >= (W)) {                                                    \
                int64_t b = 0;                                                 \
                for (; b + 2 * (W) <= n; b += 2 * (W)) {                       \
                    STORE(d + b, REV(LOAD(s + (E) - (W) - b)));                \
                    STORE(d + b + (W), REV(LOAD(s + (E) - 2 * (W) - b)));      \
                }                                                              \
                if (b + (W) <= n) {                                            \
                    STORE(d + b, REV(LOAD(s + (E) - (W) - b)));                \
                    b += (W);                                                  \
                }                                                              \
                if (b < n)                                                     \
                    STORE(d + n - (W), REV(LOAD(s + (E) - n)));                \
            } else if ((HALF) && n >= 16) {                                    \
                STOREU(d, HREV(LOADU(s + (E) - 16)));                          \
                STOREU(d + n - 16, HREV(LOADU(s + (E) - n)));                  \
            } else {                                                           \
                for (int64_t j = 0; j < len; j++)                              \
                    memcpy(d + j * (E), s - j * (E), (E));                     \
            }                                                                  \
        }                                                                      \
    }

#define REV2(x) rev_sse2(x, 2)
#define REV4(x) rev_sse2(x, 4)
#define REV8(x) rev_sse2(x, 8)
#define REV16(x) (x)
REVERSE_ROWS(sse2_rev_e2, , 2, 16, LOADU, STOREU, REV2, 0, REV2)
REVERSE_ROWS(sse2_rev_e4, , 4, 16, LOADU, STOREU, REV4, 0, REV4)
REVERSE_ROWS(sse2_rev_e8, , 8, 16, LOADU, STOREU, REV8, 0, REV8)
REVERSE_ROWS(sse2_rev_e16, , 16, 16, LOADU, STOREU, REV16, 0, REV16)

__attribute__((target("avx2"))) static inline __m256i rev_avx2(__m256i x, int e)
{
    switch (e) {
    case 1:
        x = _mm256_shuffle_epi8(x, _mm256_setr_epi8(
            15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0,
            15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0));
        return _mm256_permute4x64_epi64(x, _MM_SHUFFLE(1, 0, 3, 2));
    case 2:
        x = _mm256_shuffle_epi8(x, _mm256_setr_epi8(
            14, 15, 12, 13, 10, 11, 8, 9, 6, 7, 4, 5, 2, 3, 0, 1,
            14, 15, 12, 13, 10, 11, 8, 9, 6, 7, 4, 5, 2, 3, 0, 1));
        return _mm256_permute4x64_epi64(x, _MM_SHUFFLE(1, 0, 3, 2));
    case 4:
        return _mm256_permutevar8x32_epi32(x, _mm256_setr_epi32(7, 6, 5, 4, 3, 2, 1, 0));
    default: /* 8 */
        return _mm256_permute4x64_epi64(x, _MM_SHUFFLE(0, 1, 2, 3));
    }
}

/* 16 bytes reversed, at the AVX2 level (which implies SSSE3's pshufb). */
__attribute__((target("avx2"))) static inline __m128i rev16_avx2(__m128i x, int e)
{
    if (e == 1)
        return _mm_shuffle_epi8(x, _mm_setr_epi8(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4,
                                                 3, 2, 1, 0));
    return rev_sse2(x, e);
}

#define AVX2 __attribute__((target("avx2")))
#define HREV1(x) rev16_avx2(x, 1)
#define HREV2(x) rev16_avx2(x, 2)
#define HREV4(x) rev16_avx2(x, 4)
#define HREV8(x) rev16_avx2(x, 8)
#define AREV1(x) rev_avx2(x, 1)
#define AREV2(x) rev_avx2(x, 2)
#define AREV4(x) rev_avx2(x, 4)
#define AREV8(x) rev_avx2(x, 8)
REVERSE_ROWS(avx2_rev_e1, AVX2, 1, 32, LOADU256, STOREU256, AREV1, 1, HREV1)
REVERSE_ROWS(avx2_rev_e2, AVX2, 2, 32, LOADU256, STOREU256, AREV2, 1, HREV2)
REVERSE_ROWS(avx2_rev_e4, AVX2, 4, 32, LOADU256, STOREU256, AREV4, 1, HREV4)
REVERSE_ROWS(avx2_rev_e8, AVX2, 8, 32, LOADU256, STOREU256, AREV8, 1, HREV8)

/* ---- gathers of every other item (step 2e): 32 source bytes give 16 ---- */

ALWAYS_INLINE __m128i pick_even(__m128i a, __m128i b, int e)
{
    switch (e) {
    case 1: {
        const __m128i lo = _mm_set1_epi16(0x00FF);
        return _mm_packus_epi16(_mm_and_si128(a, lo), _mm_and_si128(b, lo));
    }
    case 2: /* sign-extend the low halves, so that the saturating pack is exact */
        return _mm_packs_epi32(_mm_srai_epi32(_mm_slli_epi32(a, 16), 16),
                               _mm_srai_epi32(_mm_slli_epi32(b, 16), 16));
    case 4:
        return _mm_castps_si128(_mm_shuffle_ps(_mm_castsi128_ps(a), _mm_castsi128_ps(b),
                                               _MM_SHUFFLE(2, 0, 2, 0)));
    default: /* 8 */
        return _mm_unpacklo_epi64(a, b);
    }
}

/* Row i: items s + i*s_step + 2*j*e.  A group of 16/e items loads 32 bytes
 * from its first item; it runs only while another item follows the group,
 * so that no load passes the row's last item. */
#define GATHER2_ROWS(E)                                                        \
    static void sse2_gather2_e##E(char *d, const char *s, int64_t count,       \
                                  int64_t s_step, int64_t len)                 \
    {                                                                          \
        for (int64_t i = 0; i < count; i++, s += s_step) {                     \
            const char *sp = s;                                                \
            int64_t j = 0;                                                     \
            for (; j + 16 / (E) < len; j += 16 / (E), d += 16, sp += 32)        \
                STOREU(d, pick_even(LOADU(sp), LOADU(sp + 16), E));            \
            for (; j < len; j++, d += (E), sp += 2 * (E))                      \
                memcpy(d, sp, (E));                                            \
        }                                                                      \
    }
GATHER2_ROWS(1) GATHER2_ROWS(2) GATHER2_ROWS(4) GATHER2_ROWS(8)

/* ---- byte shuffles (SSSE3 pshufb; gated on the AVX2 level, which implies
 * it): masks are compile-time constants, -128 zeroes a byte. -------------- */

#define SETR16(F, o, a, b, c)                                                  \
    _mm_setr_epi8(F(o + 0, a, b, c), F(o + 1, a, b, c), F(o + 2, a, b, c),     \
                  F(o + 3, a, b, c), F(o + 4, a, b, c), F(o + 5, a, b, c),     \
                  F(o + 6, a, b, c), F(o + 7, a, b, c), F(o + 8, a, b, c),     \
                  F(o + 9, a, b, c), F(o + 10, a, b, c), F(o + 11, a, b, c),   \
                  F(o + 12, a, b, c), F(o + 13, a, b, c), F(o + 14, a, b, c),  \
                  F(o + 15, a, b, c))

/* Gathers at step K items: output byte b of a group is source byte
 * (b / E) * K * E + b % E, which lies in the load (16 bytes) L. */
#define G_OFF(b, K, E) (((b) / (E)) * (K) * (E) + (b) % (E))
#define G_PICK(b, L, K, E) (G_OFF(b, K, E) / 16 == (L) ? G_OFF(b, K, E) % 16 : -128)

#define GATHERK_ROWS(K, E)                                                     \
    __attribute__((target("ssse3"))) static void ssse3_gather##K##_e##E(      \
        char *d, const char *s, int64_t count, int64_t s_step, int64_t len)   \
    {                                                                          \
        __m128i m[K];                                                          \
        for (int l = 0; l < (K); l++)                                          \
            m[l] = SETR16(G_PICK, 0, l, K, E);                                 \
        for (int64_t i = 0; i < count; i++, s += s_step) {                     \
            const char *sp = s;                                                \
            int64_t j = 0;                                                     \
            for (; j + 16 / (E) < len; j += 16 / (E), d += 16, sp += 16 * (K)) { \
                __m128i acc = _mm_shuffle_epi8(LOADU(sp), m[0]);               \
                for (int l = 1; l < (K); l++)                                  \
                    acc = _mm_or_si128(acc, _mm_shuffle_epi8(LOADU(sp + 16 * l), m[l])); \
                STOREU(d, acc);                                                \
            }                                                                  \
            for (; j < len; j++, d += (E), sp += (K) * (E))                    \
                memcpy(d, sp, (E));                                            \
        }                                                                      \
    }
GATHERK_ROWS(2, 1) GATHERK_ROWS(3, 1) GATHERK_ROWS(4, 1)
GATHERK_ROWS(3, 2) GATHERK_ROWS(4, 2)
GATHERK_ROWS(3, 4) GATHERK_ROWS(4, 4)
GATHERK_ROWS(3, 8) GATHERK_ROWS(4, 8)

/* Interleaves of K planes: output byte g (of 16*K) is item g / E, plane
 * (g / E) % K, byte ((g / E) / K) * E + g % E of that plane's 16.  The
 * masks, one per (output vector, plane), are filled once at load time. */
static int8_t il_masks[8][9][7][7][16]; /* [K][E][vector][plane][byte] */

__attribute__((constructor)) static void fill_il_masks(void)
{
    for (int k = 3; k < 8; k++)
        for (int e = 1; e <= 8; e *= 2)
            for (int o = 0; o < k; o++)
                for (int j = 0; j < k; j++)
                    for (int b = 0; b < 16; b++) {
                        int g = 16 * o + b, item = g / e;
                        il_masks[k][e][o][j][b] = (int8_t)(
                            item % k == j ? (item / k) * e + g % e : -128);
                    }
}

#define INTERLEAVEK(K, E)                                                      \
    __attribute__((target("ssse3"))) static void ssse3_il##K##_e##E(          \
        char *dst, const char *src, int64_t d_row, int64_t s_col,              \
        int64_t blocks, int64_t d_block, int64_t s_block)                      \
    {                                                                          \
        (void)d_row;                                                           \
        for (int64_t b = 0; b < blocks; b++, dst += d_block, src += s_block) { \
            __m128i p[K];                                                      \
            for (int j = 0; j < (K); j++)                                      \
                p[j] = LOADU(src + j * s_col);                                 \
            for (int o = 0; o < (K); o++) {                                    \
                __m128i acc = _mm_shuffle_epi8(p[0],                           \
                                               LOADU(il_masks[K][E][o][0]));   \
                for (int j = 1; j < (K); j++)                                  \
                    acc = _mm_or_si128(acc, _mm_shuffle_epi8(                  \
                                      p[j], LOADU(il_masks[K][E][o][j])));     \
                STOREU(dst + 16 * o, acc);                                     \
            }                                                                  \
        }                                                                      \
    }
INTERLEAVEK(3, 1) INTERLEAVEK(3, 2) INTERLEAVEK(3, 4) INTERLEAVEK(3, 8)
INTERLEAVEK(5, 1) INTERLEAVEK(5, 2) INTERLEAVEK(5, 4) INTERLEAVEK(5, 8)
INTERLEAVEK(6, 1) INTERLEAVEK(6, 2) INTERLEAVEK(6, 4) INTERLEAVEK(6, 8)
INTERLEAVEK(7, 1) INTERLEAVEK(7, 2) INTERLEAVEK(7, 4) INTERLEAVEK(7, 8)

static pf_micro_fn shuffle_interleave_for(int64_t k, int64_t e)
{
#define PICK_ILK(K, E) if (k == K && e == E) return ssse3_il##K##_e##E;
    PICK_ILK(3, 1) PICK_ILK(3, 2) PICK_ILK(3, 4) PICK_ILK(3, 8)
    PICK_ILK(5, 1) PICK_ILK(5, 2) PICK_ILK(5, 4) PICK_ILK(5, 8)
    PICK_ILK(6, 1) PICK_ILK(6, 2) PICK_ILK(6, 4) PICK_ILK(6, 8)
    PICK_ILK(7, 1) PICK_ILK(7, 2) PICK_ILK(7, 4) PICK_ILK(7, 8)
#undef PICK_ILK
    return NULL;
}

pf_rows_simd_fn pf_gather_for(int64_t e, int64_t s_col, int simd)
{
    if (simd >= PF_SIMD_AVX2) {
#define PICK_GK(K, E) if (e == E && s_col == K * E) return ssse3_gather##K##_e##E;
        PICK_GK(2, 1) PICK_GK(3, 1) PICK_GK(4, 1) PICK_GK(3, 2) PICK_GK(4, 2)
        PICK_GK(3, 4) PICK_GK(4, 4) PICK_GK(3, 8) PICK_GK(4, 8)
#undef PICK_GK
    }
    if (simd < PF_SIMD_SSE2 || s_col != 2 * e)
        return NULL;
    switch (e) {
    case 1: return sse2_gather2_e1;
    case 2: return sse2_gather2_e2;
    case 4: return sse2_gather2_e4;
    case 8: return sse2_gather2_e8;
    default: return NULL;
    }
}

pf_rows_simd_fn pf_reverse_for(int64_t e, int simd)
{
    if (simd >= PF_SIMD_AVX2) {
        switch (e) {
        case 1: return avx2_rev_e1;
        case 2: return avx2_rev_e2;
        case 4: return avx2_rev_e4;
        case 8: return avx2_rev_e8;
        default: break;
        }
    }
    if (simd >= PF_SIMD_SSE2) {
        switch (e) {
        case 2: return sse2_rev_e2;
        case 4: return sse2_rev_e4;
        case 8: return sse2_rev_e8;
        case 16: return sse2_rev_e16;
        default: break;
        }
    }
    return NULL;
}

/* ---- byte-permute programs (AVX-512 VBMI) ---------------------------------
 * A program moves `items` items whose source offsets (bytes, from the first
 * item's address) are off[]: 64-byte destination chunks, each the OR of up
 * to two vpermt2b over a 128-byte source window.  Built once per plan. */

/* Source byte of destination byte b of a run (items at offsets off[]). */
static int64_t source_byte(const int64_t *off, int64_t e, int64_t b)
{
    return off[b / e] + b % e;
}

/* The lowest source byte of destination bytes [first, first + n) that no
 * window of `width` bytes at base[0..windows) covers, in *low: 0 if none. */
static int lowest_uncovered(const int64_t *off, int64_t e, int64_t first, int64_t n,
                            const int64_t *base, int windows, int64_t width, int64_t *low)
{
    int found = 0;
    for (int64_t b = first; b < first + n; b++) {
        const int64_t src = source_byte(off, e, b);
        int covered = 0;
        for (int w = 0; w < windows; w++)
            covered |= src >= base[w] && src - base[w] < width;
        if (!covered && (!found || src < *low)) {
            *low = src;
            found = 1;
        }
    }
    return found;
}

static int build_shuffle_program(pf_plan *p, const int64_t *off, int64_t items);

int pf_build_program(pf_plan *p, const int64_t *off, int64_t items)
{
    p->program_shuffle = 0;
    if (pf_simd_level() < PF_SIMD_AVX512)
        return pf_simd_level() >= PF_SIMD_AVX2 && build_shuffle_program(p, off, items);
    const int64_t e = p->itemsize, bytes = items * e;
    if (items < 1 || bytes > 256)
        return 0;
    const int chunks = (int)((bytes + 63) / 64);
    for (int c = 0; c < chunks; c++) {
        /* A ragged last chunk of a run of 64 bytes or more ends at the
         * run's end, overlapping the one before (same bytes written twice):
         * every store is then a whole vector. */
        int64_t first = 64 * (int64_t)c;
        if (bytes >= 64 && first + 64 > bytes)
            first = bytes - 64;
        const int64_t n = bytes - first < 64 ? bytes - first : 64;
        p->program_dst[c] = first;
        int64_t base[2] = {0, 0};
        int windows = 0;
        uint64_t lanes[2] = {0, 0}, load[2][2] = {{0, 0}, {0, 0}};
        /* Windows: the lowest byte not yet covered starts the next one. */
        int64_t low = 0;
        while (lowest_uncovered(off, e, first, n, base, windows, 128, &low)) {
            if (windows == 2)
                return 0; /* too spread out for two windows */
            base[windows++] = low;
        }
        for (int64_t b = 0; b < n; b++) {
            int64_t src = source_byte(off, e, first + b);
            int w = src >= base[0] && src - base[0] < 128 ? 0 : 1;
            int64_t at = src - base[w];
            lanes[w] |= (uint64_t)1 << b;
            load[w][at / 64] |= (uint64_t)1 << (at % 64);
            p->program_index[c][w][b] = (uint8_t)at;
        }
        p->program_windows[c] = windows;
        for (int w = 0; w < 2; w++) {
            p->program_base[c][w] = base[w];
            p->program_lanes[c][w] = lanes[w];
            p->program_load[c][w][0] = load[w][0];
            p->program_load[c][w][1] = load[w][1];
        }
        p->program_store[c] = n == 64 ? ~(uint64_t)0 : ((uint64_t)1 << n) - 1;
    }
    p->program_chunks = chunks;
    p->program_items = items;
    return 1;
}

#define VBMI __attribute__((target("avx512f,avx512bw,avx512vbmi")))

VBMI static inline const void *at_offset(const char *s, int64_t off)
{
    return (const void *)((uintptr_t)s + (uintptr_t)off);
}

/* `groups` runs of the program: the n-th from s + n*s_step to d + n*d_step. */
VBMI static void run_program(const pf_plan *p, char *d, const char *s,
                             int64_t groups, int64_t s_step, int64_t d_step)
{
    const int chunks = p->program_chunks;
    __m512i idx[4][2];
    for (int c = 0; c < chunks; c++)
        for (int w = 0; w < p->program_windows[c]; w++)
            idx[c][w] = _mm512_loadu_si512((const void *)p->program_index[c][w]);
    for (int64_t g = 0; g < groups; g++, s += s_step, d += d_step) {
        for (int c = 0; c < chunks; c++) {
            __m512i acc = _mm512_setzero_si512();
            for (int w = 0; w < p->program_windows[c]; w++) {
                const char *base = at_offset(s, p->program_base[c][w]);
                __m512i lo = _mm512_maskz_loadu_epi8(p->program_load[c][w][0], base);
                __m512i hi = _mm512_maskz_loadu_epi8(p->program_load[c][w][1],
                                                     at_offset(base, 64));
                acc = _mm512_or_si512(acc, _mm512_maskz_permutex2var_epi8(
                                               p->program_lanes[c][w], lo, idx[c][w], hi));
            }
            if (p->program_store[c] == ~(uint64_t)0)
                _mm512_storeu_si512((void *)(d + p->program_dst[c]), acc);
            else
                _mm512_mask_storeu_epi8(d + p->program_dst[c], p->program_store[c], acc);
        }
    }
}

/* ---- byte-shuffle programs (AVX2 level, pshufb) ----------------------------
 * The programs where the CPU lacks VBMI (see pf_plan): 16-byte chunks from
 * 16-byte windows.  Whole 16-byte loads need the run's source to span 16
 * bytes or more; windows start at the lowest byte not yet covered, or
 * lower, to end inside that span. */

_Static_assert(PF_SHUFFLE_CHUNKS * 16 >= PF_PROGRAM_BYTES, "a chunk per 16 bytes of a run");

static int build_shuffle_program(pf_plan *p, const int64_t *off, int64_t items)
{
    const int64_t e = p->itemsize, bytes = items * e;
    if (items < 1 || bytes < 16 || bytes > PF_PROGRAM_BYTES)
        return 0;
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    for (int64_t b = 0; b < bytes; b++) {
        const int64_t src = source_byte(off, e, b);
        lo = src < lo ? src : lo;
        hi = src > hi ? src : hi;
    }
    if (hi - lo < 15)
        return 0;
    const int chunks = (int)((bytes + 15) / 16);
    for (int c = 0; c < chunks; c++) {
        const int64_t first = 16 * (int64_t)c < bytes - 16 ? 16 * (int64_t)c : bytes - 16;
        int64_t *base = p->shuffle_base[c];
        int windows = 0;
        int64_t low = 0;
        while (lowest_uncovered(off, e, first, 16, base, windows, 16, &low)) {
            if (windows == PF_SHUFFLE_WINDOWS)
                return 0; /* too spread out */
            base[windows++] = low < hi - 15 ? low : hi - 15;
        }
        memset(p->shuffle_index[c], 0x80, sizeof p->shuffle_index[c]); /* pshufb: zero */
        for (int64_t b = first; b < first + 16; b++) {
            const int64_t src = source_byte(off, e, b);
            int w = 0;
            while (!(src >= base[w] && src - base[w] < 16))
                w++;
            p->shuffle_index[c][w][b - first] = (uint8_t)(src - base[w]);
        }
        p->shuffle_windows[c] = windows;
    }
    p->program_chunks = chunks;
    p->program_items = items;
    p->program_shuffle = 1;
    return 1;
}

/* `groups` runs of a shuffle program, as run_program. */
__attribute__((target("avx2"))) static void run_shuffle_program(
    const pf_plan *p, char *d, const char *s, int64_t groups, int64_t s_step, int64_t d_step)
{
    const int chunks = p->program_chunks;
    const int64_t bytes = p->program_items * p->itemsize;
    for (int64_t g = 0; g < groups; g++, s += s_step, d += d_step) {
        for (int c = 0; c < chunks; c++) {
            const int64_t first = 16 * (int64_t)c < bytes - 16 ? 16 * (int64_t)c : bytes - 16;
            __m128i acc = _mm_shuffle_epi8(LOADU(s + p->shuffle_base[c][0]),
                                           LOADU(p->shuffle_index[c][0]));
            for (int w = 1; w < p->shuffle_windows[c]; w++)
                acc = _mm_or_si128(acc, _mm_shuffle_epi8(LOADU(s + p->shuffle_base[c][w]),
                                                         LOADU(p->shuffle_index[c][w])));
            STOREU(d + first, acc);
        }
    }
}

pf_program_fn2 pf_program_runner(const pf_plan *p)
{
    return p->program_shuffle ? run_shuffle_program : run_program;
}

void pf_stream_copy(char *dst, const char *src, int64_t n)
{
    int64_t head = (int64_t)(-(uintptr_t)dst & 63); /* to a line: whole lines only */
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
    memcpy(dst, src, (size_t)n);
}

void pf_stream_fence(void) { _mm_sfence(); }

static pf_micro_kernel square_micro_for(int64_t e, int64_t rows, int64_t cols, int simd);

pf_micro_kernel pf_micro_for(int64_t e, int64_t rows, int64_t cols, int64_t d_row, int simd)
{
    pf_micro_kernel none = {NULL, NULL, 0, 0, PF_SIMD_NONE};
    if (simd < PF_SIMD_SSE2)
        return none;
    if (d_row == cols * e) { /* packed narrow rows: interleave planes */
        /* Only where no square block fits the row (measured: 6 float64
         * columns, 0.73 of memcpy by 6-plane shuffles, 0.94 by 4x4 blocks
         * with an overlapping last one). */
        pf_micro_kernel square = square_micro_for(e, rows, cols, simd);
        const int square_fits = square.fn != NULL && square.cols <= cols;
        pf_micro_fn shuffled = cols == 3 && e == 1 ? ssse3_16x3_e1
                                                   : shuffle_interleave_for(cols, e);
        /* (the byte shuffles pay for items of 1, 2 and 4 bytes; 8-byte items
         * move faster one by one: 3 float64 planes, 0.75 of memcpy by
         * shuffles, 0.93 by items) */
        if (shuffled && simd >= PF_SIMD_AVX2 && !square_fits && e <= 4) /* AVX2 implies SSSE3 */
            return (pf_micro_kernel){shuffled, NULL, 16 / e, cols, PF_SIMD_AVX2};
        pf_micro_fn il = interleave_for(cols, e);
        if (il && !square_fits)
            return (pf_micro_kernel){il, NULL, 16 / e, cols, PF_SIMD_SSE2};
    }
    /* 9 to 15 one-byte columns, which no other block fits (measured: 0.12
     * to 0.21 of memcpy by item moves, 0.54 to 0.56 by these blocks) */
    const pf_micro_fn narrow = e == 1 ? narrow_e1_for(cols) : NULL;
    if (narrow != NULL)
        return (pf_micro_kernel){narrow, NULL, 16, cols, PF_SIMD_SSE2};
    return square_micro_for(e, rows, cols, simd);
}

/* The AVX2 blocks of 1- and 2-byte items are twice as tall as SSE2's: only
 * for rows that hold a whole number of them, or two or more (ragged rows
 * are then one more block overlapping the previous, see blocked_tile;
 * measured: 42 rows of bytes, 0.66x as fast with a 32-row block and 10
 * rows of item moves as with 16-row blocks). */
static int tall_enough(int64_t rows, int64_t block_rows)
{
    return rows % block_rows == 0 || rows >= 2 * block_rows;
}

static pf_micro_kernel square_micro_for(int64_t e, int64_t rows, int64_t cols, int simd)
{
    pf_micro_kernel none = {NULL, NULL, 0, 0, PF_SIMD_NONE};
    switch (e) {
    case 1:
        if (simd >= PF_SIMD_AVX2 && tall_enough(rows, 32))
            return (pf_micro_kernel){avx2_32x16_e1, avx2_32x16_e1_table, 32, 16, PF_SIMD_AVX2};
        return (pf_micro_kernel){sse2_16x16_e1, sse2_16x16_e1_table, 16, 16, PF_SIMD_SSE2};
    case 2:
        if (simd >= PF_SIMD_AVX2 && tall_enough(rows, 16))
            return (pf_micro_kernel){avx2_16x8_e2, avx2_16x8_e2_table, 16, 8, PF_SIMD_AVX2};
        return (pf_micro_kernel){sse2_8x8_e2, sse2_8x8_e2_table, 8, 8, PF_SIMD_SSE2};
    case 4: /* the wide block only where rows hold a whole one */
        if (simd >= PF_SIMD_AVX2 && cols >= 8)
            return (pf_micro_kernel){avx2_8x8_e4, avx2_8x8_e4_table, 8, 8, PF_SIMD_AVX2};
        return (pf_micro_kernel){sse2_4x4_e4, sse2_4x4_e4_table, 4, 4, PF_SIMD_SSE2};
    case 8:
        if (simd >= PF_SIMD_AVX2 && cols >= 4)
            return (pf_micro_kernel){avx2_4x4_e8, avx2_4x4_e8_table, 4, 4, PF_SIMD_AVX2};
        /* No 2x2 block: 8-byte item moves are as fast (measured: 3 float64
         * columns, 0.66 of memcpy with 2x2 blocks, 0.87 by items). */
        return none;
    default:
        return none;
    }
}

pf_micro_kernel pf_square_micro_for(int64_t e, int64_t rows, int64_t cols, int simd)
{
    pf_micro_kernel none = {NULL, NULL, 0, 0, PF_SIMD_NONE};
    return simd < PF_SIMD_SSE2 ? none : square_micro_for(e, rows, cols, simd);
}

#else /* not x86-64: the portable loops only */

void pf_stream_copy(char *dst, const char *src, int64_t n)
{
    memcpy(dst, src, (size_t)n);
}

void pf_stream_fence(void) {}

pf_micro_kernel pf_micro_for(int64_t e, int64_t rows, int64_t cols, int64_t d_row, int simd)
{
    (void)e, (void)rows, (void)cols, (void)d_row, (void)simd;
    return (pf_micro_kernel){NULL, NULL, 0, 0, PF_SIMD_NONE};
}

pf_micro_kernel pf_square_micro_for(int64_t e, int64_t rows, int64_t cols, int simd)
{
    (void)e, (void)rows, (void)cols, (void)simd;
    return (pf_micro_kernel){NULL, NULL, 0, 0, PF_SIMD_NONE};
}

pf_rows_simd_fn pf_reverse_for(int64_t e, int simd)
{
    (void)e, (void)simd;
    return NULL;
}

pf_rows_simd_fn pf_gather_for(int64_t e, int64_t s_col, int simd)
{
    (void)e, (void)s_col, (void)simd;
    return NULL;
}

int pf_build_program(pf_plan *p, const int64_t *off, int64_t items)
{
    (void)p, (void)off, (void)items;
    return 0;
}

pf_program_fn2 pf_program_runner(const pf_plan *p)
{
    (void)p;
    return NULL;
}

#endif
