/* ops.c - fan-out and connection quota: publish and terminate_user (local
 * delivery at once, then one message to the other nodes), the routing of
 * messages that arrive on P:m:<A>:<c>, and the quota script.
 *
 * Message layout (CLUSTER.md 5.1): "<origin> <kind> <except>\n<frame>";
 * a node drops its own P and T echoes (it delivered them locally when it
 * published); M frames (origin 0, published by scripts) are delivered by
 * every node, the one that ran the script included.
 *
 * THREADING: rd_op_* run on any thread (io threads, HTTP API, cleanup)
 * and only copy and enqueue; the *_send functions and the message routing
 * run on the adapter thread.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "adapter/redis/redis.h"

void rd_reply_status(hd_rd *rd, hd_ad_caller to, int status)
{
    if (rd->stopping || !to.token)
        return;
    hd_ad_reply *r = hd_ad_reply_new(to);
    r->status = status;
    rd->host->complete(rd->base.srv, r);
}

/* ---- publish ---- */

void rd_op_publish(hd_adapter *a, hd_app *app, const char *channel, const char *frame, size_t frame_len,
                   const char *except_socket_id, bool cache)
{
    hd_rd *rd = rd_of(a);
    size_t len = strlen(channel);
    /* published here: delivered here at once, also to a subscription still
     * waiting for its join's answer (the echo from Redis is dropped) */
    rd->host->publish_local(rd->base.srv, app, channel, len, frame, frame_len, except_socket_id);
    if (!atomic_load(&rd->accepting)) {
        rd_count_drop(rd, RD_DROP_REDIS_DOWN, "a publish to other nodes");
        return;
    }
    rd_op *op = rd_op_new(RD_OP_PUBLISH, app, channel, len);
    op->cache = cache;
    if (except_socket_id)
        snprintf(op->except, sizeof op->except, "%s", except_socket_id);
    op->payload = rd_op_strdup(op, frame, frame_len);
    op->payload_len = frame_len;
    if (!rd_queue_push(rd, op, false)) {
        rd_count_drop(rd, RD_DROP_QUEUE_FULL, "a publish to other nodes");
        rd_op_free(op);
    }
}

void rd_op_terminate_user(hd_adapter *a, hd_app *app, const char *user_id)
{
    hd_rd *rd = rd_of(a);
    rd->host->terminate(rd->base.srv, app, user_id);
    if (!atomic_load(&rd->accepting)) {
        rd_count_drop(rd, RD_DROP_REDIS_DOWN, "a terminate_connections to other nodes");
        return;
    }
    hd_buf name;
    hd_buf_init(&name);
    hd_buf_puts(&name, HD_USER_CHANNEL_PREFIX);
    hd_buf_puts(&name, user_id);
    rd_op *op = rd_op_new(RD_OP_TERMINATE, app, name.data, name.len);
    hd_buf_deinit(&name);
    if (!rd_queue_push(rd, op, false)) {
        rd_count_drop(rd, RD_DROP_QUEUE_FULL, "a terminate_connections to other nodes");
        rd_op_free(op);
    }
}

static void publish_done(hd_rd *rd, rd_cmd *c, redisReply *r)
{
    if (rd->stopping)
        return;
    if (!r)
        rd_count_drop(rd, RD_DROP_REDIS_DOWN, "a publish to other nodes");
    else if (r->type == REDIS_REPLY_ERROR)
        rd_script_error(rd, c->script >= 0 ? c->script : HD_RS_PUBLISH_CACHE, r);
}

void rd_publish_send(hd_rd *rd, rd_op *op)
{
    rd_op_uncount(rd, op);
    hd_buf *msg = &rd->scratch;
    msg->len = 0;
    bool terminate = op->kind == RD_OP_TERMINATE;
    const char *except = op->except[0] ? op->except : "-";
    if (op->cache && !terminate) {
        const hd_config *cfg = rd->cfg;
        const char *id = hd_app_cfg(op->app)->id;
        char ttl[24];
        snprintf(ttl, sizeof ttl, "%" PRIu64, (uint64_t)cfg->channel_limits.cache_ttl * 1000);
        const char *argv[7] = {cfg->adapter.redis.prefix, id, op->channel, ttl, rd->num_str, op->except,
                               op->payload};
        size_t lens[7] = {strlen(argv[0]), strlen(id), op->channel_len, strlen(ttl), strlen(rd->num_str),
                          strlen(op->except), op->payload_len};
        atomic_fetch_add_explicit(&rd->st.publishes_out, 1, memory_order_relaxed);
        rd_script(rd, HD_RS_PUBLISH_CACHE, 7, argv, lens, publish_done, op);
        return;
    }
    hd_buf_printf(msg, "%s %c %s\n", rd->num_str, terminate ? 'T' : 'P', terminate ? "-" : except);
    if (terminate)
        hd_buf_puts(msg, op->channel + strlen(HD_USER_CHANNEL_PREFIX));
    else
        hd_buf_append(msg, op->payload, op->payload_len);
    hd_buf name;
    hd_buf_init(&name);
    rd_pubsub_name(rd, &name, op->app, op->channel, op->channel_len);
    const char *argv[3] = {"PUBLISH", name.data, msg->data};
    size_t lens[3] = {7, name.len, msg->len};
    atomic_fetch_add_explicit(&rd->st.publishes_out, 1, memory_order_relaxed);
    rd_command(rd, RD_RTT_PUBLISH, 3, argv, lens, publish_done, op);
    hd_buf_deinit(&name);
}

