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
 *
 * The pool has W workers (cleanup.worker_threads, 0 = "auto" = max(1,
 * CPUs/2)). Each worker owns a fixed-capacity FIFO (a ring of
 * cleanup.queue_buffer_size slots allocated once), a mutex and a condition
 * variable. hd_cleanup_submit() never blocks: it offers the job to one
 * worker (round-robin), then to the others, skipping workers that are
 * stuck (see below). When every queue is full, or async cleanup is off,
 * the caller runs the job synchronously with hd_cleanup_run_sync(): nothing
 * is ever dropped, and exactly one cleanup runs per socket.
 *
 * A worker takes jobs in batches: it waits until batch_size jobs are
 * queued or batch_timeout_ms has passed since the oldest queued job was
 * submitted, then takes up to batch_size jobs under one lock and runs them
 * outside it. Running a batch groups its entries by app and channel and
 * calls the step function once per channel with every socket leaving it,
 * in FIFO order (the connection layer's hd_membership_leave_many: one hold
 * of the channel lock to remove them all and read the counts, then
 * member_removed and the vacate report). A step that returns HD_EAGAIN is
 * retried at once, up to cleanup.max_retry_attempts times, then counted as
 * failed. A synchronous job is the same with a batch of one.
 *
 * Each worker publishes a heartbeat: the monotonic time at which it began
 * its current batch (0 when idle). A worker busy on one batch for longer
 * than cleanup.stuck_worker_ms is stuck: submit skips it (its queued jobs
 * wait for it), and hd_cleanup_ready() reports it.
 *
 * hd_cleanup_destroy() refuses new jobs, lets the workers drain their
 * queues for at most drain_ms, then runs whatever is still queued on the
 * calling thread and joins the workers. docs/QUEUE_CONFIG.md describes the
 * settings and the metrics.
 *
 * THREADING
 * ---------
 * create/destroy: main thread. job_new/job_add/submit/run_sync: any thread
 * (io threads in practice). get_stats, get_worker_stats, worker_count,
 * metrics, ready: any thread, lock-free (atomics), while the pool exists.
 * Workers call the step function and nothing of lws.
 */
#ifndef HD_CLEANUP_H
#define HD_CLEANUP_H

#include <stdbool.h>
#include <stdint.h>

#include "channels/channels.h"
#include "common/common.h"
#include "config/config.h"

#define HD_CLEANUP_MAX_WORKERS 64

typedef struct hd_cleanup hd_cleanup;
typedef struct hd_cleanup_job hd_cleanup_job;

/* One socket leaving one channel. Every pointer is valid only during the
 * call it is passed to. */
typedef struct hd_cleanup_leave {
    unsigned thread;          /* io thread the subscription was made on */
    const char *socket_id;
    const char *user_key;     /* presence dedup key, or NULL */
    const char *user_id_json; /* presence user_id as raw JSON, or NULL */
} hd_cleanup_leave;

/* Called once per channel per batch, on whichever thread runs it, with
 * every socket of the batch leaving that channel (n >= 1, in submit
 * order), so the channel's lock is taken once for all of them. Cannot
 * fail. It holds n references to ch and must release all of them
 * (hd_membership_leave_many does). Used by hd_cleanup_create(). */
typedef void (*hd_cleanup_leave_fn)(void *ctx, void *app, hd_channel *ch, const hd_cleanup_leave *leaves,
                                    size_t n);

/* One attempt at one channel of a batch (the retry-aware form). */
typedef struct hd_cleanup_step {
    void *app;
    hd_channel *ch;                 /* n references; see hd_cleanup_step_fn */
    const hd_cleanup_leave *leaves; /* in submit order */
    size_t n;
    unsigned attempt;               /* 0 on the first try, then 1, 2, ... */
    bool final;                     /* no retry follows this attempt */
} hd_cleanup_step;

/* The retry-aware form of hd_cleanup_leave_fn. Returns:
 *   0          done; the callee has released step->ch's n references.
 *   HD_EAGAIN  transient failure (e.g. the adapter's backend is briefly
 *              unreachable) and nothing was changed. If !step->final the
 *              references stay with the batch and the step is retried at
 *              once; if step->final the callee must release them anyway
 *              and the n leaves are counted as failed.
 *   other < 0  permanent failure: counted, not retried; the callee has
 *              released the references.
 * Runs on a worker, an io thread (sync fallback) or the destroying thread;
 * it must not call lws (pushing to io-thread inboxes is fine). */
typedef int (*hd_cleanup_step_fn)(void *ctx, const hd_cleanup_step *step);

/* Start the workers of cfg->cleanup (none when async_enabled is false).
 * Only cfg->cleanup is read, and only during the call. Returns 0 or
 * HD_ETHREAD / HD_EINVAL (queue_buffer_size, batch_size or batch_timeout_ms
 * is 0, or worker_threads > HD_CLEANUP_MAX_WORKERS); on error *out is NULL
 * and no thread runs. Steps cannot fail: no retries ever happen. */
