/* cleanup_test.c - CUnit suite "cleanup": the asynchronous cleanup pool.
 *
 * DESIGN
 * ------
 * Jobs carry real channel references from a real hd_registry (eight
 * channels acquired by the fixture); the test step/leave callbacks count
 * calls per job index (each entry's user_key is "<index>", or "b<index>" for
 * an entry that blocks on a gate until the test opens it) and release the
 * reference, so the fixture's teardown can check that every reference came
 * back (the registry ends empty) and ASan that nothing leaked. The
 * exactly-once test instead drives the connection layer's own disconnect
 * path on a socket-less server (test_world.h).
 *
 * No test asserts an upper bound on speed: waits poll a condition with a
 * generous deadline (WAIT_MS) and only lower bounds of time are asserted
 * (a batch timer never fires early). A failed wait opens the gate before
 * teardown so that nothing hangs.
 *
 * THREADING
 * ---------
 * The runner's thread, the pool's workers and (in two tests) helper
 * threads; everything they share is atomic or under the gate's mutex. In
 * the exactly-once test each helper thread plays one io thread and touches
 * only that thread's sessions, as in the server.
 * Run under ThreadSanitizer by `herald_unit_tests cleanup` in a
 * -DHERALD_SANITIZE=thread build.
 */
#include <CUnit/CUnit.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleanup/cleanup.h"
#include "test_world.h"

#define MAX_KEYS 4096
#define N_CHANNELS 8
#define WAIT_MS 10000u

typedef struct fixture {
    hd_registry *reg;
    hd_channel *chans[N_CHANNELS];
    atomic_uint calls[MAX_KEYS]; /* successful leaves per job index */
    atomic_uint total;           /* successful leaves, all jobs */
    atomic_uint order_n;
    atomic_uint order[MAX_KEYS];       /* job index of the n-th leave */
    atomic_uint_fast64_t first_call_us; /* time of the first leave */
    atomic_uint step_calls;             /* step attempts (step flavour) */
    atomic_uint fail_first;             /* attempts < this answer HD_EAGAIN */
    atomic_int permanent;               /* when set, every step answers it */
    pthread_mutex_t gate_lock;
    pthread_cond_t gate_cond;
    bool gate_open;        /* {gate_lock} */
    unsigned gate_entered; /* {gate_lock} */
} fixture;

static fixture F;

/* ---- fixture ---- */

static void fx_init(void)
{
    memset(&F, 0, sizeof F);
    F.reg = hd_registry_create(1);
    for (unsigned i = 0; i < N_CHANNELS; i++) {
        char name[16];
        int n = snprintf(name, sizeof name, "chan-%u", i);
        F.chans[i] = hd_registry_acquire(F.reg, name, (size_t)n, true);
    }
    pthread_mutex_init(&F.gate_lock, NULL);
    pthread_cond_init(&F.gate_cond, NULL);
}

static void gate_release(void)
{
    pthread_mutex_lock(&F.gate_lock);
    F.gate_open = true;
    pthread_cond_broadcast(&F.gate_cond);
    pthread_mutex_unlock(&F.gate_lock);
}

/* After the pool is destroyed: every job reference must be back. */
static void fx_fini(void)
{
    for (unsigned i = 0; i < N_CHANNELS; i++)
        hd_registry_release(F.reg, F.chans[i]);
    CU_ASSERT_EQUAL(hd_registry_channel_count(F.reg), 0);
    hd_registry_destroy(F.reg);
    pthread_cond_destroy(&F.gate_cond);
    pthread_mutex_destroy(&F.gate_lock);
}

static hd_config cfg_of(uint32_t workers, uint32_t queue, uint32_t batch, uint32_t timeout_ms)
{
    hd_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.cleanup.async_enabled = true;
    cfg.cleanup.fallback_to_sync = true;
    cfg.cleanup.worker_threads = workers;
    cfg.cleanup.queue_buffer_size = queue;
    cfg.cleanup.batch_size = batch;
    cfg.cleanup.batch_timeout_ms = timeout_ms;
    cfg.cleanup.max_retry_attempts = 2;
    cfg.cleanup.stuck_worker_ms = 600000;
    return cfg;
}

/* ---- gate: a leave that blocks until the test opens it ---- */

static void gate_pass(void)
{
    pthread_mutex_lock(&F.gate_lock);
    F.gate_entered++;
    pthread_cond_broadcast(&F.gate_cond);
    while (!F.gate_open)
        pthread_cond_wait(&F.gate_cond, &F.gate_lock);
    pthread_mutex_unlock(&F.gate_lock);
}

