/* cleanup.h - disconnect cleanup: what a closed socket leaves behind in
 * the registry (subscriptions, presence membership, its signed-in user
 * channel) is removed by jobs, on worker threads when possible.
 *
 * DESIGN
 * ------
 * On LWS_CALLBACK_CLOSED the connection layer unlinks the session from its
 * local index and builds a job that owns everything it needs: the app, the
 * io thread index, the socket id, and per channel the registry reference
 * plus copies of the presence keys. A job never points into a session.
 * The job is offered to a worker's bounded queue; when every queue is full
 * (or async cleanup is off) the caller runs it synchronously: nothing is
 * ever dropped, and exactly one cleanup runs per socket.
 *
 * Running a job calls the leave function given at creation once per
 * channel (the connection layer's hd_membership_leave: registry leave
 * under the channel lock, member_removed, vacate reports).
 *
 * THREADING
 * ---------
 * create/destroy: main thread. job_new/job_add/submit/run_sync: any
 * thread (io threads in practice). get_stats: any thread.
 */
#ifndef HD_CLEANUP_H
#define HD_CLEANUP_H

#include <stdint.h>

#include "channels/channels.h"
#include "config/config.h"

typedef struct hd_cleanup hd_cleanup;
typedef struct hd_cleanup_job hd_cleanup_job;

/* Called once per channel of a job, on whichever thread runs it. Owns
 * nothing: it must release ch's reference itself (hd_membership_leave does). */
typedef void (*hd_cleanup_leave_fn)(void *ctx, void *app, unsigned thread, hd_channel *ch, const char *user_key,
                                    const char *user_id_json);

/* Start the workers of cfg->cleanup (none when async_enabled is false).
 * Returns 0 or HD_ETHREAD / HD_EINVAL; on error *out is NULL. */
int hd_cleanup_create(hd_cleanup **out, const hd_config *cfg, hd_cleanup_leave_fn leave, void *ctx);
/* Refuse new jobs, run what is queued (for at most drain_ms), join the
 * workers, free everything. NULL is a no-op. */
void hd_cleanup_destroy(hd_cleanup *c, uint32_t drain_ms);

/* A job for one socket; strings are copied. */
hd_cleanup_job *hd_cleanup_job_new(void *app, unsigned thread, const char *socket_id);
/* Hand over one channel: the job owns ch's reference and the two strings
 * (heap strings, may be NULL) from now on. */
void hd_cleanup_job_add(hd_cleanup_job *job, hd_channel *ch, char *user_key, char *user_id_json);

/* Queue a job; never blocks. Returns 0 (the pool owns the job) or HD_EFULL
 * / HD_ESHUTDOWN (every queue full, async off, or shutting down): the
 * caller still owns it and must pass it to hd_cleanup_run_sync(). */
int hd_cleanup_submit(hd_cleanup *c, hd_cleanup_job *job);
/* Run the job on the calling thread and free it (counts a sync fallback). */
void hd_cleanup_run_sync(hd_cleanup *c, hd_cleanup_job *job);

typedef struct hd_cleanup_stats {
    uint64_t submitted;      /* accepted by a queue */
    uint64_t completed;      /* jobs run by workers */
    uint64_t sync_fallbacks; /* jobs run synchronously by the caller */
} hd_cleanup_stats;

void hd_cleanup_get_stats(const hd_cleanup *c, hd_cleanup_stats *out);

#endif /* HD_CLEANUP_H */
