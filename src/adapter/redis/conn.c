/* conn.c - the two hiredis connections of the adapter thread: connecting
 * (AUTH, SELECT, SCRIPT LOAD, the node channel), tearing down and
 * reconnecting with jittered back-off, sending commands on `cmd` and
 * watching them for op_timeout_ms, and the pub/sub path probe.
 *
 * hiredis 0.14 has no timeouts: replies on one connection come in order,
 * so the oldest command in flight tells whether Redis answers in time;
 * past op_timeout_ms both connections are dropped (hiredis then runs every
 * pending callback with a NULL reply) and rebuilt (CLUSTER.md 6).
 *
 * THREADING: adapter thread only.
 */
#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include <hiredis/adapters/libev.h>

#include "adapter/redis/redis.h"

bool rd_reply_is_error(const redisReply *r, const char *prefix)
{
    return r && r->type == REDIS_REPLY_ERROR && r->str && strncmp(r->str, prefix, strlen(prefix)) == 0;
}

bool rd_link_ready(const hd_rd *rd)
{
    return rd->cmd && rd->sub && rd->cmd_connected && rd->sub_connected;
}

void rd_scripts_prepare(hd_rd *rd)
{
    for (int i = 0; i < HD_RS_COUNT; i++) {
        const char *src = hd_redis_script_source(i);
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int md_len = 0;
        EVP_Digest(src, strlen(src), md, &md_len, EVP_sha1(), NULL);
        for (unsigned k = 0; k < md_len && k < 20; k++)
            snprintf(rd->script_sha[i] + 2 * k, 3, "%02x", md[k]);
    }
}

/* ---- commands on cmd ---- */

static void cmd_free(rd_cmd *c)
{
    hd_free(c->wire);
    rd_op_free(c->op);
    hd_free(c);
}

static void inflight_unlink(hd_rd *rd, rd_cmd *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        rd->inflight = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        rd->inflight_tail = c->prev;
    c->prev = c->next = NULL;
    rd->inflight_bytes -= c->wire_len;
}

static void cmd_reply_cb(redisAsyncContext *ac, void *reply, void *privdata);

/* Hand c to hiredis; false when there is no connection to write on. */
static bool wire_send(hd_rd *rd, rd_cmd *c)
{
    if (!rd->cmd || redisAsyncFormattedCommand(rd->cmd, cmd_reply_cb, c, c->wire, c->wire_len) != REDIS_OK)
        return false;
    c->sent_us = hd_mono_us();
    c->k = rd->k;
    c->prev = rd->inflight_tail;
    c->next = NULL;
    if (rd->inflight_tail)
        rd->inflight_tail->next = c;
    else
        rd->inflight = c;
    rd->inflight_tail = c;
    rd->inflight_bytes += c->wire_len;
    return true;
}

static void script_load_done(hd_rd *rd, rd_cmd *c, redisReply *r)
{
    if (r && r->type == REDIS_REPLY_ERROR) {
        hd_log(HD_LOG_ERR, RD_MOD, "SCRIPT LOAD %s failed: %s", hd_redis_script_name((int)c->u), r->str);
        rd_link_down(rd, "SCRIPT LOAD failed");
    }
}

static void cmd_reply_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
    rd_cmd *c = privdata;
    hd_rd *rd = ac->data;
    redisReply *r = reply;
    inflight_unlink(rd, c);
    if (r)
        rd_rtt_observe(rd, c->rtt_kind, hd_mono_us() - c->sent_us);
    /* NOSCRIPT: the server forgot the script (SCRIPT FLUSH): load it again
     * and send the command once more, behind the load on the same connection */
    if (r && c->script >= 0 && !c->retried && rd_reply_is_error(r, "NOSCRIPT") && rd->cmd == ac) {
        c->retried = true;
        const char *src = hd_redis_script_source(c->script);
        const char *argv[3] = {"SCRIPT", "LOAD", src};
        size_t lens[3] = {6, 4, strlen(src)};
        rd_cmd *load = rd_command(rd, RD_RTT_SCRIPT, 3, argv, lens, script_load_done, NULL);
        if (load)
            load->u = (uint64_t)c->script;
        if (wire_send(rd, c))
            return;
    }
    c->done(rd, c, r);
    cmd_free(c);
    /* draining paused for the in-flight bound resumes once half of it is answered */
    if (rd->inflight_bytes < rd->queue_limit / 2 && atomic_load_explicit(&rd->q_bytes, memory_order_relaxed))
        ev_feed_event(rd->loop, &rd->wake, EV_ASYNC);
}