static bool gate_wait_entered(unsigned n)
{
    uint64_t deadline = hd_mono_ms() + WAIT_MS;
    pthread_mutex_lock(&F.gate_lock);
    while (F.gate_entered < n && hd_mono_ms() < deadline) {
        pthread_mutex_unlock(&F.gate_lock);
        usleep(1000);
        pthread_mutex_lock(&F.gate_lock);
    }
    bool ok = F.gate_entered >= n;
    pthread_mutex_unlock(&F.gate_lock);
    return ok;
}

/* ---- callbacks ---- */

static void record(const char *key)
{
    bool block = key[0] == 'b';
    unsigned idx = (unsigned)strtoul(key + block, NULL, 10);
    if (block)
        gate_pass();
    uint_fast64_t zero = 0;
    atomic_compare_exchange_strong(&F.first_call_us, &zero, hd_mono_us());
    unsigned pos = atomic_fetch_add(&F.order_n, 1);
    if (pos < MAX_KEYS)
        atomic_store(&F.order[pos], idx);
    atomic_fetch_add(&F.calls[idx], 1);
    atomic_fetch_add(&F.total, 1);
}

static void release_n(hd_channel *ch, size_t n)
{
    for (size_t i = 0; i < n; i++)
        hd_registry_release(F.reg, ch);
}

static void test_leave(void *ctx, void *app, hd_channel *ch, const hd_cleanup_leave *leaves, size_t n)
{
    for (size_t i = 0; i < n; i++)
        record(leaves[i].user_key);
    release_n(ch, n);
}

static int test_step(void *ctx, const hd_cleanup_step *s)
{
    atomic_fetch_add(&F.step_calls, 1);
    int permanent = atomic_load(&F.permanent);
    if (permanent) {
        release_n(s->ch, s->n);
        return permanent;
    }
    if (s->attempt < atomic_load(&F.fail_first)) {
        if (s->final)
            release_n(s->ch, s->n);
        return HD_EAGAIN;
    }
    for (size_t i = 0; i < s->n; i++)
        record(s->leaves[i].user_key);
    release_n(s->ch, s->n);
    return 0;
}

/* ---- helpers ---- */

/* Job idx with one entry per channel (referenced for the job). */
static hd_cleanup_job *make_job(unsigned idx, unsigned n_channels, bool block)
{
    char sid[32], key[16];
    snprintf(sid, sizeof sid, "1.%u", idx);
    snprintf(key, sizeof key, "%s%u", block ? "b" : "", idx);
    hd_cleanup_job *job = hd_cleanup_job_new(NULL, 0, sid);
    for (unsigned c = 0; c < n_channels; c++) {
        hd_channel_ref(F.reg, F.chans[c % N_CHANNELS]);
        hd_cleanup_job_add(job, F.chans[c % N_CHANNELS], hd_strdup(key), NULL);
    }
    return job;
}

static bool wait_total(unsigned n)
{
    uint64_t deadline = hd_mono_ms() + WAIT_MS;
    while (atomic_load(&F.total) < n && hd_mono_ms() < deadline)
        usleep(1000);
    return atomic_load(&F.total) >= n;
}

static uint64_t stat_failures(hd_cleanup *c)
{
    hd_cleanup_stats st;
    hd_cleanup_get_stats(c, &st);
    return st.failures;
}

static bool wait_failures(hd_cleanup *c, uint64_t n)
{
    uint64_t deadline = hd_mono_ms() + WAIT_MS;
    while (stat_failures(c) < n && hd_mono_ms() < deadline)
        usleep(1000);
    return stat_failures(c) >= n;
}

static bool wait_ready(hd_cleanup *c, bool want, hd_buf *why)
{
    uint64_t deadline = hd_mono_ms() + WAIT_MS;
    for (;;) {
        if (why)
            hd_buf_deinit(why);
        if (hd_cleanup_ready(c, why) == want)
            return true;
        if (hd_mono_ms() >= deadline)
            return false;
        usleep(1000);
    }
}

/* ---- tests ---- */

