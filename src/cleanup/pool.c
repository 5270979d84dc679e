/* pool.c - the cleanup pool: create and destroy the workers, hand jobs to
 * them (or tell the caller to run them itself), readiness.
 *
 * DESIGN
 * ------
 * Submit picks a worker round-robin and tries the others in turn if that
 * one's ring is full; workers whose heartbeat says they are stuck are
 * skipped. If nobody takes the job the caller gets HD_EFULL and runs it
 * with hd_cleanup_run_sync(): herald's policy is bounded queues, nothing
 * dropped (docs/QUEUE_CONFIG.md). With async_enabled false no worker
 * exists and submit always answers HD_EFULL, which makes every cleanup
 * synchronous (the emergency switch).
 *
 * Both create() flavours end up with a retry-aware step function: the
 * plain hd_cleanup_leave_fn is wrapped by legacy_step(), which cannot
 * fail.
 *
 * Destroy: shutting_down makes submit refuse, then each worker gets stop
 * (under its lock) with a shared drain deadline; workers drain until the
 * deadline, destroy runs any remainder itself, then joins. See worker.c.
 *
 * THREADING
 * ---------
 * See cleanup.h. After create the pool's {const} fields never change;
 * everything else is atomics or under a worker's lock.
 */
#include <unistd.h>

#include "cleanup_internal.h"

#define FULL_LOG_INTERVAL_MS 10000u

/* hd_cleanup_create's callback, seen as a step that always succeeds. */
static int legacy_step(void *ctx, const hd_cleanup_step *s)
{
    hd_cleanup *c = ctx;
    c->leave(c->leave_ctx, s->app, s->ch, s->leaves, s->n);
    return 0;
}

/* Worker count for cfg (0 = auto = max(1, CPUs/2)), or 0 when invalid. */
static unsigned resolve_workers(const hd_config *cfg)
{
    uint32_t n = cfg->cleanup.worker_threads;
    if (n > HD_CLEANUP_MAX_WORKERS)
        return 0;
    if (n == 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        n = cpus >= 2 ? (uint32_t)(cpus / 2) : 1;
        if (n > HD_CLEANUP_MAX_WORKERS)
            n = HD_CLEANUP_MAX_WORKERS;
    }
    return n;
}

static int check_config(const hd_config *cfg)
{
    if (!cfg->cleanup.async_enabled)
        return 0;
    if (!cfg->cleanup.queue_buffer_size || !cfg->cleanup.batch_size || !cfg->cleanup.batch_timeout_ms ||
        !cfg->cleanup.stuck_worker_ms || !resolve_workers(cfg))
        return HD_EINVAL;
    return 0;
}

static hd_cleanup *pool_new(const hd_config *cfg)
{
    hd_cleanup *c = hd_calloc(1, sizeof *c);
    c->async = cfg->cleanup.async_enabled;
    c->run.max_retry = cfg->cleanup.max_retry_attempts;
    c->batch_max = cfg->cleanup.batch_size < cfg->cleanup.queue_buffer_size ? cfg->cleanup.batch_size
                                                                            : cfg->cleanup.queue_buffer_size;
    c->batch_timeout_us = (uint64_t)cfg->cleanup.batch_timeout_ms * 1000u;
    c->stuck_us = (uint64_t)cfg->cleanup.stuck_worker_ms * 1000u;
    return c;
}

static int start_workers(hd_cleanup *c, unsigned n, uint32_t capacity)
{
    c->workers = hd_calloc(n, sizeof *c->workers);
    c->n_workers = n;
    for (unsigned i = 0; i < n; i++)
        c->workers[i] = hd_cleanup__worker_new(c, i, capacity);
    for (unsigned i = 0; i < n; i++)
        if (hd_cleanup__worker_start(c->workers[i]) != 0)
            return HD_ETHREAD;
    return 0;
}

static int pool_create(hd_cleanup **out, const hd_config *cfg, hd_cleanup *c)
{
    int rc = c->async ? start_workers(c, resolve_workers(cfg), cfg->cleanup.queue_buffer_size) : 0;
    if (rc != 0) {
        hd_log(HD_LOG_ERR, "cleanup", "cannot start the cleanup workers: %s", hd_strerror(rc));
        hd_cleanup_destroy(c, 0);
        return rc;
    }
    if (c->async)
        hd_log(HD_LOG_INFO, "cleanup", "%u cleanup worker(s), queue %u each, batches of %u within %u ms",
               c->n_workers, cfg->cleanup.queue_buffer_size, c->batch_max, cfg->cleanup.batch_timeout_ms);
    else
        hd_log(HD_LOG_NOTICE, "cleanup", "cleanup.async_enabled is false: every cleanup runs synchronously");
    *out = c;
    return 0;
}

int hd_cleanup_create(hd_cleanup **out, const hd_config *cfg, hd_cleanup_leave_fn leave, void *ctx)
{
    *out = NULL;
    int rc = check_config(cfg);
    if (rc != 0 || !leave)
        return rc ? rc : HD_EINVAL;
    hd_cleanup *c = pool_new(cfg);
    c->leave = leave;
    c->leave_ctx = ctx;
    c->run.step = legacy_step;
    c->run.ctx = c;
    return pool_create(out, cfg, c);
}

