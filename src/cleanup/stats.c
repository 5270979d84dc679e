/* stats.c - the cleanup pool's counters: latency histogram, totals for
 * hd_cleanup_get_stats(), per-worker views, and the Prometheus text.
 *
 * DESIGN
 * ------
 * Every counter is a relaxed atomic written by the thread that does the
 * work (a worker, or the caller / destroy for jobs run synchronously, kept
 * in pool->sync_ctr) and read by anyone. Readers see each value
 * atomically, not a consistent snapshot of all of them; the histogram's
 * +Inf bucket is therefore rendered as the sum of the buckets read, so
 * that it always matches _count.
 *
 * Job latency is submit -> done of jobs run by workers, bucketed by upper
 * bound in microseconds; p50/p99 are estimated as the bound of the bucket
 * that holds them (capped by the observed maximum).
 *
 * The exposition follows the Prometheus text format 0.0.4: a # HELP and
 * a # TYPE line per family, samples labelled worker="N" (retries and
 * failures also worker="sync" for jobs run off the workers). Names and
 * meanings are listed in docs/QUEUE_CONFIG.md.
 *
 * THREADING
 * ---------
 * Any thread, lock-free, while the pool exists.
 */
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>

#include "cleanup_internal.h"
#include "metrics/metrics.h"

const uint64_t hd_cleanup__bucket_le_us[HD_CLEANUP__NBUCKETS - 1] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 1000000,
};

#define RELAXED memory_order_relaxed
#define LOAD(p) atomic_load_explicit((p), RELAXED)

void hd_cleanup__atomic_max64(atomic_uint_fast64_t *a, uint64_t v)
{
    uint_fast64_t cur = LOAD(a);
    while (cur < v && !atomic_compare_exchange_weak_explicit(a, &cur, v, RELAXED, RELAXED))
        ;
}

void hd_cleanup__atomic_max32(atomic_uint_fast32_t *a, uint32_t v)
{
    uint_fast32_t cur = LOAD(a);
    while (cur < v && !atomic_compare_exchange_weak_explicit(a, &cur, v, RELAXED, RELAXED))
        ;
}

void hd_cleanup__latency_record(hd_cleanup_counters *ctr, uint64_t us)
{
    unsigned b = 0;
    while (b < HD_CLEANUP__NBUCKETS - 1 && us > hd_cleanup__bucket_le_us[b])
        b++;
    atomic_fetch_add_explicit(&ctr->lat_bucket[b], 1, RELAXED);
    atomic_fetch_add_explicit(&ctr->lat_sum_us, us, RELAXED);
    atomic_fetch_add_explicit(&ctr->lat_count, 1, RELAXED);
    hd_cleanup__atomic_max64(&ctr->lat_max_us, us);
}

unsigned hd_cleanup_worker_count(const hd_cleanup *c)
{
    return c ? c->n_workers : 0;
}

void hd_cleanup_get_worker_stats(const hd_cleanup *c, unsigned i, hd_cleanup_worker_stats *out)
{
    hd_assert(i < c->n_workers);
    hd_cleanup_worker *w = c->workers[i];
    uint64_t now = hd_mono_us(), since = LOAD(&w->busy_since_us);
    *out = (hd_cleanup_worker_stats){
        .queue_depth = (uint32_t)LOAD(&w->depth),
        .queue_capacity = w->capacity,
        .high_water = (uint32_t)LOAD(&w->high_water),
        .submitted = LOAD(&w->ctr.submitted),
        .completed = LOAD(&w->ctr.completed),
        .batches = LOAD(&w->ctr.batches),
        .batch_jobs = LOAD(&w->ctr.batch_jobs),
        .retries = LOAD(&w->ctr.retries),
        .failures = LOAD(&w->ctr.failures),
        .latency_sum_us = LOAD(&w->ctr.lat_sum_us),
        .latency_count = LOAD(&w->ctr.lat_count),
        .latency_max_us = LOAD(&w->ctr.lat_max_us),
        .busy_ms = since && now > since ? (now - since) / 1000u : 0,
        .stuck = hd_cleanup__worker_stuck(w, now, c->stuck_us),
    };
}

/* Bucket bound holding the pct-th percentile of buckets[], capped by max_us. */
static uint64_t percentile(const uint64_t *buckets, uint64_t total, uint64_t max_us, unsigned pct)
{
    if (!total)
        return 0;
    uint64_t rank = (total * pct + 99) / 100, seen = 0;
    for (unsigned b = 0; b < HD_CLEANUP__NBUCKETS - 1; b++) {
        seen += buckets[b];
        if (seen >= rank)
            return hd_cleanup__bucket_le_us[b] < max_us ? hd_cleanup__bucket_le_us[b] : max_us;
    }
    return max_us;
}

