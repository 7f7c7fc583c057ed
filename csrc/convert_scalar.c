/* Portable conversion loops: every (source, destination) element type pair,
 * with optional scale and offset, each value exactly as numpy computes it.
 *
 * numpy's rules, followed here:
 * - casts are C casts (int -> float rounds to nearest even, once);
 * - float16 is numpy's software conversion: round to nearest even from
 *   float32 and directly from float64 (no double rounding), NaN payloads
 *   kept without setting the quiet bit; integers go through float32 first
 *   (exact: every integer that does not overflow float16 fits float32);
 * - float16 arithmetic is float32 arithmetic rounded back to float16;
 * - integer results wrap: computed here in uint64 (unsigned overflow is
 *   defined), the low bytes stored;
 * - float -> integer of NaN, an infinity or a value that truncates outside
 *   the destination's range is platform-defined in numpy and undefined in
 *   C: it is never converted, the loop reports it instead.
 *
 * Multiplication and addition are separate statements (and the build has
 * -ffp-contract=off): no fused multiply-add, as numpy's two ufunc passes.
 */
#include "internal.h"

#include <string.h>

/* ---- float16 <-> float32 / float64, bit exact ---- */

static uint32_t f32_bits(float x) { uint32_t b; memcpy(&b, &x, 4); return b; }
static float bits_f32(uint32_t b) { float x; memcpy(&x, &b, 4); return x; }

/* Round-to-nearest-even right shift of a positive significand by 1..63. */
static uint64_t shift_rne(uint64_t sig, int shift)
{
    const uint64_t q = sig >> shift, rem = sig & ((UINT64_C(1) << shift) - 1);
    const uint64_t half = UINT64_C(1) << (shift - 1);
    return q + (rem > half || (rem == half && (q & 1)));
}

uint16_t pf_f32_to_f16(float x)
{
    const uint32_t f = f32_bits(x);
    const uint16_t sign = (uint16_t)((f >> 16) & 0x8000u);
    const int e = (int)((f >> 23) & 0xff);
    const uint32_t mant = f & 0x7fffffu;
    if (e == 0xff) { /* inf, NaN: the payload's top bits, still a NaN */
        uint16_t h = (uint16_t)(0x7c00u | (mant >> 13));
        return (uint16_t)(sign | (mant != 0 && h == 0x7c00u ? 0x7c01u : h));
    }
    if (e >= 143) /* |x| >= 2**16 */
        return (uint16_t)(sign | 0x7c00u);
    if (e >= 113) /* a normal float16, or rounds up into infinity */
        return (uint16_t)(sign + shift_rne(((uint64_t)(e - 112) << 23) | mant, 13));
    if (e < 102) /* |x| < 2**-25: rounds to zero */
        return sign;
    /* Subnormal float16: units of 2**-24. */
    return (uint16_t)(sign + shift_rne(0x800000u | mant, 126 - e));
}

static uint16_t double_to_half(double x)
{
    uint64_t d;
    memcpy(&d, &x, 8);
    const uint16_t sign = (uint16_t)((d >> 48) & 0x8000u);
    const int e = (int)((d >> 52) & 0x7ff);
    const uint64_t mant = d & ((UINT64_C(1) << 52) - 1);
    if (e == 0x7ff) {
        uint16_t h = (uint16_t)(0x7c00u | (mant >> 42));
        return (uint16_t)(sign | (mant != 0 && h == 0x7c00u ? 0x7c01u : h));
    }
    if (e >= 1039)
        return (uint16_t)(sign | 0x7c00u);
    if (e >= 1009)
        return (uint16_t)(sign + shift_rne(((uint64_t)(e - 1008) << 52) | mant, 42));
    if (e < 998)
        return sign;
    return (uint16_t)(sign + shift_rne((UINT64_C(1) << 52) | mant, 1051 - e));
}

float pf_f16_to_f32(uint16_t h)
{
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t e = h & 0x7c00u, mant = h & 0x3ffu;
    if (e == 0x7c00u) /* inf, NaN: payload kept, not quieted */
        return bits_f32(sign | 0x7f800000u | (mant << 13));
    if (e != 0)
        return bits_f32(sign | (((e >> 10) + 112) << 23) | (mant << 13));
    const float v = (float)mant * 0x1p-24f; /* subnormal or zero: exact */
    return bits_f32(sign | f32_bits(v));
}

static double half_to_double(uint16_t h)
{
    const uint64_t sign = (uint64_t)(h & 0x8000u) << 48;
    const uint64_t e = h & 0x7c00u, mant = h & 0x3ffu;
    uint64_t d;
    double v;
    if (e == 0x7c00u) {
        d = sign | (UINT64_C(0x7ff) << 52) | (mant << 42);
    } else if (e != 0) {
        d = sign | (((e >> 10) + 1008) << 52) | (mant << 42);
    } else {
        v = (double)mant * 0x1p-24;
        memcpy(&d, &v, 8);
        d |= sign;
    }
    memcpy(&v, &d, 8);
    return v;
}