int hd_cleanup_create_steps(hd_cleanup **out, const hd_config *cfg, hd_cleanup_step_fn step, void *ctx)
{
    *out = NULL;
    int rc = check_config(cfg);
    if (rc != 0 || !step)
        return rc ? rc : HD_EINVAL;
    hd_cleanup *c = pool_new(cfg);
    c->run.step = step;
    c->run.ctx = ctx;
    return pool_create(out, cfg, c);
}

void hd_cleanup_destroy(hd_cleanup *c, uint32_t drain_ms)
{
    if (!c)
        return;
    atomic_store(&c->shutting_down, true);
    c->drain_deadline_us = hd_mono_us() + (uint64_t)drain_ms * 1000u;
    for (unsigned i = 0; i < c->n_workers; i++)
        hd_cleanup__worker_stop(c->workers[i]);
    size_t ran = 0;
    for (unsigned i = 0; i < c->n_workers; i++)
        ran += hd_cleanup__worker_drain(c->workers[i]);
    if (ran)
        hd_log(HD_LOG_WARN, "cleanup", "drain time (%u ms) ran out: %zu queued cleanup job(s) ran on the shutdown thread",
               drain_ms, ran);
    for (unsigned i = 0; i < c->n_workers; i++)
        hd_cleanup__worker_free(c->workers[i]);
    hd_free(c->workers);
    hd_free(c);
}

/* Log that submit passed over a stuck worker, once per stuck batch. */
static void note_stuck(hd_cleanup *c, hd_cleanup_worker *w, uint64_t now_us)
{
    atomic_fetch_add_explicit(&c->stuck_skips, 1, memory_order_relaxed);
    if (atomic_exchange_explicit(&w->stuck_logged, true, memory_order_relaxed))
        return;
    uint64_t since = atomic_load_explicit(&w->busy_since_us, memory_order_relaxed);
    hd_log(HD_LOG_WARN, "cleanup", "cleanup worker %u stuck: busy on a batch of %u job(s) for %llu ms; skipping it",
           w->index, (unsigned)atomic_load_explicit(&w->busy_jobs, memory_order_relaxed),
           (unsigned long long)(since && now_us > since ? (now_us - since) / 1000u : 0));
}

/* Log that every queue was full, at most every FULL_LOG_INTERVAL_MS. */
static void note_full(hd_cleanup *c)
{
    uint64_t now = hd_mono_ms();
    uint64_t last = atomic_load_explicit(&c->last_full_log_ms, memory_order_relaxed);
    if (last && now - last < FULL_LOG_INTERVAL_MS)
        return;
    if (!atomic_compare_exchange_strong(&c->last_full_log_ms, &last, now))
        return;
    hd_log(HD_LOG_WARN, "cleanup",
           "every cleanup queue is full (or its worker stuck): cleanups run synchronously on the caller "
           "(%llu so far); see docs/QUEUE_CONFIG.md",
           (unsigned long long)atomic_load_explicit(&c->sync_fallbacks, memory_order_relaxed) + 1);
}

int hd_cleanup_submit(hd_cleanup *c, hd_cleanup_job *job)
{
    if (!c->n_workers)
        return HD_EFULL;
    if (atomic_load(&c->shutting_down))
        return HD_ESHUTDOWN;
    job->enqueued_us = hd_mono_us();
    unsigned first = atomic_fetch_add_explicit(&c->next_worker, 1, memory_order_relaxed) % c->n_workers;
    for (unsigned i = 0; i < c->n_workers; i++) {
        hd_cleanup_worker *w = c->workers[(first + i) % c->n_workers];
        if (hd_cleanup__worker_stuck(w, job->enqueued_us, c->stuck_us)) {
            note_stuck(c, w, job->enqueued_us);
            continue;
        }
        int rc = hd_cleanup__worker_push(w, job);
        if (rc != HD_EFULL)
            return rc; /* 0, or HD_ESHUTDOWN */
    }
    note_full(c);
    return HD_EFULL;
}

void hd_cleanup_run_sync(hd_cleanup *c, hd_cleanup_job *job)
{
    atomic_fetch_add_explicit(&c->sync_fallbacks, 1, memory_order_relaxed);
    hd_cleanup__run_jobs(&c->run, &job, 1, &c->sync_ctr);
}

bool hd_cleanup_ready(const hd_cleanup *c, hd_buf *why)
{
    if (!c)
        return true;
    if (atomic_load(&((hd_cleanup *)c)->shutting_down)) {
        if (why)
            hd_buf_puts(why, "cleanup: shutting down");
        return false;
    }
    bool ready = true;
    uint64_t now = hd_mono_us();
    for (unsigned i = 0; i < c->n_workers; i++) {
        hd_cleanup_worker *w = c->workers[i];
        if (!hd_cleanup__worker_stuck(w, now, c->stuck_us))
            continue;
        if (why) {
            uint64_t since = atomic_load_explicit(&w->busy_since_us, memory_order_relaxed);
            hd_buf_printf(why, "%scleanup worker %u stuck for %llu ms on a batch of %u job(s)", ready ? "" : "; ", i,
                          (unsigned long long)(since && now > since ? (now - since) / 1000u : 0),
                          (unsigned)atomic_load_explicit(&w->busy_jobs, memory_order_relaxed));
        }
        ready = false;
    }
    return ready;
}
