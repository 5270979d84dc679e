/* stats.c - the webhook pool's Prometheus text (hd_webhooks_metrics).
 *
 * DESIGN
 * ------
 * Every counter is a relaxed atomic written where the work happens
 * (reporters: queued and queue_full drops; senders: the rest) and read
 * here without locks: each value is atomic, the set is not a snapshot.
 * Per-endpoint series carry app="<id>",url="<url>"; pool-wide ones carry
 * no label. Every endpoint ever made is listed (one a reload dropped keeps
 * its final counts), so series stay continuous across reloads. Histograms
 * render their +Inf bucket as the sum of the buckets read, so it always
 * equals _count. Names and meanings are listed in README.md (Webhooks).
 *
 * THREADING
 * ---------
 * Any thread (the metrics thread), while the pool exists.
 */
#include <inttypes.h>

#include "metrics/metrics.h"
#include "webhooks_internal.h"

const uint32_t hd_webhooks__batch_le[HD_WH_BATCH_BUCKETS - 1] = {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000};
const uint32_t hd_webhooks__lat_le_ms[HD_WH_LAT_BUCKETS - 1] = {5,    10,   25,    50,    100,   250,   500,
                                                                1000, 2500, 5000, 10000, 30000, 60000, 300000};

#define LOAD(p) ((uint64_t)atomic_load_explicit((p), memory_order_relaxed))

typedef struct ep_row {
    const char *name, *type, *help;
    size_t offset; /* into hd_wh_counters */
} ep_row;

#define CTR(f) offsetof(hd_wh_counters, f)

static const ep_row ep_rows[] = {
    {"herald_webhook_events_queued_total", "counter", "Events accepted into the endpoint's queue.", CTR(queued)},
    {"herald_webhook_events_sent_total", "counter", "Events delivered (2xx).", CTR(sent)},
    {"herald_webhook_retried_total", "counter",
     "Failed requests (network error, timeout, 5xx, 429) whose events were kept for a retry.", CTR(retried)},
};

static void render_counters(const hd_webhooks *wh, hd_buf *out)
{
    for (size_t r = 0; r < sizeof ep_rows / sizeof ep_rows[0]; r++) {
        hd_metrics_family(out, ep_rows[r].name, ep_rows[r].type, ep_rows[r].help);
        HD_WH_EACH(ep, wh->all, next_all) {
            const atomic_uint_fast64_t *v = (const atomic_uint_fast64_t *)((const char *)&ep->ctr + ep_rows[r].offset);
            hd_buf_printf(out, "%s{%s} %" PRIu64 "\n", ep_rows[r].name, ep->labels, LOAD(v));
        }
    }
    static const char *const outcomes[3] = {"delivered", "retry", "rejected"};
    hd_metrics_family(out, "herald_webhook_requests_total", "counter",
           "Requests finished, by outcome (delivered 2xx, retry, rejected 4xx).");
    HD_WH_EACH(ep, wh->all, next_all)
        for (int o = 0; o < 3; o++)
            hd_buf_printf(out, "herald_webhook_requests_total{%s,outcome=\"%s\"} %" PRIu64 "\n", ep->labels,
                          outcomes[o], LOAD(&ep->ctr.requests[o]));
    hd_metrics_family(out, "herald_webhook_dropped_total", "counter",
           "Events given up on, by reason: queue_full (oldest dropped), rejected (4xx), retry_expired "
           "(webhooks.retry_max_seconds), shutdown.");
    HD_WH_EACH(ep, wh->all, next_all)
        for (int d = 0; d < HD_WH_NDROPS; d++)
            hd_buf_printf(out, "herald_webhook_dropped_total{%s,reason=\"%s\"} %" PRIu64 "\n", ep->labels,
                          hd_webhooks__drop_names[d], LOAD(&ep->ctr.dropped[d]));
}

