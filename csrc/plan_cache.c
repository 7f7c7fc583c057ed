/* A small cache of recent plans, so that a pipeline repeating one layout
 * plans it once (issue 13): planning a tiny block can cost several times
 * the copy itself (measured: a 6 KB uint8 channels_first batch, 3.3 us to
 * build its byte-permute program, 0.44 us to run it).
 *
 * Direct-mapped, PF_PLAN_CACHE_SLOTS slots keyed by everything a plan
 * depends on: the arguments and the process-wide settings they are read
 * with (SIMD level, thread count, streaming, bytes per thread).  A slot is
 * locked with a flag that is only ever tried, never waited on: a busy slot
 * is a miss, so threads never block each other (nor a child after fork).
 */
#include "internal.h"

#include <stdatomic.h>
#include <string.h>

#define PF_PLAN_CACHE_SLOTS 64

typedef struct {
    _Atomic int busy;
    int valid;
    pf_plan_key key;
    pf_plan plan;
} slot;

static slot slots[PF_PLAN_CACHE_SLOTS];

/* FNV-1a over the key's words. */
static unsigned slot_of(const pf_plan_key *k)
{
    uint64_t h = 1469598103934665603u;
    const int64_t *w = &k->ndim;
    const size_t words = sizeof *k / sizeof(int64_t);
    for (size_t i = 0; i < words; i++)
        h = (h ^ (uint64_t)w[i]) * 1099511628211u;
    return (unsigned)(h ^ h >> 32) % PF_PLAN_CACHE_SLOTS;
}

int pf_plan_key_make(pf_plan_key *k, int ndim, const int64_t *shape,
                     const int64_t *src_strides, int64_t itemsize,
                     const int64_t settings[PF_PLAN_SETTINGS])
{
    if (ndim > PF_PLAN_CACHE_DIMS)
        return 0;
    memset(k, 0, sizeof *k); /* unused axes compare equal */
    k->ndim = ndim;
    k->itemsize = itemsize;
    for (int i = 0; i < PF_PLAN_SETTINGS; i++)
        k->settings[i] = settings[i];
    for (int d = 0; d < ndim; d++) {
        k->shape[d] = shape[d];
        k->strides[d] = src_strides[d];
    }
    return 1;
}

int pf_plan_cache_get(pf_plan *p, const pf_plan_key *k)
{
    slot *s = &slots[slot_of(k)];
    if (atomic_exchange_explicit(&s->busy, 1, memory_order_acquire))
        return 0;
    int hit = s->valid && memcmp(&s->key, k, sizeof *k) == 0;
    if (hit)
        memcpy(p, &s->plan, sizeof *p);
    atomic_store_explicit(&s->busy, 0, memory_order_release);
    return hit;
}

void pf_plan_cache_put(const pf_plan *p, const pf_plan_key *k)
{
    slot *s = &slots[slot_of(k)];
    if (atomic_exchange_explicit(&s->busy, 1, memory_order_acquire))
        return;
    s->key = *k;
    memcpy(&s->plan, p, sizeof *p);
    s->valid = 1;
    atomic_store_explicit(&s->busy, 0, memory_order_release);
}