static void test_create_invalid_and_auto(void)
{
    fx_init();
    char dummy;
    hd_cleanup *c = (hd_cleanup *)&dummy; /* must be reset to NULL on error */
    hd_config cfg = cfg_of(1, 0, 1, 1);
    CU_ASSERT_EQUAL(hd_cleanup_create(&c, &cfg, test_leave, NULL), HD_EINVAL);
    CU_ASSERT_PTR_NULL(c);
    cfg = cfg_of(HD_CLEANUP_MAX_WORKERS + 1, 16, 1, 1);
    CU_ASSERT_EQUAL(hd_cleanup_create(&c, &cfg, test_leave, NULL), HD_EINVAL);
    cfg = cfg_of(1, 16, 0, 1);
    CU_ASSERT_EQUAL(hd_cleanup_create_steps(&c, &cfg, test_step, NULL), HD_EINVAL);
    hd_cleanup_destroy(NULL, 0);

    cfg = cfg_of(0, 16, 4, 1); /* auto */
    CU_ASSERT_EQUAL(hd_cleanup_create(&c, &cfg, test_leave, NULL), 0);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned want = cpus >= 2 ? (unsigned)(cpus / 2) : 1;
    CU_ASSERT_EQUAL(hd_cleanup_worker_count(c), want > HD_CLEANUP_MAX_WORKERS ? HD_CLEANUP_MAX_WORKERS : want);
    CU_ASSERT_TRUE(hd_cleanup_ready(c, NULL));
    hd_cleanup_destroy(c, 1000);
    fx_fini();
}