static void add_worker(hd_cleanup_stats *out, const hd_cleanup_worker_stats *ws)
{
    out->submitted += ws->submitted;
    out->completed += ws->completed;
    out->batches += ws->batches;
    out->batch_jobs += ws->batch_jobs;
    out->retries += ws->retries;
    out->failures += ws->failures;
    out->latency_sum_us += ws->latency_sum_us;
    out->latency_count += ws->latency_count;
    if (ws->latency_max_us > out->latency_max_us)
        out->latency_max_us = ws->latency_max_us;
    out->queue_depth += ws->queue_depth;
    out->queue_capacity += ws->queue_capacity;
    if (ws->high_water > out->depth_high_water)
        out->depth_high_water = ws->high_water;
    out->stuck_workers += ws->stuck;
}

void hd_cleanup_get_stats(const hd_cleanup *c, hd_cleanup_stats *out)
{
    *out = (hd_cleanup_stats){0};
    uint64_t buckets[HD_CLEANUP__NBUCKETS] = {0}, total = 0;
    for (unsigned i = 0; i < c->n_workers; i++) {
        hd_cleanup_worker_stats ws;
        hd_cleanup_get_worker_stats(c, i, &ws);
        add_worker(out, &ws);
        for (unsigned b = 0; b < HD_CLEANUP__NBUCKETS; b++) {
            uint64_t v = LOAD(&c->workers[i]->ctr.lat_bucket[b]);
            buckets[b] += v;
            total += v;
        }
    }
    out->workers = c->n_workers;
    out->sync_fallbacks = LOAD(&c->sync_fallbacks);
    out->drained_sync = LOAD(&c->drained_sync);
    out->stuck_skips = LOAD(&c->stuck_skips);
    out->retries += LOAD(&c->sync_ctr.retries);
    out->failures += LOAD(&c->sync_ctr.failures);
    out->latency_p50_us = percentile(buckets, total, out->latency_max_us, 50);
    out->latency_p99_us = percentile(buckets, total, out->latency_max_us, 99);
}

/* ---- Prometheus exposition ---- */

typedef struct worker_row {
    const char *name, *type, *help;
    size_t offset;  /* into hd_cleanup_worker_stats */
    bool is32;      /* uint32_t field, else uint64_t */
    bool with_sync; /* also a worker="sync" sample (jobs run off the workers) */
} worker_row;

#define WS(f) offsetof(hd_cleanup_worker_stats, f)
#define ROW32(n, t, f, h) {"herald_cleanup_" n, t, h, WS(f), true, false}
#define ROW64(n, f, s, h) {"herald_cleanup_" n, "counter", h, WS(f), false, s}

static const worker_row worker_rows[] = {
    ROW32("queue_depth", "gauge", queue_depth, "Cleanup jobs waiting in the worker's queue."),
    ROW32("queue_capacity", "gauge", queue_capacity, "Slots in the worker's queue (cleanup.queue_buffer_size)."),
    ROW32("queue_high_water", "gauge", high_water, "Highest depth the worker's queue has reached."),
    ROW64("jobs_submitted_total", submitted, false, "Cleanup jobs accepted into the worker's queue."),
    ROW64("jobs_completed_total", completed, false, "Cleanup jobs the worker has run."),
    ROW64("batches_total", batches, false, "Batches the worker has taken."),
    ROW64("batch_jobs_total", batch_jobs, false, "Jobs in those batches (average batch = batch_jobs / batches)."),
    ROW64("step_retries_total", retries, true,
          "Channel steps retried after a transient failure (worker=\"sync\": jobs run off the workers)."),
    ROW64("step_failures_total", failures, true,
          "Channel steps given up on after cleanup.max_retry_attempts or a permanent error."),
};

static uint64_t row_value(const worker_row *row, const hd_cleanup_worker_stats *ws)
{
    const char *p = (const char *)ws + row->offset;
    return row->is32 ? *(const uint32_t *)p : *(const uint64_t *)p;
}

