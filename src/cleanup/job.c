/* job.c - a disconnect-cleanup job: self-contained copies of what one
 * closed socket left in the registry, and running it.
 *
 * DESIGN
 * ------
 * A job is a growable array of entries (channel reference + presence
 * keys). Running it calls the step function once per entry, in order; a
 * step answering HD_EAGAIN is retried at once up to max_retry times (the
 * last attempt is flagged final so the callee knows to release the channel
 * reference whatever happens). Retrying at once, without a pause, keeps a
 * worker's batch short; a backend that needs backoff should wait inside
 * its step.
 *
 * THREADING
 * ---------
 * A job belongs to one thread at a time (its builder, then a worker, the
 * synchronous caller or destroy); nothing here is shared except the
 * counters, which are atomics.
 */
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

/* One entry, with retries. */
static void run_entry(const hd_cleanup_runner *r, const hd_cleanup_job *job, const hd_cleanup_entry *e,
                      hd_cleanup_counters *ctr)
{
    hd_cleanup_step step = {
        .app = job->app,
        .thread = job->thread,
        .socket_id = job->socket_id,
        .ch = e->ch,
        .user_key = e->user_key,
        .user_id_json = e->user_id_json,
    };
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
        atomic_fetch_add_explicit(&ctr->failures, 1, memory_order_relaxed);
        /* ch may be gone already (the callee released it): no name here. */
        hd_log(HD_LOG_WARN, "cleanup", "socket %s: a channel leave failed after %u attempt(s): %s", job->socket_id,
               step.attempt + 1, hd_strerror(rc));
        return;
    }
}

void hd_cleanup__job_run(const hd_cleanup_runner *r, hd_cleanup_job *job, hd_cleanup_counters *ctr)
{
    for (size_t i = 0; i < job->n; i++) {
        hd_cleanup_entry *e = &job->entries[i];
        run_entry(r, job, e, ctr);
        hd_free(e->user_key);
        hd_free(e->user_id_json);
    }
    hd_free(job->entries);
    hd_free(job);
}
