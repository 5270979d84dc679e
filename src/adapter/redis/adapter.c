/* adapter.c - the Redis adapter's ops table, its lifetime (create, start,
 * graceful leave, destroy) and the adapter thread: its libev loop, timers
 * and the drain of the op queue.
 *
 * THREADING: create, start, leave_cluster and destroy run on the main
 * thread; everything reached from the loop (wake_cb, the timers) on the
 * adapter thread. The main thread talks to the adapter thread only through
 * q_lock-guarded flags and ev_async_send.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "adapter/redis/redis.h"

static const char *const state_names[RD_ST_COUNT] = {"connecting", "registering", "resyncing", "up",
                                                     "down",       "leaving",     "left"};

const char *rd_state_name(int st)
{
    return st >= 0 && st < RD_ST_COUNT ? state_names[st] : "?";
}

bool rd_state_is(const hd_rd *rd, int st)
{
    return atomic_load_explicit(&rd->state, memory_order_relaxed) == st;
}

void rd_set_state(hd_rd *rd, int st)
{
    int was = atomic_exchange(&rd->state, st);
    if (was == st)
        return;
    atomic_store(&rd->state_since_ms, hd_wall_ms());
    /* each reconnect attempt goes down -> connecting -> down: not a line each */
    bool retry = (was == RD_ST_DOWN && st == RD_ST_CONNECTING) || (was == RD_ST_CONNECTING && st == RD_ST_DOWN);
    int level = retry ? HD_LOG_DEBUG : st == RD_ST_UP || st == RD_ST_DOWN ? HD_LOG_NOTICE : HD_LOG_INFO;
    hd_log(level, RD_MOD, "cluster state %s -> %s%s%s",
           rd_state_name(was), rd_state_name(st), st == RD_ST_UP ? ", node " : "", st == RD_ST_UP ? rd->inc : "");
}

void rd_set_why(hd_rd *rd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&rd->why_lock);
    vsnprintf(rd->why, sizeof rd->why, fmt, ap);
    pthread_mutex_unlock(&rd->why_lock);
    va_end(ap);
}

long long rd_int(const redisReply *r, size_t i, long long dflt)
{
    if (!r || r->type != REDIS_REPLY_ARRAY || i >= r->elements)
        return dflt;
    const redisReply *e = r->element[i];
    if (e->type == REDIS_REPLY_INTEGER)
        return e->integer;
    if (e->type == REDIS_REPLY_STRING)
        return strtoll(e->str, NULL, 10);
    return dflt;
}

uint64_t rd_random(hd_rd *rd)
{
    /* xorshift64*: jitter and nothing secret */
    uint64_t x = rd->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rd->rng = x;
    return x * 2685821657736338717ull;
}

/* ---- the drain ---- */

/* The op cannot reach Redis: answer what waits for an answer, count the rest. */
void rd_op_fail(hd_rd *rd, rd_op *op, int reason)
{
    switch (op->kind) {
    case RD_OP_MEMBER:
    case RD_OP_WATCH:
        if (op->reply_to.token)
            rd_join_degraded(rd, op->app, op->channel, op->channel_len, op->reply_to);
        break;
    case RD_OP_PUBLISH:
        rd_count_drop(rd, reason, "a publish to other nodes");
        break;
    case RD_OP_TERMINATE:
        rd_count_drop(rd, reason, "a terminate_connections to other nodes");
        break;
    case RD_OP_QUOTA:
        if (op->delta > 0 && op->reply_to.token)
            rd_quota_degraded(rd, op->app, op->reply_to);
        break;
    case RD_OP_READ:
        rd_reply_status(rd, op->reply_to, HD_AD_UNAVAILABLE);
        break;
    default:
        break;
    }
    rd_op_discard(rd, op);
}