static rd_cmd *command_new(int script, int rtt_kind, int argc, const char **argv, const size_t *lens,
                           rd_done_fn done, rd_op *op)
{
    rd_cmd *c = hd_calloc(1, sizeof *c);
    c->script = script;
    c->rtt_kind = (uint8_t)rtt_kind;
    c->done = done;
    c->op = op;
    char *wire = NULL;
    int n = redisFormatCommandArgv(&wire, argc, argv, lens);
    hd_assert(n > 0 && wire);
    c->wire = hd_malloc((size_t)n);
    memcpy(c->wire, wire, (size_t)n);
    c->wire_len = (size_t)n;
    redisFreeCommand(wire);
    return c;
}

/* Send, or fail at once (done with NULL) when there is no connection. */
static rd_cmd *command_go(hd_rd *rd, rd_cmd *c)
{
    if (wire_send(rd, c))
        return c;
    c->done(rd, c, NULL);
    cmd_free(c);
    return NULL;
}

rd_cmd *rd_command(hd_rd *rd, int rtt_kind, int argc, const char **argv, const size_t *lens, rd_done_fn done,
                   rd_op *op)
{
    return command_go(rd, command_new(-1, rtt_kind, argc, argv, lens, done, op));
}

rd_cmd *rd_script(hd_rd *rd, int script, int argc, const char **argv, const size_t *lens, rd_done_fn done,
                  rd_op *op)
{
    return rd_script_rid(rd, script, argc, argv, lens, done, op, 0);
}

rd_cmd *rd_script_rid(hd_rd *rd, int script, int argc, const char **argv, const size_t *lens, rd_done_fn done,
                      rd_op *op, uint64_t rid)
{
    const char **av = hd_malloc((size_t)(argc + 3) * sizeof *av);
    size_t *al = hd_malloc((size_t)(argc + 3) * sizeof *al);
    av[0] = "EVALSHA", al[0] = 7;
    av[1] = rd->script_sha[script], al[1] = 40;
    av[2] = "0", al[2] = 1;
    for (int i = 0; i < argc; i++) {
        av[i + 3] = argv[i];
        al[i + 3] = lens ? lens[i] : strlen(argv[i]);
    }
    int kind = script == HD_RS_REGISTER || script == HD_RS_RENEW ? RD_RTT_LEASE
               : script == HD_RS_PUBLISH_CACHE                   ? RD_RTT_PUBLISH
                                                                 : RD_RTT_SCRIPT;
    rd_cmd *c = command_new(script, kind, argc + 3, av, al, done, op);
    c->rid = rid;
    hd_free(av);
    hd_free(al);
    return command_go(rd, c);
}

/* ---- connecting ---- */

static void handshake_step(hd_rd *rd)
{
    if (--rd->handshake_left > 0)
        return;
    ev_timer_stop(rd->loop, &rd->connect_timer);
    if (atomic_load(&rd->left)) {
        /* after leave_cluster: the connection only carries publishes, nothing is registered */
        rd_set_state(rd, RD_ST_LEFT);
        atomic_store(&rd->accepting, true);
        return;
    }
    hd_log(rd->attempt ? HD_LOG_NOTICE : HD_LOG_INFO, RD_MOD, "connected to %s:%u%s", rd->cfg->adapter.redis.host,
           (unsigned)rd->cfg->adapter.redis.port, rd->attempt ? " again" : "");
    rd->attempt = 0;
    atomic_store(&rd->accepting, true);
    rd_lease_register(rd);
}