/* ---- what arrives on P:m:<A>:<c> ---- */

void rd_channel_message(hd_rd *rd, rd_chan *c, const char *payload, size_t len)
{
    const char *end = payload + len, *nl = memchr(payload, '\n', len);
    const char *sp1 = memchr(payload, ' ', len);
    const char *sp2 = sp1 && sp1 + 2 < end ? memchr(sp1 + 2, ' ', (size_t)(end - sp1 - 2)) : NULL;
    if (!nl || !sp1 || !sp2 || sp2 > nl || sp1 + 2 != sp2 || rd->stopping) {
        atomic_fetch_add_explicit(&rd->st.unrouted, 1, memory_order_relaxed);
        return;
    }
    char kind = sp1[1];
    bool own = (size_t)(sp1 - payload) == strlen(rd->num_str) && memcmp(payload, rd->num_str, strlen(rd->num_str)) == 0;
    if (own && (kind == 'P' || kind == 'T'))
        return; /* delivered locally when it was published */
    if (c->node_count == 0) {
        atomic_fetch_add_explicit(&rd->st.unrouted, 1, memory_order_relaxed); /* lingering: nobody here */
        return;
    }
    const char *frame = nl + 1;
    size_t frame_len = (size_t)(end - frame);
    if (kind == 'T') {
        size_t plen = strlen(HD_USER_CHANNEL_PREFIX);
        if (c->channel_len > plen && memcmp(c->channel, HD_USER_CHANNEL_PREFIX, plen) == 0)
            rd->host->terminate(rd->base.srv, c->app, c->channel + plen);
        return;
    }
    if (kind != 'P' && kind != 'M') {
        atomic_fetch_add_explicit(&rd->st.unrouted, 1, memory_order_relaxed);
        return;
    }
    char except[RD_SOCKET_ID_MAX];
    size_t el = (size_t)(nl - sp2 - 1);
    bool has_except = !(el == 1 && sp2[1] == '-') && el > 0 && el < sizeof except;
    if (has_except) {
        memcpy(except, sp2 + 1, el);
        except[el] = '\0';
    }
    atomic_fetch_add_explicit(&rd->st.publishes_in, 1, memory_order_relaxed);
    rd->host->deliver(rd->base.srv, c->app, c->channel, c->channel_len, frame, frame_len,
                      has_except ? except : NULL);
}

/* ---- connection quota (CLUSTER.md 4.2) ---- */

void rd_quota_degraded(hd_rd *rd, hd_app *app, hd_ad_caller to)
{
    if (rd->stopping || !to.token)
        return;
    /* the caller counts the connection asking in local_connections already */
    uint32_t max = hd_app_cfg(app)->max_connections;
    uint32_t here = rd->host->local_connections(rd->base.srv, app);
    hd_ad_reply *r = hd_ad_reply_new(to);
    r->status = max == 0 || here <= max ? HD_AD_OK : HD_AD_QUOTA;
    r->degraded = true;
    rd->host->complete(rd->base.srv, r);
}

void rd_op_quota(hd_adapter *a, hd_app *app, int delta, hd_ad_caller reply_to)
{
    hd_rd *rd = rd_of(a);
    if (atomic_load(&rd->left) || !atomic_load(&rd->accepting)) {
        /* a release while away is corrected by the quota set of the resync */
        if (delta > 0)
            rd_quota_degraded(rd, app, reply_to);
        return;
    }
    rd_op *op = rd_op_new(RD_OP_QUOTA, app, NULL, 0);
    op->delta = delta;
    op->reply_to = delta > 0 ? reply_to : (hd_ad_caller){0, 0};
    if (!rd_queue_push(rd, op, false)) {
        rd_count_drop(rd, RD_DROP_QUEUE_FULL, "a connection quota change");
        rd_op_free(op);
        if (delta > 0)
            rd_quota_degraded(rd, app, reply_to);
    }
}

static void quota_done(hd_rd *rd, rd_cmd *c, redisReply *r)
{
    rd_op *op = c->op;
    if (!r || r->type != REDIS_REPLY_INTEGER) {
        if (rd_reply_is_error(r, "LEASE_LOST"))
            rd_lease_lost(rd, c->k);
        else if (r)
            rd_script_error(rd, HD_RS_QUOTA, r);
        if (op && op->delta > 0)
            rd_quota_degraded(rd, op->app, op->reply_to);
        return;
    }
    if (op && op->delta > 0)
        rd_reply_status(rd, op->reply_to, r->integer == HD_AD_QUOTA ? HD_AD_QUOTA : HD_AD_OK);
}

/* One quota script call: take / release / set for an app (set: n = this node's connections). */
void rd_quota_call(hd_rd *rd, hd_app *app, const char *what, uint32_t n, rd_op *op)
{
    const hd_app_config *acfg = hd_app_cfg(app);
    char max[16], cnt[16];
    snprintf(max, sizeof max, "%u", acfg->max_connections);
    snprintf(cnt, sizeof cnt, "%u", n);
    const char *argv[6] = {rd->cfg->adapter.redis.prefix, rd->inc, acfg->id, what, max, cnt};
    rd_script(rd, HD_RS_QUOTA, 6, argv, NULL, quota_done, op);
}

void rd_quota_send(hd_rd *rd, rd_op *op)
{
    rd_op_uncount(rd, op);
    rd_quota_call(rd, op->app, op->delta > 0 ? "take" : "release", 0, op);
}
