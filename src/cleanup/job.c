/* job.c - a disconnect-cleanup job: self-contained copies of what one
 * closed socket left in the registry, and running it.
 *
 * THREADING: a job belongs to one thread at a time (its builder, then a
 * worker or the synchronous caller); nothing here is shared.
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

void hd_cleanup__job_run(hd_cleanup_leave_fn leave, void *ctx, hd_cleanup_job *job)
{
    for (size_t i = 0; i < job->n; i++) {
        hd_cleanup_entry *e = &job->entries[i];
        leave(ctx, job->app, job->thread, e->ch, e->user_key, e->user_id_json);
        hd_free(e->user_key);
        hd_free(e->user_id_json);
    }
    hd_free(job->entries);
    hd_free(job);
}