static void handshake_cmd_done(hd_rd *rd, rd_cmd *c, redisReply *r)
{
    if (!r)
        return; /* the link went: link_down already ran */
    if (r->type == REDIS_REPLY_ERROR) {
        rd_set_why(rd, "%s", r->str);
        rd_link_down(rd, r->str); /* logged there, a few lines per outage */
        return;
    }
    if (c->script < 0 && c->u < HD_RS_COUNT + 1 && c->u > 0 && r->type == REDIS_REPLY_STRING) {
        int which = (int)c->u - 1;
        if (strcmp(r->str, rd->script_sha[which]) != 0) /* cannot happen unless SHA1 differs: use Redis' */
            snprintf(rd->script_sha[which], sizeof rd->script_sha[which], "%.40s", r->str);
    }
    handshake_step(rd);
}

static void sub_handshake_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
    hd_rd *rd = ac->data;
    redisReply *r = reply;
    (void)privdata;
    if (!r || rd->sub != ac)
        return;
    if (r->type == REDIS_REPLY_ERROR) {
        rd_set_why(rd, "%s", r->str);
        rd_link_down(rd, r->str);
        return;
    }
    handshake_step(rd);
}

/* AUTH and SELECT: argv for one of them into av/al; returns argc or 0. */
static int auth_args(const hd_rd *rd, const char **av, size_t *al)
{
    const char *user = rd->cfg->adapter.redis.username, *pass = rd->cfg->adapter.redis.password;
    if (!pass || !*pass)
        return 0;
    int n = 0;
    av[n] = "AUTH", al[n++] = 4;
    if (user && *user)
        av[n] = user, al[n] = strlen(user), n++;
    av[n] = pass, al[n] = strlen(pass), n++;
    return n;
}

/* Queue AUTH / SELECT on a context before anything else. */
static void setup_commands(hd_rd *rd, redisAsyncContext *ac, bool is_cmd)
{
    const char *av[3];
    size_t al[3];
    char db[16];
    int n = auth_args(rd, av, al);
    for (int round = 0; round < 2; round++) {
        if (round == 1) {
            if (rd->cfg->adapter.redis.db == 0)
                break;
            snprintf(db, sizeof db, "%u", rd->cfg->adapter.redis.db);
            av[0] = "SELECT", al[0] = 6, av[1] = db, al[1] = strlen(db), n = 2;
        }
        if (!n)
            continue;
        rd->handshake_left++;
        if (is_cmd)
            rd_command(rd, RD_RTT_LEASE, n, av, al, handshake_cmd_done, NULL);
        else
            redisAsyncCommandArgv(ac, sub_handshake_cb, NULL, n, av, al);
    }
}

static void on_connect(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    hd_rd *rd = ac->data;
    if (status != REDIS_OK) {
        /* hiredis frees ac after this returns */
        rd_set_why(rd, "connect: %s", ac->errstr[0] ? ac->errstr : "failed");
        if (rd->cmd == ac)
            rd->cmd = NULL;
        if (rd->sub == ac)
            rd->sub = NULL;
        rd_link_down(rd, ac->errstr);
        return;
    }
    if (ac == rd->cmd)
        rd->cmd_connected = true;
    if (ac == rd->sub)
        rd->sub_connected = true;
}

static void on_disconnect(const redisAsyncContext *cac, int status)
{
    redisAsyncContext *ac = (redisAsyncContext *)cac;
    hd_rd *rd = ac->data;
    bool ours = rd->cmd == ac || rd->sub == ac;
    if (rd->cmd == ac)
        rd->cmd = NULL, rd->cmd_connected = false;
    if (rd->sub == ac)
        rd->sub = NULL, rd->sub_connected = false;
    if (ours) {
        if (status != REDIS_OK)
            rd_set_why(rd, "%s", ac->errstr[0] ? ac->errstr : "connection lost");
        rd_link_down(rd, status == REDIS_OK ? "connection closed" : ac->errstr);
    }
}

static redisAsyncContext *open_ctx(hd_rd *rd)
{
    redisAsyncContext *ac = redisAsyncConnect(rd->cfg->adapter.redis.host, rd->cfg->adapter.redis.port);
    if (!ac) {
        rd_set_why(rd, "connect: out of memory");
        return NULL;
    }
    if (ac->err) {
        rd_set_why(rd, "connect: %s", ac->errstr);
        redisAsyncFree(ac);
        return NULL;
    }
    ac->data = rd;
    redisLibevAttach(rd->loop, ac);
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    return ac;
}