/* ---- float -> integer: only values that truncate into the range ---- */

typedef struct {
    double above, below; /* convertible iff above < x < below */
    int unsigned64;
} int_range;

/* Converts x if it truncates into the range; else sets *bad. */
static uint64_t float_to_int(double x, const int_range *r, int *bad)
{
    if (!(x > r->above && x < r->below)) { /* NaN fails too */
        *bad = 1;
        return 0;
    }
    return r->unsigned64 ? (uint64_t)x : (uint64_t)(int64_t)x;
}

/* -2**63 - 2048 is the double just below -2**63. */
static const int_range range_i8 = {-129.0, 128.0, 0}, range_u8 = {-1.0, 256.0, 0},
    range_i16 = {-32769.0, 32768.0, 0}, range_u16 = {-1.0, 65536.0, 0},
    range_i32 = {-2147483649.0, 2147483648.0, 0}, range_u32 = {-1.0, 4294967296.0, 0},
    range_i64 = {-0x1.0000000000001p63, 0x1p63, 0}, range_u64 = {-1.0, 0x1p64, 1};

/* ---- readers: source element at p as each destination's compute type ---- */

#define LOAD_AS(T, p) T x; memcpy(&x, p, sizeof x)

#define INT_SOURCE(S, T)                                                          \
    static inline T S##_val(const char *p) { LOAD_AS(T, p); return x; }             \
    static inline float S##_f32(const char *p) { return (float)S##_val(p); }        \
    static inline double S##_f64(const char *p) { return (double)S##_val(p); }      \
    static inline uint16_t S##_f16(const char *p) { return pf_f32_to_f16(S##_f32(p)); } \
    static inline uint64_t S##_int(const char *p, const int_range *r, int *bad)     \
    {                                                                               \
        (void)r;                                                                    \
        (void)bad;                                                                  \
        return (uint64_t)S##_val(p); /* sign-extends, modulo 2**64 */              \
    }

INT_SOURCE(i8, int8_t)
INT_SOURCE(u8, uint8_t)
INT_SOURCE(i16, int16_t)
INT_SOURCE(u16, uint16_t)
INT_SOURCE(i32, int32_t)
INT_SOURCE(u32, uint32_t)
INT_SOURCE(i64, int64_t)
INT_SOURCE(u64, uint64_t)

/* bool: any nonzero byte is True, 1. */
static inline uint8_t b_val(const char *p) { LOAD_AS(uint8_t, p); return x != 0; }
static inline float b_f32(const char *p) { return (float)b_val(p); }
static inline double b_f64(const char *p) { return (double)b_val(p); }
static inline uint16_t b_f16(const char *p) { return b_val(p) ? 0x3c00u : 0; }
static inline uint64_t b_int(const char *p, const int_range *r, int *bad)
{
    (void)r;
    (void)bad;
    return b_val(p);
}

static inline float f32_f32(const char *p) { LOAD_AS(float, p); return x; }
static inline double f32_f64(const char *p) { return (double)f32_f32(p); }
static inline uint16_t f32_f16(const char *p) { return pf_f32_to_f16(f32_f32(p)); }
static inline uint64_t f32_int(const char *p, const int_range *r, int *bad)
{
    return float_to_int(f32_f32(p), r, bad);
}

static inline double f64_f64(const char *p) { LOAD_AS(double, p); return x; }
static inline float f64_f32(const char *p) { return (float)f64_f64(p); }
static inline uint16_t f64_f16(const char *p) { return double_to_half(f64_f64(p)); }
static inline uint64_t f64_int(const char *p, const int_range *r, int *bad)
{
    return float_to_int(f64_f64(p), r, bad);
}

static inline uint16_t f16_f16(const char *p) { LOAD_AS(uint16_t, p); return x; }
static inline float f16_f32(const char *p) { return pf_f16_to_f32(f16_f16(p)); }
static inline double f16_f64(const char *p) { return half_to_double(f16_f16(p)); }
static inline uint64_t f16_int(const char *p, const int_range *r, int *bad)
{
    return float_to_int((double)f16_f32(p), r, bad);
}

/* ---- loops: n elements, source contiguous, factor index j of f->period ---- */

