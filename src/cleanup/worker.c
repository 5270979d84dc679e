/* worker.c - one cleanup worker: its bounded FIFO ring and its thread,
 * which takes jobs in batches and runs them.
 *
 * DESIGN
 * ------
 * The ring is an array of capacity job pointers allocated once; head is
 * the oldest slot and count the number queued, so push and take are O(1)
 * and never allocate. Submitters push under the worker's lock and signal
 * `work` only when the worker has something new to decide: the queue went
 * from empty to non-empty (start the batch timer) or reached a full batch.
 *
 * The worker waits until batch_max jobs are queued, or until
 * batch_timeout_us has passed since the oldest queued job was submitted,
 * then moves up to batch_max jobs into its private batch array under one
 * lock and runs them outside it, oldest first (FIFO per worker). Around a
 * batch it publishes its heartbeat (busy_since_us), which the pool reads
 * to tell a stuck worker.
 *
 * A batch runs as one unit (job.c): its entries are grouped by app and
 * channel, each channel's lock is taken once for all of its leaves, and
 * within a channel the leaves keep submit order. A job's latency (submit
 * to done) therefore ends with its batch.
 *
 * Shutdown: destroy sets `stop`. From then on the worker takes batches at
 * once (no timer) until its queue is empty or the pool's drain deadline
 * has passed, then exits; after each batch it signals `progress` so that
 * destroy, waiting in hd_cleanup__worker_drain(), can run any remainder
 * itself once the deadline passes.
 *
 * THREADING
 * ---------
 * ring/head/count/stop/exited: under lock (see cleanup_internal.h). batch:
 * the worker thread only. Heartbeat, depth and counters: atomics.
 * Lock order: a worker's lock is a leaf; no step runs under it.
 */
#include <time.h>

#include "cleanup_internal.h"

hd_cleanup_worker *hd_cleanup__worker_new(hd_cleanup *c, unsigned index, uint32_t capacity)
{
    hd_cleanup_worker *w = hd_calloc(1, sizeof *w);
    w->pool = c;
    w->index = index;
    w->capacity = capacity;
    w->ring = hd_calloc(capacity, sizeof *w->ring);
    w->batch = hd_calloc(c->batch_max, sizeof *w->batch);
    w->enqueued_us = hd_calloc(c->batch_max, sizeof *w->enqueued_us);
    pthread_mutex_init(&w->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* the clock of hd_mono_us */
    pthread_cond_init(&w->work, &ca);
    pthread_cond_init(&w->progress, &ca);
    pthread_condattr_destroy(&ca);
    return w;
}

/* Wait on cv until woken or the monotonic time due_us. */
static void wait_until_locked(pthread_cond_t *cv, pthread_mutex_t *m, uint64_t due_us)
{
    struct timespec ts = {.tv_sec = (time_t)(due_us / 1000000u), .tv_nsec = (long)(due_us % 1000000u) * 1000};
    pthread_cond_timedwait(cv, m, &ts);
}

static hd_cleanup_job *pop_locked(hd_cleanup_worker *w)
{
    hd_cleanup_job *job = w->ring[w->head];
    w->ring[w->head] = NULL;
    w->head = (w->head + 1) % w->capacity;
    w->count--;
    return job;
}

/* Move up to batch_max jobs into w->batch; returns how many. */
static uint32_t take_batch_locked(hd_cleanup_worker *w)
{
    uint32_t n = w->count < w->pool->batch_max ? w->count : w->pool->batch_max;
    for (uint32_t i = 0; i < n; i++)
        w->batch[i] = pop_locked(w);
    atomic_store_explicit(&w->depth, w->count, memory_order_relaxed);
    return n;
}

/* Block until a batch is due and take it; 0 means exit. */
static uint32_t wait_batch_locked(hd_cleanup_worker *w)
{
    const hd_cleanup *c = w->pool;
    for (;;) {
        if (w->stop)
            return w->count && hd_mono_us() < c->drain_deadline_us ? take_batch_locked(w) : 0;
        if (w->count >= c->batch_max)
            return take_batch_locked(w);
        if (!w->count) {
            pthread_cond_wait(&w->work, &w->lock);
            continue;
        }
        uint64_t due = w->ring[w->head]->enqueued_us + c->batch_timeout_us;
        if (hd_mono_us() >= due)
            return take_batch_locked(w);
        wait_until_locked(&w->work, &w->lock, due);
    }
}

/* Run w->batch[0..n) outside the lock, with the heartbeat raised. */
static void run_batch(hd_cleanup_worker *w, uint32_t n)
{
    hd_cleanup *c = w->pool;
    uint64_t start = hd_mono_us();
    atomic_store_explicit(&w->busy_jobs, n, memory_order_relaxed);
    atomic_store_explicit(&w->stuck_logged, false, memory_order_relaxed);
    atomic_store_explicit(&w->busy_since_us, start, memory_order_relaxed);
    atomic_fetch_add_explicit(&w->ctr.batches, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&w->ctr.batch_jobs, n, memory_order_relaxed);
    for (uint32_t i = 0; i < n; i++)
        w->enqueued_us[i] = w->batch[i]->enqueued_us;
    hd_cleanup__run_jobs(&c->run, w->batch, n, &w->ctr);
    uint64_t now = hd_mono_us();
    for (uint32_t i = 0; i < n; i++) {
        w->batch[i] = NULL;
        hd_cleanup__latency_record(&w->ctr, now > w->enqueued_us[i] ? now - w->enqueued_us[i] : 0);
        atomic_fetch_add_explicit(&w->ctr.completed, 1, memory_order_relaxed);
    }
    atomic_store_explicit(&w->busy_since_us, 0, memory_order_relaxed);
    if (atomic_exchange_explicit(&w->stuck_logged, false, memory_order_relaxed))
        hd_log(HD_LOG_NOTICE, "cleanup", "cleanup worker %u recovered: its batch of %u job(s) took %llu ms", w->index,
               n, (unsigned long long)((hd_mono_us() - start) / 1000u));
}

static void *worker_main(void *arg)
{
    hd_cleanup_worker *w = arg;
    pthread_mutex_lock(&w->lock);
    /* ---- worker lock { (released around each batch) */
    for (;;) {
        uint32_t n = wait_batch_locked(w);
        if (!n)
            break;
        pthread_mutex_unlock(&w->lock);
        run_batch(w, n);
        pthread_mutex_lock(&w->lock);
        if (w->stop)
            pthread_cond_broadcast(&w->progress);
    }
    w->exited = true;
    pthread_cond_broadcast(&w->progress);
    /* } worker lock ---- */
    pthread_mutex_unlock(&w->lock);
    return NULL;
}

int hd_cleanup__worker_start(hd_cleanup_worker *w)
{
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0)
        return HD_ETHREAD;
    w->started = true;
    char name[16];
    snprintf(name, sizeof name, "hd-cleanup-%u", w->index);
    pthread_setname_np(w->thread, name); /* shows in gdb and top -H; best effort */
    return 0;
}