void rd_conn_start(hd_rd *rd)
{
    rd_set_state(rd, RD_ST_CONNECTING);
    rd->handshake_left = 1; /* released below once everything is queued */
    rd->cmd = open_ctx(rd);
    rd->sub = rd->cmd ? open_ctx(rd) : NULL;
    if (!rd->cmd || !rd->sub) {
        rd_link_down(rd, "connect failed");
        return;
    }
    ev_timer_set(&rd->connect_timer, rd->cfg->adapter.redis.connect_timeout_ms / 1000.0, 0.);
    ev_timer_start(rd->loop, &rd->connect_timer);
    setup_commands(rd, rd->cmd, true);
    setup_commands(rd, rd->sub, false);
    for (int i = 0; i < HD_RS_COUNT; i++) {
        const char *src = hd_redis_script_source(i);
        const char *argv[3] = {"SCRIPT", "LOAD", src};
        size_t lens[3] = {6, 4, strlen(src)};
        rd->handshake_left++;
        rd_cmd *c = rd_command(rd, RD_RTT_SCRIPT, 3, argv, lens, handshake_cmd_done, NULL);
        if (!c)
            return;
        c->u = (uint64_t)i + 1;
    }
    rd->handshake_left++;
    rd_pubsub_node_subscribe(rd); /* its ack calls rd_handshake_ack */
    handshake_step(rd);
}

void rd_handshake_ack(hd_rd *rd)
{
    if (rd_state_is(rd, RD_ST_CONNECTING))
        handshake_step(rd);
}

static void connect_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    hd_rd *rd = w->data;
    (void)loop, (void)revents;
    rd_set_why(rd, "connect: no answer within %u ms", rd->cfg->adapter.redis.connect_timeout_ms);
    rd_link_down(rd, "connect timeout");
}

static void reconnect_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    hd_rd *rd = w->data;
    (void)loop, (void)revents;
    atomic_fetch_add_explicit(&rd->st.reconnects, 1, memory_order_relaxed);
    if (atomic_load(&rd->left))
        return; /* left the cluster: nothing to come back for */
    rd_conn_start(rd);
}

void rd_conn_init(hd_rd *rd)
{
    ev_init(&rd->connect_timer, connect_timeout_cb);
    rd->connect_timer.data = rd;
    ev_init(&rd->reconnect_timer, reconnect_cb);
    rd->reconnect_timer.data = rd;
}

/* Full jitter: uniform in [0, min(cap, 100 ms * 2^attempt)], at least 20 ms. */
static double backoff_s(hd_rd *rd)
{
    uint32_t cap = rd->cfg->adapter.redis.reconnect_max_ms;
    uint64_t ceiling = 100ull << (rd->attempt < 16 ? rd->attempt : 16);
    if (ceiling > cap)
        ceiling = cap;
    uint64_t ms = ceiling ? rd_random(rd) % (ceiling + 1) : 0;
    if (ms < 20)
        ms = 20;
    return (double)ms / 1000.0;
}

static void free_contexts(hd_rd *rd)
{
    redisAsyncContext *c = rd->cmd, *s = rd->sub;
    rd->cmd = rd->sub = NULL;
    rd->cmd_connected = rd->sub_connected = false;
    /* each free runs the context's pending callbacks with NULL replies
     * (inside one of its own callbacks hiredis defers it until that returns) */
    if (c)
        redisAsyncFree(c);
    if (s)
        redisAsyncFree(s);
}