static void test_queue_full_keeps_ownership(void)
{
    fx_init();
    hd_config cfg = cfg_of(1, 2, 1, 1);
    hd_cleanup *c;
    CU_ASSERT_EQUAL(hd_cleanup_create(&c, &cfg, test_leave, NULL), 0);
    CU_ASSERT_EQUAL(hd_cleanup_submit(c, make_job(0, 1, true)), 0);
    CU_ASSERT_TRUE(gate_wait_entered(1)); /* the worker is busy on job 0 */
    CU_ASSERT_EQUAL(hd_cleanup_submit(c, make_job(1, 1, false)), 0);
    CU_ASSERT_EQUAL(hd_cleanup_submit(c, make_job(2, 1, false)), 0);
    hd_cleanup_job *job = make_job(3, 2, false);
    CU_ASSERT_EQUAL(hd_cleanup_submit(c, job), HD_EFULL);
    hd_cleanup_run_sync(c, job); /* still ours, still whole */
    CU_ASSERT_EQUAL(atomic_load(&F.calls[3]), 2);
    CU_ASSERT_EQUAL(atomic_load(&F.calls[1]), 0);
    hd_cleanup_stats st;
    hd_cleanup_get_stats(c, &st);
    CU_ASSERT_EQUAL(st.sync_fallbacks, 1);
    CU_ASSERT_EQUAL(st.submitted, 3);
    CU_ASSERT_EQUAL(st.queue_depth, 2);
    CU_ASSERT_EQUAL(st.queue_capacity, 2);
    CU_ASSERT_EQUAL(st.depth_high_water, 2);
    gate_release();
    hd_cleanup_destroy(c, WAIT_MS);
    CU_ASSERT_EQUAL(atomic_load(&F.total), 5);
    for (unsigned i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(atomic_load(&F.calls[i]), 1);
    fx_fini();
}

/* One batch of 6 jobs on the same 3 channels: one step per channel, each
 * with the 6 sockets in submit order. */
static void test_batch_grouped_by_channel(void)
{
    enum { JOBS = 6, CHANNELS = 3 };
    fx_init();
    hd_config cfg = cfg_of(1, 64, JOBS, 60000); /* the batch forms by size only */
    hd_cleanup *c;
    CU_ASSERT_EQUAL(hd_cleanup_create_steps(&c, &cfg, test_step, NULL), 0);
    for (unsigned i = 0; i < JOBS; i++)
        CU_ASSERT_EQUAL(hd_cleanup_submit(c, make_job(i, CHANNELS, false)), 0);
    CU_ASSERT_TRUE(wait_total(JOBS * CHANNELS));
    CU_ASSERT_EQUAL(atomic_load(&F.step_calls), CHANNELS);
    unsigned out_of_order = 0;
    for (unsigned g = 0; g < CHANNELS; g++)
        for (unsigned i = 0; i < JOBS; i++)
            out_of_order += atomic_load(&F.order[g * JOBS + i]) != i;
    CU_ASSERT_EQUAL(out_of_order, 0);
    for (unsigned i = 0; i < JOBS; i++)
        CU_ASSERT_EQUAL(atomic_load(&F.calls[i]), CHANNELS);
    hd_cleanup_stats st;
    hd_cleanup_get_stats(c, &st);
    CU_ASSERT_EQUAL(st.batches, 1);
    CU_ASSERT_EQUAL(st.completed, JOBS);
    hd_cleanup_destroy(c, 1000);
    fx_fini();
}

static void test_fifo_single_worker(void)
{
    enum { N = 500 };
    fx_init();
    hd_config cfg = cfg_of(1, 1024, 7, 1);
    hd_cleanup *c;
    CU_ASSERT_EQUAL(hd_cleanup_create(&c, &cfg, test_leave, NULL), 0);
    for (unsigned i = 0; i < N; i++)
        CU_ASSERT_EQUAL(hd_cleanup_submit(c, make_job(i, 1, false)), 0);
    CU_ASSERT_TRUE(wait_total(N));
    unsigned out_of_order = 0;
    for (unsigned i = 0; i < N; i++)
        out_of_order += atomic_load(&F.order[i]) != i;
    CU_ASSERT_EQUAL(out_of_order, 0);
    hd_cleanup_stats st;
    hd_cleanup_get_stats(c, &st);
    CU_ASSERT_EQUAL(st.submitted, N);
    CU_ASSERT_EQUAL(st.completed, N);
    CU_ASSERT_EQUAL(st.batch_jobs, N);
    CU_ASSERT(st.batches >= (N + 6) / 7); /* never more than batch_size at once */
    CU_ASSERT_EQUAL(st.latency_count, N);
    CU_ASSERT(st.latency_p50_us <= st.latency_p99_us && st.latency_p99_us <= st.latency_max_us);
    hd_cleanup_destroy(c, WAIT_MS);
    fx_fini();
}

static void test_batch_by_size(void)
{
    fx_init();
    hd_config cfg = cfg_of(1, 64, 8, 10000); /* the timer alone would wait 10 s */
    hd_cleanup *c;
    CU_ASSERT_EQUAL(hd_cleanup_create(&c, &cfg, test_leave, NULL), 0);
    for (unsigned i = 0; i < 7; i++)
        CU_ASSERT_EQUAL(hd_cleanup_submit(c, make_job(i, 1, false)), 0);
    usleep(100 * 1000);
    CU_ASSERT_EQUAL(atomic_load(&F.total), 0); /* 7 < batch_size and the timer is 10 s */
    CU_ASSERT_EQUAL(hd_cleanup_submit(c, make_job(7, 1, false)), 0);
    uint64_t deadline = hd_mono_ms() + 8000; /* well before the 10 s timer */
    while (atomic_load(&F.total) < 8 && hd_mono_ms() < deadline)
        usleep(1000);
    CU_ASSERT_EQUAL(atomic_load(&F.total), 8);
    hd_cleanup_stats st;
    hd_cleanup_get_stats(c, &st);
    CU_ASSERT_EQUAL(st.batches, 1);
    CU_ASSERT_EQUAL(st.batch_jobs, 8);
    hd_cleanup_destroy(c, WAIT_MS);
    fx_fini();
}

static void test_batch_by_timeout(void)
{
    fx_init();
    hd_config cfg = cfg_of(1, 64, 64, 200);
    hd_cleanup *c;
    CU_ASSERT_EQUAL(hd_cleanup_create(&c, &cfg, test_leave, NULL), 0);
    uint64_t t0 = hd_mono_us();
    for (unsigned i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(hd_cleanup_submit(c, make_job(i, 1, false)), 0);
    CU_ASSERT_TRUE(wait_total(3));
    /* Lower bound only: the timer starts at the first job's submit. */
    CU_ASSERT(atomic_load(&F.first_call_us) >= t0 + 200 * 1000);
    hd_cleanup_stats st;
    hd_cleanup_get_stats(c, &st);
    CU_ASSERT_EQUAL(st.batch_jobs, 3);
    CU_ASSERT(st.batches >= 1 && st.batches <= 3);
    CU_ASSERT(st.latency_max_us >= 200 * 1000);
    hd_cleanup_destroy(c, WAIT_MS);
    fx_fini();
}

static void test_shutdown_drains_everything(void)
{
    enum { N = 600 };
    fx_init();
    hd_config cfg = cfg_of(2, 1000, 1000, 10000); /* jobs sit in the queues */
    hd_cleanup *c;
    CU_ASSERT_EQUAL(hd_cleanup_create(&c, &cfg, test_leave, NULL), 0);
    for (unsigned i = 0; i < N; i++)
        CU_ASSERT_EQUAL(hd_cleanup_submit(c, make_job(i, 2, false)), 0);
    hd_cleanup_destroy(c, WAIT_MS);
    CU_ASSERT_EQUAL(atomic_load(&F.total), 2 * N);
    unsigned wrong = 0;
    for (unsigned i = 0; i < N; i++)
        wrong += atomic_load(&F.calls[i]) != 2;
    CU_ASSERT_EQUAL(wrong, 0);
    fx_fini();
}

static void *destroy_thread(void *arg)
{
    hd_cleanup_destroy(arg, 50);
    return NULL;
}

/* A worker stuck past the drain time: destroy runs its queue itself. */
static void test_destroy_runs_leftovers(void)
{
    enum { N = 50 };
    fx_init();
    hd_config cfg = cfg_of(1, 100, 1, 1);
    hd_cleanup *c;
    CU_ASSERT_EQUAL(hd_cleanup_create(&c, &cfg, test_leave, NULL), 0);
    CU_ASSERT_EQUAL(hd_cleanup_submit(c, make_job(N, 1, true)), 0);
    CU_ASSERT_TRUE(gate_wait_entered(1));
    for (unsigned i = 0; i < N; i++)
        CU_ASSERT_EQUAL(hd_cleanup_submit(c, make_job(i, 1, false)), 0);
    pthread_t t;
    CU_ASSERT_EQUAL(pthread_create(&t, NULL, destroy_thread, c), 0);
    CU_ASSERT_TRUE(wait_total(N)); /* run while the worker is still blocked */
    CU_ASSERT_EQUAL(atomic_load(&F.calls[N]), 0);
    gate_release();
    pthread_join(t, NULL);
    CU_ASSERT_EQUAL(atomic_load(&F.total), N + 1);
    fx_fini();
}

static void test_async_disabled(void)
{
    fx_init();
    hd_config cfg = cfg_of(4, 16, 4, 1);
    cfg.cleanup.async_enabled = false;
    hd_cleanup *c;
    CU_ASSERT_EQUAL(hd_cleanup_create(&c, &cfg, test_leave, NULL), 0);
    CU_ASSERT_EQUAL(hd_cleanup_worker_count(c), 0);
    for (unsigned i = 0; i < 100; i++) {
        hd_cleanup_job *job = make_job(i, 1, false);
        CU_ASSERT_EQUAL(hd_cleanup_submit(c, job), HD_EFULL);
        hd_cleanup_run_sync(c, job);
    }
    CU_ASSERT_EQUAL(atomic_load(&F.total), 100);
    hd_cleanup_stats st;
    hd_cleanup_get_stats(c, &st);
    CU_ASSERT_EQUAL(st.sync_fallbacks, 100);
    CU_ASSERT_EQUAL(st.submitted, 0);
    CU_ASSERT_EQUAL(st.workers, 0);
    CU_ASSERT_TRUE(hd_cleanup_ready(c, NULL));
    hd_buf m;
    hd_buf_init(&m);
    hd_cleanup_metrics(c, &m);
    CU_ASSERT_PTR_NOT_NULL(strstr(m.data, "\nherald_cleanup_workers 0\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(m.data, "\nherald_cleanup_async_enabled 0\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(m.data, "\nherald_cleanup_sync_fallbacks_total 100\n"));
    hd_buf_deinit(&m);
    hd_cleanup_destroy(c, 0);
    fx_fini();
}

static void test_retry_then_success(void)
{
    fx_init();
    atomic_store(&F.fail_first, 2); /* HD_EAGAIN twice, then 0 */
    hd_config cfg = cfg_of(1, 16, 1, 1);
    hd_cleanup *c;
    CU_ASSERT_EQUAL(hd_cleanup_create_steps(&c, &cfg, test_step, NULL), 0);
    CU_ASSERT_EQUAL(hd_cleanup_submit(c, make_job(0, 2, false)), 0);
    CU_ASSERT_TRUE(wait_total(2));
    hd_cleanup_run_sync(c, make_job(1, 1, false));
    CU_ASSERT_EQUAL(atomic_load(&F.total), 3);
    hd_cleanup_stats st;
    hd_cleanup_get_stats(c, &st);
    CU_ASSERT_EQUAL(st.retries, 6);
    CU_ASSERT_EQUAL(st.failures, 0);
    CU_ASSERT_EQUAL(atomic_load(&F.step_calls), 9);
    hd_cleanup_worker_stats ws;
    hd_cleanup_get_worker_stats(c, 0, &ws);
    CU_ASSERT_EQUAL(ws.retries, 4); /* the other 2 were on the sync path */
    hd_cleanup_destroy(c, WAIT_MS);
    fx_fini();
}

static void test_retry_exhausted_and_permanent(void)
{
    fx_init();
    atomic_store(&F.fail_first, UINT_MAX); /* always HD_EAGAIN */
    hd_config cfg = cfg_of(1, 16, 1, 1);
    cfg.cleanup.max_retry_attempts = 3;
    hd_cleanup *c;
    CU_ASSERT_EQUAL(hd_cleanup_create_steps(&c, &cfg, test_step, NULL), 0);
    CU_ASSERT_EQUAL(hd_cleanup_submit(c, make_job(0, 2, false)), 0);
    CU_ASSERT_TRUE(wait_failures(c, 2));
    hd_cleanup_stats st;
    hd_cleanup_get_stats(c, &st);
    CU_ASSERT_EQUAL(st.failures, 2);
    CU_ASSERT_EQUAL(st.retries, 6);
    CU_ASSERT_EQUAL(atomic_load(&F.step_calls), 8); /* 1 + 3 retries, per channel */
    CU_ASSERT_EQUAL(atomic_load(&F.total), 0);
    atomic_store(&F.permanent, HD_EIO); /* not retried */
    hd_cleanup_run_sync(c, make_job(1, 1, false));
    hd_cleanup_get_stats(c, &st);
    CU_ASSERT_EQUAL(st.failures, 3);
    CU_ASSERT_EQUAL(st.retries, 6);
    CU_ASSERT_EQUAL(atomic_load(&F.step_calls), 9);
    hd_cleanup_destroy(c, WAIT_MS);
    fx_fini(); /* the references of the failed steps came back too */
}

/* Index of the worker currently busy on a batch, or -1. */
static int busy_worker(hd_cleanup *c)
{
    for (unsigned i = 0; i < hd_cleanup_worker_count(c); i++) {
        hd_cleanup_worker_stats ws;
        hd_cleanup_get_worker_stats(c, i, &ws);
        if (ws.stuck)
            return (int)i;
    }
    return -1;
}

static void test_stuck_worker(void)
{
    enum { N = 20 };
    fx_init();
    hd_config cfg = cfg_of(2, 64, 1, 1);
    cfg.cleanup.stuck_worker_ms = 1000; /* well above any scheduling hiccup of worker 1 */
    hd_cleanup *c;
    CU_ASSERT_EQUAL(hd_cleanup_create(&c, &cfg, test_leave, NULL), 0);
    CU_ASSERT_EQUAL(hd_cleanup_submit(c, make_job(N, 1, true)), 0); /* round-robin: worker 0 */
    CU_ASSERT_TRUE(gate_wait_entered(1));
    hd_buf why;
    hd_buf_init(&why);
    CU_ASSERT_TRUE(wait_ready(c, false, &why));
    CU_ASSERT_PTR_NOT_NULL(why.data ? strstr(why.data, "cleanup worker 0 stuck") : NULL);
    CU_ASSERT_EQUAL(busy_worker(c), 0);
    for (unsigned i = 0; i < N; i++)
        CU_ASSERT_EQUAL(hd_cleanup_submit(c, make_job(i, 1, false)), 0);
    CU_ASSERT_TRUE(wait_total(N)); /* worker 1 ran them all */
    hd_cleanup_worker_stats w0, w1;
    hd_cleanup_get_worker_stats(c, 0, &w0);
    hd_cleanup_get_worker_stats(c, 1, &w1);
    CU_ASSERT_EQUAL(w0.submitted, 1);
    CU_ASSERT_EQUAL(w1.submitted, N);
    CU_ASSERT_TRUE(w0.stuck);
    hd_cleanup_stats st;
    hd_cleanup_get_stats(c, &st);
    CU_ASSERT_EQUAL(st.stuck_skips, N / 2); /* every other submit started at worker 0 */
    CU_ASSERT_EQUAL(st.stuck_workers, 1);
    hd_buf m;
    hd_buf_init(&m);
    hd_cleanup_metrics(c, &m);
    CU_ASSERT_PTR_NOT_NULL(strstr(m.data, "herald_cleanup_worker_stuck{worker=\"0\"} 1\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(m.data, "herald_cleanup_worker_stuck{worker=\"1\"} 0\n"));
    hd_buf_deinit(&m);
    gate_release();
    CU_ASSERT_TRUE(wait_ready(c, true, &why));
    hd_buf_deinit(&why);
    hd_cleanup_destroy(c, WAIT_MS);
    CU_ASSERT_EQUAL(atomic_load(&F.total), N + 1);
    fx_fini();
}

/* ---- many io threads disconnecting their sessions at once ---- */

/* The claim "exactly one cleanup per socket" lives in the connection
 * layer, not in the pool: hd_session_disconnect() marks the session
 * cleaned (hd_session.cleaned) and hands its memberships over once; the
 * pool runs every job it accepted, and the caller runs the ones it refused.
 * So this test drives real sessions of a socket-less server
 * (test_world.h): io threads of their own close their sessions at the same
 * time (LWS_CALLBACK_CLOSED, which disconnects), each followed at once by
 * a second disconnect of the same session, as a second path to it would;
 * the pool's queues are small, so some jobs go to the workers and some
 * run on the io thread. Every socket must have left each of its channels
 * exactly once: one job per socket, the registry back to empty (a second
 * leave would drive a count below zero, a missing one would leave it
 * above). */

enum { RACE_THREADS = 4, RACE_PER_THREAD = 12, RACE_SOCKETS = RACE_THREADS * RACE_PER_THREAD };

typedef struct racer {
    hd_tw *w;
    unsigned thread;
} racer;

static void *racer_main(void *arg)
{
    racer *me = arg;
    for (unsigned i = me->thread; i < RACE_SOCKETS; i += RACE_THREADS) {
        hd_session *s = hd_tw_session(me->w, i);
        hd_tw_close(me->w, i);      /* disconnects: the session is cleaned */
        hd_session_disconnect(s);   /* again: must hand nothing over */
    }
    return NULL;
}

static uint32_t channel_subscribers(hd_registry *reg, const char *name)
{
    hd_channel *ch = hd_registry_acquire(reg, name, strlen(name), false);
    uint32_t subs = 0, users = 0;
    if (ch) {
        hd_channel_counts(ch, &subs, &users);
        hd_registry_release(reg, ch);
    }
    return subs;
}

static void subscribe_to(hd_tw *w, unsigned i, const char *channel, bool private_channel)
{
    char msg[512], str[160], auth[200];
    if (private_channel) {
        snprintf(str, sizeof str, "%s:%s", hd_tw_session(w, i)->socket_id, channel);
        hd_tw_sign("app-key", "app-secret", str, auth, sizeof auth);
        snprintf(msg, sizeof msg, "{\"event\":\"pusher:subscribe\",\"data\":{\"channel\":\"%s\",\"auth\":\"%s\"}}",
                 channel, auth);
    } else {
        snprintf(msg, sizeof msg, "{\"event\":\"pusher:subscribe\",\"data\":{\"channel\":\"%s\"}}", channel);
    }
    hd_tw_send(w, i, msg);
}

static void test_disconnect_exactly_once(void)
{
    hd_tw_options opt = {.io_threads = RACE_THREADS, .async_cleanup = true};
    hd_tw *w = hd_tw_new(&opt);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    hd_registry *reg = hd_server_app_by_key(w->srv, "app-key")->registry;
    char own[RACE_SOCKETS][16];
    for (unsigned i = 0; i < RACE_SOCKETS; i++) {
        hd_session *s = hd_tw_open(w, i, NULL); /* on io thread i % RACE_THREADS */
        snprintf(own[i], sizeof own[i], "own-%u", i);
        subscribe_to(w, i, "shared", false);
        subscribe_to(w, i, "private-shared", true);
        subscribe_to(w, i, own[i], false);
        CU_ASSERT_EQUAL(s->n_subs, 3);
    }
    hd_tw_pump(w);
    CU_ASSERT_EQUAL(channel_subscribers(reg, "shared"), RACE_SOCKETS);
    CU_ASSERT_EQUAL(channel_subscribers(reg, "private-shared"), RACE_SOCKETS);
    hd_cleanup *pool = w->srv->cleanup;
    pthread_t t[RACE_THREADS];
    racer rs[RACE_THREADS];
    for (unsigned k = 0; k < RACE_THREADS; k++) {
        rs[k] = (racer){w, k};
        CU_ASSERT_EQUAL_FATAL(pthread_create(&t[k], NULL, racer_main, &rs[k]), 0);
    }
    for (unsigned k = 0; k < RACE_THREADS; k++)
        pthread_join(t[k], NULL);
    hd_cleanup_stats st;
    uint64_t deadline = hd_mono_ms() + WAIT_MS;
    for (;;) { /* the workers finish what they accepted */
        hd_cleanup_get_stats(pool, &st);
        if (st.completed >= st.submitted || hd_mono_ms() >= deadline)
            break;
        usleep(1000);
    }
    CU_ASSERT_EQUAL(st.completed, st.submitted);
    CU_ASSERT_EQUAL(st.submitted + st.sync_fallbacks, RACE_SOCKETS); /* one job per socket, none for the repeats */
    unsigned not_cleaned = 0, left_over = 0;
    for (unsigned i = 0; i < RACE_SOCKETS; i++) {
        not_cleaned += !hd_tw_session(w, i)->cleaned;
        left_over += channel_subscribers(reg, own[i]);
    }
    CU_ASSERT_EQUAL(not_cleaned, 0);
    CU_ASSERT_EQUAL(left_over, 0);
    CU_ASSERT_EQUAL(channel_subscribers(reg, "shared"), 0);
    CU_ASSERT_EQUAL(channel_subscribers(reg, "private-shared"), 0);
    hd_tw_pump(w); /* the member and count frames published meanwhile */
    CU_ASSERT_EQUAL(hd_registry_channel_count(reg), 0);
    hd_tw_free(w);
}

/* Every exposition line is a comment or `herald_cleanup_<name>[{labels}] <value>`. */
static bool exposition_well_formed(const char *text)
{
    for (const char *line = text; *line;) {
        const char *nl = strchr(line, '\n');
        if (!nl)
            return false; /* every line ends with \n */
        bool ok = !strncmp(line, "# HELP herald_cleanup_", 22) || !strncmp(line, "# TYPE herald_cleanup_", 22) ||
                  (!strncmp(line, "herald_cleanup_", 15) && memchr(line, ' ', (size_t)(nl - line)));
        if (!ok)
            return false;
        line = nl + 1;
    }
    return true;
}

static void test_metrics_text(void)
{
    fx_init();
    hd_config cfg = cfg_of(2, 16, 1, 1);
    hd_cleanup *c;
    CU_ASSERT_EQUAL(hd_cleanup_create(&c, &cfg, test_leave, NULL), 0);
    for (unsigned i = 0; i < 10; i++)
        CU_ASSERT_EQUAL(hd_cleanup_submit(c, make_job(i, 1, false)), 0);
    CU_ASSERT_TRUE(wait_total(10));
    hd_buf m;
    hd_buf_init(&m);
    hd_cleanup_metrics(c, &m);
    CU_ASSERT_TRUE(exposition_well_formed(m.data));
    static const char *const want[] = {
        "# TYPE herald_cleanup_queue_depth gauge\n",
        "herald_cleanup_queue_capacity{worker=\"1\"} 16\n",
        "# TYPE herald_cleanup_jobs_completed_total counter\n",
        "herald_cleanup_jobs_submitted_total{worker=\"0\"} 5\n",
        "herald_cleanup_step_retries_total{worker=\"sync\"} 0\n",
        "# TYPE herald_cleanup_job_latency_seconds histogram\n",
        "herald_cleanup_job_latency_seconds_bucket{worker=\"0\",le=\"0.0001\"} ",
        "herald_cleanup_job_latency_seconds_bucket{worker=\"1\",le=\"+Inf\"} 5\n",
        "herald_cleanup_job_latency_seconds_count{worker=\"1\"} 5\n",
        "herald_cleanup_workers 2\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!strstr(m.data, want[i]))
            CU_FAIL(want[i]);
    hd_buf_deinit(&m);
    hd_cleanup_metrics(NULL, &m); /* appends nothing */
    CU_ASSERT_EQUAL(m.len, 0);
    hd_cleanup_destroy(c, WAIT_MS);
    fx_fini();
}

void hd_test_suite_cleanup(void)
{
    CU_pSuite s = CU_add_suite("cleanup", NULL, NULL);
    CU_add_test(s, "create: invalid config, auto workers", test_create_invalid_and_auto);
    CU_add_test(s, "queue full: HD_EFULL, job stays with the caller", test_queue_full_keeps_ownership);
    CU_add_test(s, "FIFO order on one worker", test_fifo_single_worker);
    CU_add_test(s, "a batch takes each channel once, sockets in order", test_batch_grouped_by_channel);
    CU_add_test(s, "batch by size", test_batch_by_size);
    CU_add_test(s, "batch by timeout", test_batch_by_timeout);
    CU_add_test(s, "destroy drains every queued job", test_shutdown_drains_everything);
    CU_add_test(s, "destroy runs leftovers past the drain time", test_destroy_runs_leftovers);
    CU_add_test(s, "async_enabled false: always HD_EFULL", test_async_disabled);
    CU_add_test(s, "retries: HD_EAGAIN twice then success", test_retry_then_success);
    CU_add_test(s, "retries exhausted, permanent failure", test_retry_exhausted_and_permanent);
    CU_add_test(s, "stuck worker: not ready, skipped by submit", test_stuck_worker);
    CU_add_test(s, "io threads disconnecting at once: exactly one cleanup per socket", test_disconnect_exactly_once);
    CU_add_test(s, "Prometheus text", test_metrics_text);
}