int hd_cleanup__worker_push(hd_cleanup_worker *w, hd_cleanup_job *job)
{
    int rc = 0;
    pthread_mutex_lock(&w->lock);
    /* ---- worker lock { */
    if (w->stop) {
        rc = HD_ESHUTDOWN;
    } else if (w->count == w->capacity) {
        rc = HD_EFULL;
    } else {
        w->ring[(w->head + w->count) % w->capacity] = job;
        w->count++;
        atomic_store_explicit(&w->depth, w->count, memory_order_relaxed);
        hd_cleanup__atomic_max32(&w->high_water, w->count);
        atomic_fetch_add_explicit(&w->ctr.submitted, 1, memory_order_relaxed);
        if (w->count == 1 || w->count == w->pool->batch_max)
            pthread_cond_signal(&w->work);
    }
    /* } worker lock ---- */
    pthread_mutex_unlock(&w->lock);
    return rc;
}

void hd_cleanup__worker_stop(hd_cleanup_worker *w)
{
    pthread_mutex_lock(&w->lock);
    w->stop = true;
    pthread_cond_signal(&w->work);
    pthread_mutex_unlock(&w->lock);
}

size_t hd_cleanup__worker_drain(hd_cleanup_worker *w)
{
    hd_cleanup *c = w->pool;
    size_t ran = 0;
    pthread_mutex_lock(&w->lock);
    while (w->count && !w->exited && hd_mono_us() < c->drain_deadline_us)
        wait_until_locked(&w->progress, &w->lock, c->drain_deadline_us);
    /* Deadline passed (or the worker is gone): what is left is ours. The
     * worker, past the deadline too, takes nothing more. */
    while (w->count) {
        hd_cleanup_job *job = pop_locked(w);
        atomic_store_explicit(&w->depth, w->count, memory_order_relaxed);
        pthread_mutex_unlock(&w->lock);
        hd_cleanup__run_jobs(&c->run, &job, 1, &c->sync_ctr);
        atomic_fetch_add_explicit(&c->drained_sync, 1, memory_order_relaxed);
        ran++;
        pthread_mutex_lock(&w->lock);
    }
    pthread_mutex_unlock(&w->lock);
    return ran;
}

void hd_cleanup__worker_free(hd_cleanup_worker *w)
{
    if (w->started)
        pthread_join(w->thread, NULL);
    hd_assert(w->count == 0);
    pthread_cond_destroy(&w->work);
    pthread_cond_destroy(&w->progress);
    pthread_mutex_destroy(&w->lock);
    hd_free(w->ring);
    hd_free(w->batch);
    hd_free(w->enqueued_us);
    hd_free(w);
}

bool hd_cleanup__worker_stuck(const hd_cleanup_worker *w, uint64_t now_us, uint64_t stuck_us)
{
    uint64_t since = atomic_load_explicit(&((hd_cleanup_worker *)w)->busy_since_us, memory_order_relaxed);
    return since && now_us > since && now_us - since > stuck_us;
}
