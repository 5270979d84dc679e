/* disconnect.c - the io-thread half of a disconnect (ARCHITECTURE flow 4):
 * mark the session cleaned exactly once, unlink it from the local index,
 * snapshot its memberships into a cleanup job, and hand the job to the
 * cleanup pool, or run it right here when every queue is full.
 *
 * THREADING: the session's io thread only; the job it builds owns copies
 * and registry references, never pointers into the session.
 */
#include "adapter/adapter_internal.h"
#include "cleanup/cleanup.h"

void hd_session_disconnect(hd_session *s)
{
    if (s->cleaned || !s->app)
        return;
    s->cleaned = true;
    if (!s->n_subs)
        return;
    hd_cleanup_job *job = hd_cleanup_job_new(s->app, s->io->index, s->socket_id);
    while (s->n_subs) {
        hd_sub *sub = s->subs[s->n_subs - 1];
        hd_cleanup_job_add(job, sub->ch, sub->user_key, sub->user_id_json);
        sub->user_key = sub->user_id_json = NULL;
        hd_local_remove(sub);
    }
    hd_cleanup *pool = s->io->srv->cleanup;
    if (hd_cleanup_submit(pool, job) != 0)
        hd_cleanup_run_sync(pool, job);
}

/* hd_cleanup_leave_fn for the pool: ctx is the server. */
void hd_disconnect_leave(void *ctx, void *app, hd_channel *ch, const hd_cleanup_leave *leaves, size_t n)
{
    hd_membership_leave_many(ctx, app, ch, leaves, n);
}