#define LOOP_FLOAT(S, ES, D, T, SUFFIX)                                           \
    static int S##_to_##D(char *d, const char *s, int64_t n, const pf_factors *f,  \
                          int64_t j)                                               \
    {                                                                              \
        const T *fs = f->scale, *fo = f->offset;                                   \
        for (int64_t i = 0; i < n; i++) {                                          \
            T v = S##_##SUFFIX(s + i * ES);                                        \
            if (fs)                                                                \
                v = v * fs[j];                                                     \
            if (fo)                                                                \
                v = v + fo[j];                                                     \
            memcpy(d + i * (int64_t)sizeof(T), &v, sizeof v);                      \
            if (++j == f->period)                                                  \
                j = 0;                                                             \
        }                                                                          \
        return 0;                                                                  \
    }

/* float16: factors are float32 (exact float16 values); each step rounds. */
#define LOOP_F16(S, ES)                                                            \
    static int S##_to_f16(char *d, const char *s, int64_t n, const pf_factors *f,  \
                          int64_t j)                                               \
    {                                                                              \
        const float *fs = f->scale, *fo = f->offset;                               \
        for (int64_t i = 0; i < n; i++) {                                          \
            uint16_t h = S##_f16(s + i * ES);                                      \
            if (fs)                                                                \
                h = pf_f32_to_f16(pf_f16_to_f32(h) * fs[j]);                       \
            if (fo)                                                                \
                h = pf_f32_to_f16(pf_f16_to_f32(h) + fo[j]);                       \
            memcpy(d + 2 * i, &h, 2);                                              \
            if (++j == f->period)                                                  \
                j = 0;                                                             \
        }                                                                          \
        return 0;                                                                  \
    }

/* Integers: uint64 arithmetic (factors sign-extended), low bytes stored. */
#define LOOP_INT(S, ES, D, UT, RANGE)                                              \
    static int S##_to_##D(char *d, const char *s, int64_t n, const pf_factors *f,  \
                          int64_t j)                                               \
    {                                                                              \
        const uint64_t *fs = f->scale, *fo = f->offset;                            \
        int bad = 0;                                                               \
        for (int64_t i = 0; i < n; i++) {                                          \
            uint64_t v = S##_int(s + i * ES, &RANGE, &bad);                        \
            if (fs)                                                                \
                v = v * fs[j];                                                     \
            if (fo)                                                                \
                v = v + fo[j];                                                     \
            const UT out = (UT)v;                                                  \
            memcpy(d + i * (int64_t)sizeof(UT), &out, sizeof out);                 \
            if (++j == f->period)                                                  \
                j = 0;                                                             \
        }                                                                          \
        return bad;                                                                \
    }

#define LOOPS_FROM(S, ES)                                                          \
    LOOP_INT(S, ES, i8, uint8_t, range_i8)                                         \
    LOOP_INT(S, ES, u8, uint8_t, range_u8)                                         \
    LOOP_INT(S, ES, i16, uint16_t, range_i16)                                      \
    LOOP_INT(S, ES, u16, uint16_t, range_u16)                                      \
    LOOP_INT(S, ES, i32, uint32_t, range_i32)                                      \
    LOOP_INT(S, ES, u32, uint32_t, range_u32)                                      \
    LOOP_INT(S, ES, i64, uint64_t, range_i64)                                      \
    LOOP_INT(S, ES, u64, uint64_t, range_u64)                                      \
    LOOP_F16(S, ES)                                                                \
    LOOP_FLOAT(S, ES, f32, float, f32)                                             \
    LOOP_FLOAT(S, ES, f64, double, f64)

LOOPS_FROM(b, 1)
LOOPS_FROM(i8, 1)
LOOPS_FROM(u8, 1)
LOOPS_FROM(i16, 2)
LOOPS_FROM(u16, 2)
LOOPS_FROM(i32, 4)
LOOPS_FROM(u32, 4)
LOOPS_FROM(i64, 8)
LOOPS_FROM(u64, 8)
LOOPS_FROM(f16, 2)
LOOPS_FROM(f32, 4)
LOOPS_FROM(f64, 8)

/* Rows: sources in pf_type order; columns: destinations (bool: none). */
#define ROW(S) {NULL, S##_to_i8, S##_to_u8, S##_to_i16, S##_to_u16, S##_to_i32,       \
                S##_to_u32, S##_to_i64, S##_to_u64, S##_to_f16, S##_to_f32, S##_to_f64}

static const pf_convert_fn loops[PF_TYPE_COUNT][PF_TYPE_COUNT] = {
    ROW(b), ROW(i8), ROW(u8), ROW(i16), ROW(u16), ROW(i32),
    ROW(u32), ROW(i64), ROW(u64), ROW(f16), ROW(f32), ROW(f64),
};

pf_convert_fn pf_convert_portable(int src_type, int dst_type)
{
    if (src_type < 0 || src_type >= PF_TYPE_COUNT || dst_type < 0 || dst_type >= PF_TYPE_COUNT)
        return NULL;
    return loops[src_type][dst_type];
}