static void dispatch(hd_rd *rd, rd_op *op)
{
    int st = atomic_load(&rd->state);
    bool membership = op->kind == RD_OP_MEMBER || op->kind == RD_OP_WATCH || op->kind == RD_OP_QUOTA;
    if (membership && (st == RD_ST_LEAVING || st == RD_ST_LEFT)) {
        /* this node has left: its clients are being closed, and their leaves
         * must not register state again */
        if (op->kind != RD_OP_QUOTA && op->reply_to.token)
            rd_join_degraded(rd, op->app, op->channel, op->channel_len, op->reply_to);
        else if (op->kind == RD_OP_QUOTA && op->delta > 0 && op->reply_to.token)
            rd_quota_degraded(rd, op->app, op->reply_to);
        rd_op_discard(rd, op);
        return;
    }
    switch (op->kind) {
    case RD_OP_MEMBER:
    case RD_OP_WATCH:
    case RD_OP_PUBLISH:
    case RD_OP_TERMINATE:
        rd_pubsub_dispatch(rd, op);
        break;
    case RD_OP_QUOTA:
        rd_quota_send(rd, op);
        break;
    case RD_OP_READ:
        if (op->what == HD_AD_READ_ONLINE)
            rd_pubsub_after_subs(rd, op);
        else
            rd_read_send(rd, op);
        break;
    case RD_OP_RESYNC_END: {
        unsigned gen = (unsigned)op->delta;
        rd_op_discard(rd, op);
        rd_resync_end_marker(rd, gen);
        break;
    }
    default:
        rd_op_discard(rd, op);
    }
}

void rd_drain(hd_rd *rd)
{
    if (rd->stopping)
        return;
    int st = atomic_load(&rd->state);
    bool usable = rd_link_ready(rd) && rd->handshake_left == 0;
    /* registering: hold the queue (ops need a lease; the resync that follows
     * is queued behind them, in order) */
    if (usable && st == RD_ST_REGISTERING)
        return;
    bool sending = usable && st != RD_ST_CONNECTING && st != RD_ST_DOWN;
    rd_op *list = rd_queue_take_all(rd);
    while (list) {
        if (sending && rd->inflight_bytes >= rd->queue_limit) {
            rd_queue_put_back(rd, list); /* resumed as replies come back (conn.c) */
            break;
        }
        rd_op *op = list;
        list = op->next;
        op->next = NULL;
        if (!sending)
            rd_op_fail(rd, op, RD_DROP_REDIS_DOWN);
        else
            dispatch(rd, op);
    }
    if (sending)
        rd_pubsub_flush(rd);
}

/* ---- the loop ---- */

static void wake_cb(struct ev_loop *loop, ev_async *w, int revents)
{
    hd_rd *rd = w->data;
    (void)revents;
    pthread_mutex_lock(&rd->q_lock);
    bool stop = rd->stop, leave = rd->leave_asked && !rd->leave_started;
    if (leave)
        rd->leave_started = true;
    pthread_mutex_unlock(&rd->q_lock);
    if (stop) {
        ev_break(loop, EVBREAK_ALL);
        return;
    }
    if (leave)
        rd_leave_start(rd);
    rd_drain(rd);
}

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    hd_rd *rd = w->data;
    (void)loop, (void)revents;
    uint64_t now = hd_mono_ms();
    rd_cmd_tick(rd, now);
    rd_pubsub_tick(rd, now);
    rd_waits_tick(rd, now);
    rd_lease_tick(rd, now);
    rd_dirty_tick(rd, now);
}

static void reap_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop, (void)revents;
    rd_reap_scan(w->data);
}

static void holds_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop, (void)revents;
    rd_holds_poll(w->data);
}

static void *thread_main(void *arg)
{
    hd_rd *rd = arg;
    rd_conn_start(rd);
    ev_run(rd->loop, 0);
    /* destroy: silent teardown, nothing is answered any more */
    rd->stopping = true;
    rd_conn_close(rd);
    rd_pubsub_reset(rd);
    rd_waits_fail_all(rd);
    return NULL;
}

static void timer_init(hd_rd *rd, ev_timer *t, void (*cb)(struct ev_loop *, ev_timer *, int), double every)
{
    ev_timer_init(t, cb, every, every);
    t->data = rd;
    ev_timer_start(rd->loop, t);
}

