/* http_limits.c - the per-app request rate limit of the HTTP API:
 * max_http_requests_per_second, answered with 429 and Retry-After.
 *
 * DESIGN
 * ------
 * A token bucket of `rate` tokens per second holding at most one second's
 * worth (burst = rate), so a backend may send a second's requests at once
 * but not sustain more. It is kept in the GCRA form: instead of a token
 * count and a refill time (two values, which would need a lock), one
 * "theoretical arrival time" tat: each admitted request moves it one
 * interval T = 1/rate further, and a request is refused while tat lies
 * more than (burst - 1) * T in the future. That is the same bucket
 * (tokens = burst - (tat - now) / T), held in one 64-bit word that a
 * compare-and-swap updates, so the io threads that serve requests of the
 * same app never wait on each other. Zero means "full", so hd_app's
 * zeroed memory needs no initialisation, and there is no first-use race.
 *
 * A refused request takes nothing: a client that keeps retrying too early
 * does not push its own recovery further away.
 *
 * Only authenticated requests are charged (the call sits after the
 * signature check), so nobody without the app's secret can spend an app's
 * budget.
 *
 * THREADING
 * ---------
 * Any thread. The bucket word is the only shared state, accessed with
 * atomics only.
 */
#include "http_internal.h"

#include <time.h>

#define NS_PER_S 1000000000ull

uint64_t hd_http__bucket_take(_Atomic uint64_t *tat_ns, uint32_t rate, uint32_t burst, uint64_t now_ns)
{
    if (rate == 0)
        return 0;
    uint64_t interval = NS_PER_S / rate;
    uint64_t tolerance = (uint64_t)(burst ? burst - 1 : 0) * interval;
    uint64_t old = atomic_load_explicit(tat_ns, memory_order_relaxed);
    for (;;) {
        uint64_t tat = old > now_ns ? old : now_ns;
        if (tat - now_ns > tolerance)
            return tat - now_ns - tolerance;
        /* relaxed is enough: the word orders nothing but itself */
        if (atomic_compare_exchange_weak_explicit(tat_ns, &old, tat + interval, memory_order_relaxed,
                                                  memory_order_relaxed))
            return 0;
    }
}

unsigned hd_http__retry_after_s(uint64_t wait_ns)
{
    uint64_t s = (wait_ns + NS_PER_S - 1) / NS_PER_S;
    return s == 0 ? 1u : (s > 86400u ? 86400u : (unsigned)s);
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

bool hd_http__rate_admit(hd_http_ctx *c)
{
    uint32_t rate = c->cfg->max_http_requests_per_second;
    uint64_t wait = hd_http__bucket_take(&c->app->http_tat_ns, rate, rate, mono_ns());
    if (wait == 0)
        return true;
    hd_http__error(c->res, 429, "Too many requests: the app's limit is %u per second", (unsigned)rate);
    c->res->retry_after_s = hd_http__retry_after_s(wait);
    return false;
}