static void render_gauges(const hd_webhooks *wh, hd_buf *out)
{
    hd_metrics_family(out, "herald_webhook_queue_depth", "gauge",
                      "Events waiting for the endpoint, incl. the batch in flight.");
    HD_WH_EACH(ep, wh->all, next_all)
        hd_buf_printf(out, "herald_webhook_queue_depth{%s} %u\n", ep->labels,
                      atomic_load_explicit(&ep->depth, memory_order_relaxed));
    hd_metrics_family(out, "herald_webhook_queue_capacity", "gauge",
                      "Events the endpoint's queue holds at most (webhooks.queue_size).");
    HD_WH_EACH(ep, wh->all, next_all)
        hd_buf_printf(out, "herald_webhook_queue_capacity{%s} %u\n", ep->labels, ep->capacity);
    hd_metrics_family(out, "herald_webhook_queue_high_water", "gauge",
                      "Highest depth the endpoint's queue has reached.");
    HD_WH_EACH(ep, wh->all, next_all)
        hd_buf_printf(out, "herald_webhook_queue_high_water{%s} %u\n", ep->labels,
                      atomic_load_explicit(&ep->high_water, memory_order_relaxed));
    hd_metrics_family(out, "herald_webhook_breaker_state", "gauge", "Circuit breaker: 0 closed, 1 half-open, 2 open.");
    HD_WH_EACH(ep, wh->all, next_all)
        hd_buf_printf(out, "herald_webhook_breaker_state{%s} %d\n", ep->labels,
                      atomic_load_explicit(&ep->breaker_pub, memory_order_relaxed));
    hd_metrics_family(out, "herald_webhook_requests_in_flight", "gauge", "Webhook requests in flight.");
    hd_buf_printf(out, "herald_webhook_requests_in_flight %" PRIu64 "\n", LOAD(&wh->in_flight));
    hd_metrics_family(out, "herald_webhook_delayed_pending", "gauge",
           "channel_vacated / member_removed held back by webhooks.vacate_delay_ms.");
    hd_buf_printf(out, "herald_webhook_delayed_pending %" PRIu64 "\n", LOAD(&wh->delayed_pending));
    hd_metrics_family(out, "herald_webhook_delayed_cancelled_total", "counter",
           "Held-back channel_vacated / member_removed not sent: the channel or user came back (by=\"rejoin\"), "
           "or the send-time check found it back (by=\"probe\").");
    hd_buf_printf(out, "herald_webhook_delayed_cancelled_total{by=\"rejoin\"} %" PRIu64 "\n",
                  LOAD(&wh->cancelled_rejoin));
    hd_buf_printf(out, "herald_webhook_delayed_cancelled_total{by=\"probe\"} %" PRIu64 "\n",
                  LOAD(&wh->cancelled_probe));
}

static void render_batches(const hd_webhooks *wh, hd_buf *out)
{
    static const char name[] = "herald_webhook_batch_events";
    double le[HD_WH_BATCH_BUCKETS - 1];
    for (unsigned b = 0; b < HD_WH_BATCH_BUCKETS - 1; b++)
        le[b] = hd_webhooks__batch_le[b];
    hd_metrics_family(out, name, "histogram", "Events per delivered request (_count = delivered requests).");
    HD_WH_EACH(ep, wh->all, next_all) {
        uint64_t counts[HD_WH_BATCH_BUCKETS];
        for (unsigned b = 0; b < HD_WH_BATCH_BUCKETS; b++)
            counts[b] = LOAD(&ep->ctr.batch_bucket[b]);
        hd_metrics_histogram(out, name, ep->labels, counts, le, HD_WH_BATCH_BUCKETS,
                             (double)LOAD(&ep->ctr.batch_events), 0);
    }
}

static void render_latency(const hd_webhooks *wh, hd_buf *out)
{
    static const char name[] = "herald_webhook_delivery_latency_seconds";
    hd_metrics_family(out, name, "histogram", "Time from an event's report to its delivery (2xx), per event.");
    double le[HD_WH_LAT_BUCKETS - 1];
    uint64_t counts[HD_WH_LAT_BUCKETS];
    for (unsigned b = 0; b < HD_WH_LAT_BUCKETS; b++) {
        if (b < HD_WH_LAT_BUCKETS - 1)
            le[b] = hd_webhooks__lat_le_ms[b] / 1e3;
        counts[b] = LOAD(&wh->lat_bucket[b]);
    }
    hd_metrics_histogram(out, name, NULL, counts, le, HD_WH_LAT_BUCKETS, LOAD(&wh->lat_sum_ms) / 1e3, 3);
}

void hd_webhooks_metrics(const hd_webhooks *wh, hd_buf *out)
{
    /* nothing until some app has had a webhook: a server without any
     * exposes no webhook families */
    if (!wh || !atomic_load_explicit(&wh->all, memory_order_acquire))
        return;
    hd_metrics_family(out, "herald_webhook_endpoints", "gauge", "Configured webhook endpoints (apps x urls).");
    hd_buf_printf(out, "herald_webhook_endpoints %zu\n",
                  atomic_load_explicit(&wh->n_configured, memory_order_relaxed));
    render_counters(wh, out);
    render_gauges(wh, out);
    render_batches(wh, out);
    render_latency(wh, out);
}
