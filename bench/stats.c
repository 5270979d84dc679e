/* stats.c - herald_bench's latency histograms and result merging.
 *
 * DESIGN
 * ------
 * A log-linear histogram (the HdrHistogram idea, much reduced): values
 * below 128 us have a bucket each; above, every power of two is split into
 * 64 equal sub-buckets, so a reported percentile is within 1/64 of the true
 * value. The count, sum, min and max are exact. Merging adds buckets, so
 * the parent gets exact percentiles over all workers.
 *
 * THREADING
 * ---------
 * No shared state; a histogram belongs to one process.
 */
#include <string.h>

#include "bench.h"

static unsigned hist_index(uint64_t v)
{
    if (v < BENCH_HIST_LINEAR)
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    if (msb > BENCH_HIST_MAX_MSB)
        return BENCH_HIST_BUCKETS - 1;
    unsigned sub = (unsigned)(v >> (msb - 6)) & (BENCH_HIST_SUB - 1);
    return BENCH_HIST_LINEAR + (msb - 7) * BENCH_HIST_SUB + sub;
}

/* Largest value that falls in bucket i. */
static uint64_t hist_upper(unsigned i)
{
    if (i < BENCH_HIST_LINEAR)
        return i;
    unsigned k = i - BENCH_HIST_LINEAR;
    unsigned msb = 7 + k / BENCH_HIST_SUB;
    uint64_t low = (uint64_t)(BENCH_HIST_SUB + k % BENCH_HIST_SUB) << (msb - 6);
    return low + ((uint64_t)1 << (msb - 6)) - 1;
}

void bench_hist_record(bench_hist *h, uint64_t us)
{
    if (h->count == 0 || us < h->min)
        h->min = us;
    if (us > h->max)
        h->max = us;
    h->count++;
    h->sum += us;
    h->b[hist_index(us)]++;
}

void bench_hist_merge(bench_hist *into, const bench_hist *from)
{
    if (from->count == 0)
        return;
    if (into->count == 0 || from->min < into->min)
        into->min = from->min;
    if (from->max > into->max)
        into->max = from->max;
    into->count += from->count;
    into->sum += from->sum;
    for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++)
        into->b[i] += from->b[i];
}

uint64_t bench_hist_pct(const bench_hist *h, double p)
{
    if (h->count == 0)
        return 0;
    uint64_t rank = (uint64_t)(p / 100.0 * (double)h->count + 0.999999);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= rank) {
            uint64_t v = hist_upper(i);
            if (v > h->max)
                v = h->max;
            return v < h->min ? h->min : v;
        }
    }
    return h->max;
}

void bench_result_merge(bench_result *into, const bench_result *from)
{
    for (int i = 0; i < BC__COUNT; i++) {
        if (i == BC_FIRST_US) {
            if (from->c[i] && (!into->c[i] || from->c[i] < into->c[i]))
                into->c[i] = from->c[i];
        } else if (i == BC_LAST_US) {
            if (from->c[i] > into->c[i])
                into->c[i] = from->c[i];
        } else {
            into->c[i] += from->c[i];
        }
    }
    for (int i = 0; i < BH__COUNT; i++)
        bench_hist_merge(&into->h[i], &from->h[i]);
}

bool bench_bitset_set(bench_bitset *s, uint64_t i)
{
    size_t byte = (size_t)(i >> 3);
    if (byte >= s->cap) {
        size_t cap = s->cap ? s->cap : 64;
        while (cap <= byte)
            cap *= 2;
        s->bits = hd_realloc(s->bits, cap);
        memset(s->bits + s->cap, 0, cap - s->cap);
        s->cap = cap;
    }
    uint8_t m = (uint8_t)(1u << (i & 7));
    if (s->bits[byte] & m)
        return true;
    s->bits[byte] |= m;
    s->count++;
    return false;
}

void bench_bitset_free(bench_bitset *s)
{
    hd_free(s->bits);
    memset(s, 0, sizeof *s);
}
