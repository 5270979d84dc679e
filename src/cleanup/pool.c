/* pool.c - the cleanup pool. This first version runs every job on the
 * caller (the synchronous path); the bounded per-worker queues plug in
 * behind hd_cleanup_submit() without changing callers.
 *
 * THREADING: see cleanup.h; counters are atomics.
 */
#include <stdatomic.h>

#include "cleanup_internal.h"

struct hd_cleanup {
    hd_cleanup_leave_fn leave;
    void *ctx;
    atomic_uint_fast64_t sync_fallbacks;
};

int hd_cleanup_create(hd_cleanup **out, const hd_config *cfg, hd_cleanup_leave_fn leave, void *ctx)
{
    (void)cfg;
    hd_cleanup *c = hd_calloc(1, sizeof *c);
    c->leave = leave;
    c->ctx = ctx;
    *out = c;
    return 0;
}

void hd_cleanup_destroy(hd_cleanup *c, uint32_t drain_ms)
{
    (void)drain_ms;
    hd_free(c);
}

int hd_cleanup_submit(hd_cleanup *c, hd_cleanup_job *job)
{
    (void)c;
    (void)job;
    return HD_EFULL;
}

void hd_cleanup_run_sync(hd_cleanup *c, hd_cleanup_job *job)
{
    atomic_fetch_add(&c->sync_fallbacks, 1);
    hd_cleanup__job_run(c->leave, c->ctx, job);
}

void hd_cleanup_get_stats(const hd_cleanup *c, hd_cleanup_stats *out)
{
    out->submitted = 0;
    out->completed = 0;
    out->sync_fallbacks = atomic_load(&((hd_cleanup *)c)->sync_fallbacks);
}
