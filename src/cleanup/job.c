/* job.c - a disconnect-cleanup job: self-contained copies of what one
 * closed socket left in the registry, and running it.
 *
 * DESIGN
 * ------
 * A job is a growable array of entries (channel reference + presence
 * keys). Jobs run in batches (a worker's batch, or one job on the sync
 * path): the entries of all of them are sorted by (app, channel, submit
 * order) and the step function is called once per channel with all of
 * that channel's leaves, so the channel's lock is taken once per batch and
 * each socket's leaves keep their order. A step answering HD_EAGAIN is
 * retried at once up to max_retry times (the last attempt is flagged final
 * so the callee knows to release the references whatever happens).
 * Retrying at once, without a pause, keeps a worker's batch short; a
 * backend that needs backoff should wait inside its step.
 *
 * THREADING
 * ---------
 * A job belongs to one thread at a time (its builder, then a worker, the
 * synchronous caller or destroy); nothing here is shared except the
 * counters, which are atomics.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cleanup_internal.h"

hd_cleanup_job *hd_cleanup_job_new(void *app, unsigned thread, const char *socket_id)
{
    hd_cleanup_job *job = hd_calloc(1, sizeof *job);
    job->app = app;
    job->thread = thread;
    snprintf(job->socket_id, sizeof job->socket_id, "%s", socket_id);
    return job;
}

void hd_cleanup_job_add(hd_cleanup_job *job, hd_channel *ch, char *user_key, char *user_id_json)
{
    if (job->n == job->cap) {
        job->cap = job->cap ? job->cap * 2 : 4;
        job->entries = hd_realloc(job->entries, job->cap * sizeof *job->entries);
    }
    job->entries[job->n++] = (hd_cleanup_entry){ch, user_key, user_id_json};
}

/* One channel's leaves, with retries. */
static void run_group(const hd_cleanup_runner *r, void *app, hd_channel *ch, const hd_cleanup_leave *leaves,
                      size_t n, hd_cleanup_counters *ctr)
{
    hd_cleanup_step step = {.app = app, .ch = ch, .leaves = leaves, .n = n};
    for (;;) {
        step.final = step.attempt >= r->max_retry;
        int rc = r->step(r->ctx, &step);
        if (rc == 0)
            return;
        if (rc == HD_EAGAIN && !step.final) {
            atomic_fetch_add_explicit(&ctr->retries, 1, memory_order_relaxed);
            step.attempt++;
            continue;
        }
        atomic_fetch_add_explicit(&ctr->failures, n, memory_order_relaxed);
        /* ch may be gone already (the callee released it): no name here. */
        hd_log(HD_LOG_WARN, "cleanup", "socket %s%s: a channel leave failed after %u attempt(s): %s",
               leaves[0].socket_id, n > 1 ? " and others" : "", step.attempt + 1, hd_strerror(rc));
        return;
    }
}

/* An entry of a batch, sortable by (app, channel) with submit order kept. */
typedef struct batch_item {
    void *app;
    hd_channel *ch;
    size_t seq;
    const hd_cleanup_job *job;
    const hd_cleanup_entry *entry;
} batch_item;

static int cmp_ptr(const void *a, const void *b)
{
    return (uintptr_t)a < (uintptr_t)b ? -1 : (uintptr_t)a > (uintptr_t)b;
}

static int batch_item_cmp(const void *pa, const void *pb)
{
    const batch_item *a = pa, *b = pb;
    int c = cmp_ptr(a->app, b->app);
    if (!c)
        c = cmp_ptr(a->ch, b->ch);
    return c ? c : (a->seq > b->seq) - (a->seq < b->seq);
}

static void job_free(hd_cleanup_job *job)
{
    for (size_t i = 0; i < job->n; i++) {
        hd_free(job->entries[i].user_key);
        hd_free(job->entries[i].user_id_json);
    }
    hd_free(job->entries);
    hd_free(job);
}

void hd_cleanup__run_jobs(const hd_cleanup_runner *r, hd_cleanup_job *const *jobs, size_t n_jobs,
                          hd_cleanup_counters *ctr)
{
    size_t total = 0;
    for (size_t j = 0; j < n_jobs; j++)
        total += jobs[j]->n;
    batch_item *items = hd_malloc((total ? total : 1) * sizeof *items);
    hd_cleanup_leave *leaves = hd_malloc((total ? total : 1) * sizeof *leaves);
    size_t k = 0;
    for (size_t j = 0; j < n_jobs; j++)
        for (size_t i = 0; i < jobs[j]->n; i++, k++)
            items[k] = (batch_item){jobs[j]->app, jobs[j]->entries[i].ch, k, jobs[j], &jobs[j]->entries[i]};
    qsort(items, total, sizeof *items, batch_item_cmp);
    for (size_t i = 0; i < total;) {
        size_t end = i;
        for (; end < total && items[end].app == items[i].app && items[end].ch == items[i].ch; end++)
            leaves[end - i] = (hd_cleanup_leave){items[end].job->thread, items[end].job->socket_id,
                                                 items[end].entry->user_key, items[end].entry->user_id_json};
        run_group(r, items[i].app, items[i].ch, leaves, end - i, ctr);
        i = end;
    }
    hd_free(items);
    hd_free(leaves);
    for (size_t j = 0; j < n_jobs; j++)
        job_free(jobs[j]);
}