static int op_start(hd_adapter *a)
{
    hd_rd *rd = rd_of(a);
    if (rd->thread_started)
        return 0;
    if (pthread_create(&rd->thread, NULL, thread_main, rd) != 0) {
        hd_log(HD_LOG_ERR, RD_MOD, "cannot start the adapter thread");
        return HD_ETHREAD;
    }
    rd->thread_started = true;
    return 0;
}

static void op_leave_cluster(hd_adapter *a, uint32_t deadline_ms)
{
    hd_rd *rd = rd_of(a);
    atomic_store(&rd->left, true);
    if (!rd->thread_started)
        return;
    uint64_t t0 = hd_mono_ms();
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += deadline_ms / 1000;
    until.tv_nsec += (long)(deadline_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L)
        until.tv_sec++, until.tv_nsec -= 1000000000L;
    pthread_mutex_lock(&rd->q_lock);
    rd->leave_asked = true;
    pthread_mutex_unlock(&rd->q_lock);
    ev_async_send(rd->loop, &rd->wake);
    pthread_mutex_lock(&rd->q_lock);
    int rc = 0;
    while (!rd->leave_done && rc == 0)
        rc = pthread_cond_timedwait(&rd->leave_cond, &rd->q_lock, &until);
    bool done = rd->leave_done;
    pthread_mutex_unlock(&rd->q_lock);
    if (done)
        hd_log(HD_LOG_NOTICE, RD_MOD, "left the cluster in %" PRIu64 " ms", hd_mono_ms() - t0);
    else
        hd_log(HD_LOG_WARN, RD_MOD, "leaving the cluster did not finish within %u ms: the other nodes reap "
               "the rest when this node's lease ends", deadline_ms);
}

void rd_leave_finished(hd_rd *rd)
{
    pthread_mutex_lock(&rd->q_lock);
    rd->leave_done = true;
    pthread_cond_broadcast(&rd->leave_cond);
    pthread_mutex_unlock(&rd->q_lock);
}

static void op_destroy(hd_adapter *a)
{
    hd_rd *rd = rd_of(a);
    if (!rd)
        return;
    if (rd->thread_started) {
        pthread_mutex_lock(&rd->q_lock);
        rd->stop = true;
        pthread_mutex_unlock(&rd->q_lock);
        ev_async_send(rd->loop, &rd->wake);
        pthread_join(rd->thread, NULL);
    } else {
        rd->stopping = true;
    }
    rd_op *list = rd_queue_take_all(rd);
    while (list) {
        rd_op *next = list->next;
        rd_op_discard(rd, list);
        list = next;
    }
    rd_pubsub_free(rd);
    hd_map_deinit(&rd->dirty); /* values are app pointers, not owned */
    hd_map_deinit(&rd->wait_map);
    ev_loop_destroy(rd->loop);
    pthread_mutex_destroy(&rd->q_lock);
    pthread_mutex_destroy(&rd->why_lock);
    pthread_cond_destroy(&rd->leave_cond);
    hd_buf_deinit(&rd->scratch);
    hd_buf_deinit(&rd->node_chan);
    hd_free(rd->batch);
    hd_free(rd);
}

static const hd_adapter_ops rd_ops = {
    .abi = HD_ADAPTER_ABI,
    .name = "redis",
    .cluster = true,
    .start = op_start,
    .joined = rd_op_joined,
    .left = rd_op_left,
    .quota = rd_op_quota,
    .publish = rd_op_publish,
    .terminate_user = rd_op_terminate_user,
    .read = rd_op_read,
    .ready = rd_ready,
    .leave_cluster = op_leave_cluster,
    .metrics = rd_metrics,
    .destroy = op_destroy,
};

/* A configuration the adapter cannot run with: say which key. */
static bool config_ok(const hd_config *cfg)
{
    const char *prefix = cfg->adapter.redis.prefix, *host = cfg->adapter.redis.host;
    if (!host || !*host) {
        hd_log(HD_LOG_ERR, RD_MOD, "adapter.redis.host is empty");
        return false;
    }
    if (!prefix || !*prefix || strpbrk(prefix, " \n\r\t")) {
        hd_log(HD_LOG_ERR, RD_MOD, "adapter.redis.prefix must be a non-empty word");
        return false;
    }
    if (cfg->adapter.redis.node_timeout_ms < 3000) {
        hd_log(HD_LOG_ERR, RD_MOD, "adapter.redis.node_timeout_ms must be at least 3000");
        return false;
    }
    return true;
}