void rd_link_down(hd_rd *rd, const char *why)
{
    if (rd->in_link_down)
        return;
    rd->in_link_down = true;
    atomic_store(&rd->accepting, false);
    ev_timer_stop(rd->loop, &rd->connect_timer);
    rd_lease_renew_timer(rd, false);
    int was = atomic_load(&rd->state);
    free_contexts(rd);
    rd_pubsub_reset(rd);
    rd_waits_fail_all(rd);
    rd->probe_sent_ms = 0;
    rd->resync_end_seen = rd->sweeping = false;
    if (was == RD_ST_LEAVING || was == RD_ST_LEFT) {
        rd_set_state(rd, RD_ST_LEFT);
        rd_leave_finished(rd);
    } else if (!rd->stopping) {
        if (was != RD_ST_DOWN && was != RD_ST_CONNECTING)
            hd_log(HD_LOG_WARN, RD_MOD, "Redis connection lost (%s): serving this node's clients alone until "
                   "it is back", why ? why : "?");
        else if ((rd->attempt & (rd->attempt + 1)) == 0) /* attempts 0, 1, 3, 7, ...: a few lines per outage */
            hd_log(HD_LOG_WARN, RD_MOD, "cannot reach Redis at %s:%u (%s), attempt %u",
                   rd->cfg->adapter.redis.host, (unsigned)rd->cfg->adapter.redis.port, why ? why : "?",
                   rd->attempt + 1);
        if (!atomic_load(&rd->down_since_ms))
            atomic_store(&rd->down_since_ms, hd_wall_ms());
        rd_set_state(rd, RD_ST_DOWN);
        ev_timer_stop(rd->loop, &rd->reconnect_timer);
        ev_timer_set(&rd->reconnect_timer, backoff_s(rd), 0.);
        ev_timer_start(rd->loop, &rd->reconnect_timer);
        rd->attempt++;
    }
    rd->in_link_down = false;
    rd_drain(rd); /* what waits in the queue is dropped now, joins answered */
}

void rd_conn_close(hd_rd *rd)
{
    rd->stopping = true;
    ev_timer_stop(rd->loop, &rd->connect_timer);
    ev_timer_stop(rd->loop, &rd->reconnect_timer);
    rd->in_link_down = true;
    free_contexts(rd);
    rd->in_link_down = false;
}

/* ---- timeouts and the probe ---- */

static void probe_done(hd_rd *rd, rd_cmd *c, redisReply *r)
{
    (void)rd, (void)c, (void)r; /* the probe counts when it comes back on sub */
}

void rd_probe_received(hd_rd *rd, const char *body, size_t len)
{
    char want[24];
    int n = snprintf(want, sizeof want, "%" PRIu64, rd->probe_seq);
    if (rd->probe_sent_ms && (size_t)n == len && memcmp(want, body, len) == 0)
        rd->probe_sent_ms = 0;
}

static void probe_send(hd_rd *rd, uint64_t now_ms)
{
    hd_buf *b = &rd->scratch;
    b->len = 0;
    hd_buf_printf(b, "%s Q -\n%" PRIu64, rd->num_str, ++rd->probe_seq);
    const char *argv[3] = {"PUBLISH", rd->node_chan.data, b->data};
    size_t lens[3] = {7, rd->node_chan.len, b->len};
    rd->probe_sent_ms = now_ms;
    rd->last_probe_ms = now_ms;
    rd_command(rd, RD_RTT_PUBLISH, 3, argv, lens, probe_done, NULL);
}

void rd_cmd_tick(hd_rd *rd, uint64_t now_ms)
{
    if (!rd_link_ready(rd))
        return;
    uint32_t limit = rd->cfg->adapter.redis.op_timeout_ms;
    if (rd->inflight && hd_mono_us() - rd->inflight->sent_us > (uint64_t)limit * 1000) {
        rd_set_why(rd, "a command got no answer within %u ms", limit);
        atomic_fetch_add_explicit(&rd->st.dropped[RD_DROP_TIMEOUT], 1, memory_order_relaxed);
        rd_link_down(rd, "command timeout");
        return;
    }
    if (rd->acks && now_ms - rd->acks->sent_ms > limit) {
        rd_set_why(rd, "SUBSCRIBE not acknowledged within %u ms", limit);
        rd_link_down(rd, "subscribe timeout");
        return;
    }
    if (rd->probe_sent_ms && now_ms - rd->probe_sent_ms > limit) {
        rd_set_why(rd, "pub/sub probe not received within %u ms", limit);
        rd_link_down(rd, "pub/sub probe lost");
        return;
    }
    if (!rd->probe_sent_ms && now_ms - rd->last_probe_ms >= RD_PROBE_MS && rd->handshake_left == 0)
        probe_send(rd, now_ms);
}
