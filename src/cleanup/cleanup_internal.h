/* cleanup_internal.h - what job.c, pool.c, worker.c and stats.c share: the
 * job layout, the pool and worker structs, the counters.
 *
 * DESIGN
 * ------
 * pool.c owns the lifecycle (create, submit, run_sync, ready, destroy),
 * worker.c the worker threads and their ring queues, stats.c the counters
 * and the Prometheus text, job.c building and running one job.
 *
 * THREADING
 * ---------
 * Fields marked {lock} are guarded by their worker's lock; {const} fields
 * are set before the workers start and never change; {worker} fields are
 * touched by that worker thread only (and by destroy after joining it);
 * atomics may be read by any thread. Counters use relaxed ordering: they
 * are statistics, not synchronisation.
 */
#ifndef HD_CLEANUP_INTERNAL_H
#define HD_CLEANUP_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#include "cleanup.h"
#include "common/common.h"

typedef struct hd_cleanup_entry {
    hd_channel *ch; /* reference owned by the job */
    char *user_key;
    char *user_id_json;
} hd_cleanup_entry;

struct hd_cleanup_job {
    void *app;
    unsigned thread;
    char socket_id[HD_SOCKET_ID_MAX];
    hd_cleanup_entry *entries;
    size_t n, cap;
    uint64_t enqueued_us; /* set by submit (monotonic) */
};

/* Job latency histogram: bucket i counts latencies <= bucket_le_us[i]; the
 * last bucket is +Inf. */
#define HD_CLEANUP__NBUCKETS 12
extern const uint64_t hd_cleanup__bucket_le_us[HD_CLEANUP__NBUCKETS - 1];

typedef atomic_uint_fast64_t hd_counter;

/* One worker's (or the synchronous path's) counters; any thread reads. */
typedef struct hd_cleanup_counters {
    hd_counter submitted, completed, batches, batch_jobs;
    hd_counter retries, failures;
    hd_counter lat_sum_us, lat_count, lat_max_us;
    hd_counter lat_bucket[HD_CLEANUP__NBUCKETS]; /* not cumulative */
} hd_cleanup_counters;

/* How to run a job's steps. {const} */
typedef struct hd_cleanup_runner {
    hd_cleanup_step_fn step;
    void *ctx;
    unsigned max_retry;
} hd_cleanup_runner;

typedef struct hd_cleanup_worker {
    hd_cleanup *pool;          /* {const} */
    unsigned index;            /* {const} */
    uint32_t capacity;         /* {const} ring slots */
    pthread_t thread;          /* main thread only */
    bool started;              /* main thread only */
    pthread_mutex_t lock;
    pthread_cond_t work;       /* {lock} worker waits: a batch may be due, or stop */
    pthread_cond_t progress;   /* {lock} destroy waits: a batch ended, or the worker exited */
    hd_cleanup_job **ring;     /* {lock} capacity slots, allocated once */
    uint32_t head, count;      /* {lock} oldest slot, jobs queued */
    bool stop;                 /* {lock} set once by destroy */
    bool exited;               /* {lock} the worker thread is leaving */
    hd_cleanup_job **batch;    /* {worker} pool->batch_max slots */
    uint64_t *enqueued_us;     /* {worker} submit times of the batch's jobs */
    atomic_uint_fast32_t depth;      /* mirror of count for readers */
    atomic_uint_fast32_t high_water; /* highest count seen */
    atomic_uint_fast64_t busy_since_us; /* heartbeat: start of the current batch, 0 when idle */
    atomic_uint_fast32_t busy_jobs;     /* size of the current batch */
    atomic_bool stuck_logged;           /* "stuck" logged for the current batch */
    hd_cleanup_counters ctr;
} hd_cleanup_worker;

struct hd_cleanup {
    hd_cleanup_runner run;          /* {const} */
    hd_cleanup_leave_fn leave;      /* {const} hd_cleanup_create's callback, or NULL */
    void *leave_ctx;                /* {const} */
    bool async;                     /* {const} async_enabled */
    unsigned n_workers;             /* {const} 0 when async is off */
    hd_cleanup_worker **workers;    /* {const} array; each worker is its own allocation */
    uint32_t batch_max;             /* {const} min(batch_size, queue_buffer_size) */
    uint64_t batch_timeout_us;      /* {const} */
    uint64_t stuck_us;              /* {const} */
    uint64_t drain_deadline_us;     /* written by destroy before it sets each worker's stop under
                                     * that worker's lock; read by workers under their lock */
    atomic_bool shutting_down;
    atomic_uint next_worker;        /* round-robin cursor */
    hd_counter sync_fallbacks;      /* hd_cleanup_run_sync calls */
    hd_counter drained_sync;        /* jobs destroy ran itself */
    hd_counter stuck_skips;
    atomic_uint_fast64_t last_full_log_ms;
    hd_cleanup_counters sync_ctr;   /* retries/failures/completed of jobs run off the workers */
};

/* ---- job.c ---- */
/* Run every entry of jobs[0..n) through r's step, one call per (app,
 * channel) with that channel's leaves in submit order (with retries,
 * counted in ctr), then free the jobs. */
void hd_cleanup__run_jobs(const hd_cleanup_runner *r, hd_cleanup_job *const *jobs, size_t n,
                          hd_cleanup_counters *ctr);

/* ---- worker.c ---- */
/* Allocate worker index of c (not started). */
hd_cleanup_worker *hd_cleanup__worker_new(hd_cleanup *c, unsigned index, uint32_t capacity);
/* Start its thread; HD_ETHREAD on failure. */
int hd_cleanup__worker_start(hd_cleanup_worker *w);
/* Append job to w's ring unless full or stopping: 0, HD_EFULL or HD_ESHUTDOWN. Takes w's lock. */
int hd_cleanup__worker_push(hd_cleanup_worker *w, hd_cleanup_job *job);
/* Set stop and wake the worker; the pool's drain deadline must be set. */
void hd_cleanup__worker_stop(hd_cleanup_worker *w);
/* Wait until w's queue is empty, w exited or the drain deadline passed;
 * then run what is left on the calling thread. Returns how many it ran. */
size_t hd_cleanup__worker_drain(hd_cleanup_worker *w);
/* Join (if started) and free. The queue must be empty. */
void hd_cleanup__worker_free(hd_cleanup_worker *w);
/* True when w has been busy on one batch for longer than stuck_us. */
bool hd_cleanup__worker_stuck(const hd_cleanup_worker *w, uint64_t now_us, uint64_t stuck_us);

/* ---- stats.c ---- */
/* Record one job's submit -> done latency. */
void hd_cleanup__latency_record(hd_cleanup_counters *ctr, uint64_t us);
/* Raise a relaxed atomic maximum. */
void hd_cleanup__atomic_max64(atomic_uint_fast64_t *a, uint64_t v);
void hd_cleanup__atomic_max32(atomic_uint_fast32_t *a, uint32_t v);

#endif /* HD_CLEANUP_INTERNAL_H */