hd_adapter *hd_adapter_redis_create(hd_server *srv, const hd_adapter_host *host)
{
    const hd_config *cfg = hd_server_config(srv);
    if (!host || !config_ok(cfg))
        return NULL;
    hd_rd *rd = hd_calloc(1, sizeof *rd);
    rd->base.ops = &rd_ops;
    rd->base.srv = srv;
    rd->host = host;
    rd->cfg = cfg;
    rd->num = hd_server_node_num(srv);
    snprintf(rd->num_str, sizeof rd->num_str, "%" PRIu64, rd->num);
    unsigned char rnd[16] = {0};
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
        uint64_t t = hd_mono_us() ^ ((uint64_t)getpid() << 32);
        memcpy(rnd, &t, sizeof t);
    }
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(rd->owner + 2 * i, 3, "%02x", rnd[i]);
    memcpy(&rd->rng, rnd, sizeof rd->rng);
    rd->rng |= 1;
    if (gethostname(rd->host_name, sizeof rd->host_name - 1) != 0)
        snprintf(rd->host_name, sizeof rd->host_name, "?");
    rd->started_ms = hd_wall_ms();
    uint32_t timeout = cfg->adapter.redis.node_timeout_ms;
    rd->lease_ms = timeout > 3000 ? timeout - 2000 : 1000;
    rd->queue_limit = (size_t)(cfg->adapter.redis.queue_limit_mb ? cfg->adapter.redis.queue_limit_mb : 32) << 20;
    pthread_mutex_init(&rd->q_lock, NULL);
    pthread_mutex_init(&rd->why_lock, NULL);
    pthread_cond_init(&rd->leave_cond, NULL);
    hd_map_init(&rd->dirty);
    hd_map_init(&rd->chans);
    hd_map_init(&rd->wait_map);
    hd_buf_init(&rd->scratch);
    hd_buf_init(&rd->node_chan);
    hd_buf_printf(&rd->node_chan, "%s:n:%s", cfg->adapter.redis.prefix, rd->num_str);
    atomic_store(&rd->state, RD_ST_CONNECTING);
    atomic_store(&rd->state_since_ms, hd_wall_ms());
    rd_set_why(rd, "not started");
    rd_scripts_prepare(rd);
    rd->loop = ev_loop_new(EVFLAG_AUTO);
    if (!rd->loop) {
        hd_log(HD_LOG_ERR, RD_MOD, "cannot create the adapter thread's event loop");
        pthread_mutex_destroy(&rd->q_lock);
        pthread_mutex_destroy(&rd->why_lock);
        pthread_cond_destroy(&rd->leave_cond);
        hd_buf_deinit(&rd->scratch);
        hd_buf_deinit(&rd->node_chan);
        hd_free(rd);
        return NULL;
    }
    ev_async_init(&rd->wake, wake_cb);
    rd->wake.data = rd;
    ev_async_start(rd->loop, &rd->wake);
    rd_conn_init(rd);
    rd_lease_init(rd);
    timer_init(rd, &rd->tick, tick_cb, RD_TICK_MS / 1000.0);
    timer_init(rd, &rd->reap_timer, reap_cb, RD_REAP_MS / 1000.0);
    timer_init(rd, &rd->holds_timer, holds_cb, RD_HOLDS_MS / 1000.0);
    hd_log(HD_LOG_NOTICE, RD_MOD, "cluster mode: Redis at %s:%u, prefix \"%s\", node %s, lease %u ms",
           cfg->adapter.redis.host, (unsigned)cfg->adapter.redis.port, cfg->adapter.redis.prefix, rd->num_str,
           rd->lease_ms);
    return &rd->base;
}
