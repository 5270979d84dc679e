/* reads.c - cluster reads for the HTTP API and sign-in watchlists
 * (CLUSTER.md 4.8): every node reads the same Redis, so every node gives
 * the same answer. While Redis is away a read answers HD_AD_UNAVAILABLE
 * (a node-local answer would differ from node to node).
 *
 * The online read of a watchlist is answered through this node's channel
 * (an R message published by the script), so that it is ordered with the
 * #watch- online/offline frames that follow it; it is sent only once every
 * pending SUBSCRIBE is acknowledged (pubsub.c), so the #watch- channels
 * the caller just joined are listened to before the state is read.
 *
 * THREADING: rd_op_read on any thread (copy and enqueue); the rest on the
 * adapter thread.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "adapter/redis/redis.h"

#define RD_ONLINE_MAX 1000 /* ids per online read: a watchlist is far shorter (limit 100) */

void rd_op_read(hd_adapter *a, hd_app *app, enum hd_ad_read what, const char *arg, hd_ad_caller reply_to)
{
    hd_rd *rd = rd_of(a);
    if (!atomic_load(&rd->accepting)) {
        rd_reply_status(rd, reply_to, HD_AD_UNAVAILABLE);
        return;
    }
    rd_op *op = rd_op_new(RD_OP_READ, app, NULL, 0);
    op->what = (int)what;
    op->arg = rd_op_strdup(op, arg ? arg : "", arg ? strlen(arg) : 0);
    op->reply_to = reply_to;
    if (!rd_queue_push(rd, op, false)) {
        rd_count_drop(rd, RD_DROP_QUEUE_FULL, "a cluster read (answered 503)");
        rd_op_free(op);
        rd_reply_status(rd, reply_to, HD_AD_UNAVAILABLE);
    }
}

static void read_done(hd_rd *rd, rd_cmd *c, redisReply *r)
{
    rd_op *op = c->op;
    if (c->rid) { /* online: the answer comes as an R message, unless this failed */
        if (!r || r->type == REDIS_REPLY_ERROR)
            rd_wait_fail(rd, c->rid);
        if (r && r->type == REDIS_REPLY_ERROR)
            rd_script_error(rd, c->script, r);
        return;
    }
    if (!r || r->type == REDIS_REPLY_ERROR) {
        if (r)
            rd_script_error(rd, c->script, r);
        rd_reply_status(rd, op->reply_to, HD_AD_UNAVAILABLE);
        return;
    }
    if (rd->stopping || !op->reply_to.token)
        return;
    hd_ad_reply *reply = hd_ad_reply_new(op->reply_to);
    if (op->what == HD_AD_READ_CHANNEL) {
        reply->subscribers = (uint32_t)rd_int(r, 0, 0);
        reply->users = (uint32_t)rd_int(r, 1, 0);
        if (r->type == REDIS_REPLY_ARRAY && r->elements > 2 && r->element[2]->type == REDIS_REPLY_STRING)
            hd_buf_append(&reply->cache, r->element[2]->str, r->element[2]->len);
        reply->cache_ttl_s = (uint32_t)rd_int(r, 3, 0);
    } else if (r->type == REDIS_REPLY_STRING) {
        hd_buf_append(&reply->body, r->str, r->len);
    } else {
        reply->status = HD_AD_UNAVAILABLE;
    }
    rd->host->complete(rd->base.srv, reply);
}

static void online_send(hd_rd *rd, rd_op *op, const char *prefix, const char *app_id)
{
    const char *ids[RD_ONLINE_MAX];
    size_t lens[RD_ONLINE_MAX + 4];
    const char *argv[RD_ONLINE_MAX + 4];
    int n = 0;
    char *p = op->arg;
    while (*p && n < RD_ONLINE_MAX) {
        char *nl = strchr(p, '\n');
        ids[n] = p;
        lens[4 + n] = nl ? (size_t)(nl - p) : strlen(p);
        n++;
        if (!nl)
            break;
        p = nl + 1;
    }
    uint64_t rid = op->reply_to.token ? rd_wait_add(rd, op->app, NULL, op->reply_to, RD_WAIT_ONLINE) : 0;
    char token[24];
    snprintf(token, sizeof token, "%" PRIu64, rid);
    argv[0] = prefix, argv[1] = app_id, argv[2] = rd->num_str, argv[3] = token;
    for (int i = 0; i < 4; i++)
        lens[i] = strlen(argv[i]);
    for (int i = 0; i < n; i++)
        argv[4 + i] = ids[i];
    rd_script_rid(rd, HD_RS_READ_ONLINE, 4 + n, argv, lens, read_done, op, rid);
}

void rd_read_send(hd_rd *rd, rd_op *op)
{
    rd_op_uncount(rd, op);
    const char *prefix = rd->cfg->adapter.redis.prefix, *id = hd_app_cfg(op->app)->id;
    int script;
    switch (op->what) {
    case HD_AD_READ_CHANNELS:
        script = HD_RS_READ_CHANNELS;
        break;
    case HD_AD_READ_CHANNEL:
        script = HD_RS_READ_CHANNEL;
        break;
    case HD_AD_READ_USERS:
        script = HD_RS_READ_USERS;
        break;
    case HD_AD_READ_ONLINE:
        online_send(rd, op, prefix, id);
        return;
    default:
        rd_reply_status(rd, op->reply_to, HD_AD_UNAVAILABLE);
        rd_op_free(op);
        return;
    }
    const char *argv[3] = {prefix, id, op->arg};
    rd_script(rd, script, 3, argv, NULL, read_done, op);
}