static void render_pool(const hd_cleanup *c, hd_buf *out)
{
    hd_metrics_family(out, "herald_cleanup_async_enabled", "gauge",
                      "1 when cleanup runs on workers (cleanup.async_enabled).");
    hd_buf_printf(out, "herald_cleanup_async_enabled %d\n", c->async ? 1 : 0);
    hd_metrics_family(out, "herald_cleanup_workers", "gauge", "Cleanup worker threads.");
    hd_buf_printf(out, "herald_cleanup_workers %u\n", c->n_workers);
    hd_metrics_family(out, "herald_cleanup_sync_fallbacks_total", "counter",
           "Cleanup jobs run synchronously by the caller (every queue full, async off, or shutting down).");
    hd_buf_printf(out, "herald_cleanup_sync_fallbacks_total %" PRIu64 "\n", (uint64_t)LOAD(&c->sync_fallbacks));
    hd_metrics_family(out, "herald_cleanup_stuck_skips_total", "counter", "Times a submit passed over a stuck worker.");
    hd_buf_printf(out, "herald_cleanup_stuck_skips_total %" PRIu64 "\n", (uint64_t)LOAD(&c->stuck_skips));
}

static void render_rows(const hd_cleanup *c, const hd_cleanup_worker_stats *ws, hd_buf *out)
{
    hd_cleanup_worker_stats sync = {.retries = LOAD(&c->sync_ctr.retries), .failures = LOAD(&c->sync_ctr.failures)};
    for (size_t r = 0; r < sizeof worker_rows / sizeof worker_rows[0]; r++) {
        const worker_row *row = &worker_rows[r];
        hd_metrics_family(out, row->name, row->type, row->help);
        for (unsigned i = 0; i < c->n_workers; i++)
            hd_buf_printf(out, "%s{worker=\"%u\"} %" PRIu64 "\n", row->name, i, row_value(row, &ws[i]));
        if (row->with_sync)
            hd_buf_printf(out, "%s{worker=\"sync\"} %" PRIu64 "\n", row->name, row_value(row, &sync));
    }
}

static void render_health(const hd_cleanup *c, const hd_cleanup_worker_stats *ws, hd_buf *out)
{
    hd_metrics_family(out, "herald_cleanup_worker_stuck", "gauge",
           "1 while the worker has been on one batch longer than cleanup.stuck_worker_ms.");
    for (unsigned i = 0; i < c->n_workers; i++)
        hd_buf_printf(out, "herald_cleanup_worker_stuck{worker=\"%u\"} %d\n", i, ws[i].stuck ? 1 : 0);
    hd_metrics_family(out, "herald_cleanup_worker_busy_seconds", "gauge",
                      "How long the worker's current batch has run (0 idle).");
    for (unsigned i = 0; i < c->n_workers; i++)
        hd_buf_printf(out, "herald_cleanup_worker_busy_seconds{worker=\"%u\"} %.3f\n", i, ws[i].busy_ms / 1e3);
    hd_metrics_family(out, "herald_cleanup_job_latency_max_seconds", "gauge", "Longest submit-to-done time of a job.");
    for (unsigned i = 0; i < c->n_workers; i++)
        hd_buf_printf(out, "herald_cleanup_job_latency_max_seconds{worker=\"%u\"} %.6f\n", i,
                      ws[i].latency_max_us / 1e6);
}

static void render_latency(const hd_cleanup *c, hd_buf *out)
{
    static const char name[] = "herald_cleanup_job_latency_seconds";
    hd_metrics_family(out, name, "histogram", "Time from submit to done of cleanup jobs run by workers.");
    double le[HD_CLEANUP__NBUCKETS - 1];
    for (unsigned b = 0; b < HD_CLEANUP__NBUCKETS - 1; b++)
        le[b] = hd_cleanup__bucket_le_us[b] / 1e6;
    for (unsigned i = 0; i < c->n_workers; i++) {
        const hd_cleanup_counters *ctr = &c->workers[i]->ctr;
        uint64_t counts[HD_CLEANUP__NBUCKETS];
        for (unsigned b = 0; b < HD_CLEANUP__NBUCKETS; b++)
            counts[b] = LOAD(&ctr->lat_bucket[b]);
        char labels[24];
        snprintf(labels, sizeof labels, "worker=\"%u\"", i);
        hd_metrics_histogram(out, name, labels, counts, le, HD_CLEANUP__NBUCKETS,
                             (uint64_t)LOAD(&ctr->lat_sum_us) / 1e6, 6);
    }
}

void hd_cleanup_metrics(const hd_cleanup *c, hd_buf *out)
{
    if (!c)
        return;
    hd_cleanup_worker_stats *ws = hd_calloc(c->n_workers ? c->n_workers : 1, sizeof *ws);
    for (unsigned i = 0; i < c->n_workers; i++)
        hd_cleanup_get_worker_stats(c, i, &ws[i]);
    render_pool(c, out);
    render_rows(c, ws, out);
    render_health(c, ws, out);
    render_latency(c, out);
    hd_free(ws);
}
