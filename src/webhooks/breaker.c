/* breaker.c - per-endpoint circuit breaker, retry backoff, and what a
 * request's result means.
 *
 * DESIGN
 * ------
 * Breaker: CLOSED counts consecutive failed requests; at
 * webhooks.breaker.failure_threshold it turns OPEN and no request starts
 * for webhooks.breaker.cooldown_ms. Then it turns HALF_OPEN and lets one
 * request through (the endpoint sends one request at a time, so the
 * probe is simply the next batch): success closes it, failure reopens it
 * for another cool-down. While it is open, events keep queueing in the
 * endpoint's bounded queue. A 4xx that is not retried counts as success
 * here: the endpoint is up and answering.
 *
 * Backoff: retry n waits min(initial * 2^(n-1), cap) with equal jitter
 * (half the step fixed, half random), so retries from many endpoints do
 * not synchronise and each step is still at least half the previous cap.
 *
 * Outcome: 2xx delivered; transport errors (connect, timeout, reset),
 * 5xx, 429 and 408 are retried; any other status (other 4xx, and 1xx/3xx
 * since redirects are not followed) is rejected for good.
 *
 * THREADING
 * ---------
 * Pure functions over a struct the caller owns (the endpoint's sender).
 */
#include "webhooks_internal.h"

const char *const hd_webhooks__breaker_names[3] = {"closed", "half-open", "open"};

void hd_webhooks__breaker_init(hd_wh_breaker *br, uint32_t threshold, uint32_t cooldown_ms)
{
    *br = (hd_wh_breaker){.state = HD_WH_CLOSED, .threshold = threshold ? threshold : 1, .cooldown_ms = cooldown_ms};
}

bool hd_webhooks__breaker_allow(hd_wh_breaker *br, uint64_t now, uint64_t *retry_at)
{
    if (br->state != HD_WH_OPEN)
        return true;
    uint64_t until = br->opened_ms + br->cooldown_ms;
    if (now >= until) {
        br->state = HD_WH_HALF_OPEN;
        return true;
    }
    *retry_at = until;
    return false;
}

void hd_webhooks__breaker_record(hd_wh_breaker *br, bool failure, uint64_t now)
{
    if (!failure) {
        br->state = HD_WH_CLOSED;
        br->failures = 0;
        return;
    }
    br->failures++;
    if (br->state == HD_WH_HALF_OPEN || (br->state == HD_WH_CLOSED && br->failures >= br->threshold)) {
        br->state = HD_WH_OPEN;
        br->opened_ms = now;
    }
}

uint64_t hd_webhooks__backoff_ms(uint32_t attempt, uint32_t initial_ms, uint32_t cap_ms, uint32_t rnd)
{
    if (attempt == 0)
        return 0;
    uint64_t step = initial_ms ? initial_ms : 1;
    for (uint32_t i = 1; i < attempt && step < cap_ms; i++)
        step *= 2;
    if (step > cap_ms)
        step = cap_ms;
    uint64_t half = step / 2;
    return (step - half) + (half ? rnd % (half + 1) : 0);
}

hd_wh_outcome hd_webhooks__classify(CURLcode cc, long status)
{
    if (cc != CURLE_OK)
        return HD_WH_RETRY;
    if (status >= 200 && status < 300)
        return HD_WH_DELIVERED;
    if (status >= 500 || status == 429 || status == 408 || status == 0)
        return HD_WH_RETRY;
    return HD_WH_REJECTED;
}