int hd_cleanup_create(hd_cleanup **out, const hd_config *cfg, hd_cleanup_leave_fn leave, void *ctx);
/* The same with a retry-aware step function (added): a step returning
 * HD_EAGAIN is retried up to cfg->cleanup.max_retry_attempts times. */
int hd_cleanup_create_steps(hd_cleanup **out, const hd_config *cfg, hd_cleanup_step_fn step, void *ctx);
/* Refuse new jobs, let the workers run what is queued for at most
 * drain_ms, then run whatever is still queued on the calling thread (never
 * dropped), join the workers, free everything. A worker in the middle of a
 * batch is waited for, however long it takes. Other threads must have
 * stopped calling into c before this is called (the server destroys the
 * pool after its io threads are gone); a submit that still overlaps the
 * start of destroy gets HD_ESHUTDOWN rather than queueing a job nobody
 * would run. NULL is a no-op. */
void hd_cleanup_destroy(hd_cleanup *c, uint32_t drain_ms);

/* A job for one socket; strings are copied. */
hd_cleanup_job *hd_cleanup_job_new(void *app, unsigned thread, const char *socket_id);
/* Hand over one channel: the job owns ch's reference and the two strings
 * (heap strings, may be NULL) from now on. */
void hd_cleanup_job_add(hd_cleanup_job *job, hd_channel *ch, char *user_key, char *user_id_json);

/* Queue a job; never blocks. Returns 0 (the pool owns the job) or HD_EFULL
 * (every non-stuck queue full, or async off) / HD_ESHUTDOWN (destroy has
 * begun): the caller still owns it and must pass it to
 * hd_cleanup_run_sync(). */
int hd_cleanup_submit(hd_cleanup *c, hd_cleanup_job *job);
/* Run the job on the calling thread and free it (counts a sync fallback). */
void hd_cleanup_run_sync(hd_cleanup *c, hd_cleanup_job *job);

/* True when cleanup can keep up: false, with a reason appended to why
 * (may be NULL), while destroy has begun or while a worker is stuck
 * ("cleanup worker 1 stuck for 6021 ms on a batch of 64 jobs"). A pool
 * without workers (async off) is ready. Added for /ready. */
bool hd_cleanup_ready(const hd_cleanup *c, hd_buf *why);

typedef struct hd_cleanup_stats {
    uint64_t submitted;      /* accepted by a queue */
    uint64_t completed;      /* jobs run by workers */
    uint64_t sync_fallbacks; /* jobs run synchronously by the caller */
    /* Pool totals (added). */
    uint64_t drained_sync;      /* still queued at destroy's deadline, run by destroy */
    uint64_t batches;           /* batches taken by workers */
    uint64_t batch_jobs;        /* jobs in those batches (average = batch_jobs / batches) */
    uint64_t retries;           /* step attempts repeated after HD_EAGAIN (workers and sync) */
    uint64_t failures;          /* steps given up on (workers and sync) */
    uint64_t stuck_skips;       /* times submit passed over a stuck worker */
    uint64_t latency_sum_us;    /* submit -> done, jobs run by workers */
    uint64_t latency_count;
    uint64_t latency_max_us;
    uint64_t latency_p50_us;    /* upper bound of the histogram bucket; 0 before any job */
    uint64_t latency_p99_us;
    uint32_t workers;           /* 0 when async is off */
    uint32_t queue_depth;       /* jobs queued now, all workers */
    uint32_t queue_capacity;    /* all workers */
    uint32_t depth_high_water;  /* highest depth any single queue reached */
    uint32_t stuck_workers;     /* stuck right now */
} hd_cleanup_stats;

/* Copy the pool totals; each field is read atomically, the set is not a
 * snapshot. Any thread. */
void hd_cleanup_get_stats(const hd_cleanup *c, hd_cleanup_stats *out);

/* One worker's view (added). */
typedef struct hd_cleanup_worker_stats {
    uint32_t queue_depth, queue_capacity, high_water;
    uint64_t submitted, completed, batches, batch_jobs, retries, failures;
    uint64_t latency_sum_us, latency_count, latency_max_us;
    uint64_t busy_ms; /* how long the current batch has run; 0 when idle */
    bool stuck;
} hd_cleanup_worker_stats;

/* Number of workers (0 when async is off). Any thread. */
unsigned hd_cleanup_worker_count(const hd_cleanup *c);
/* Copy worker i's counters (i < hd_cleanup_worker_count). Any thread. */
void hd_cleanup_get_worker_stats(const hd_cleanup *c, unsigned i, hd_cleanup_worker_stats *out);

/* Append the pool's metrics in Prometheus text exposition format (# HELP
 * and # TYPE lines, names herald_cleanup_*, per-worker samples labelled
 * worker="N"; see docs/QUEUE_CONFIG.md). NULL c appends nothing. Any
 * thread (the metrics thread in practice). */
void hd_cleanup_metrics(const hd_cleanup *c, hd_buf *out);

#endif /* HD_CLEANUP_H */
