/* member.c - membership: joined/left turned into member ops carrying this
 * node's absolute state of the channel (CLUSTER.md 4.1, D2), the member
 * script call, its reply (webhooks of the crossings) and the join results
 * that come back on this node's channel P:n:<num> (D7), with their
 * deadlines.
 *
 * THREADING: rd_op_joined / rd_op_left run on io threads and cleanup
 * workers under the channel's order lock: they read the registry (this
 * node's truth), copy, enqueue and return; rd_member_snapshot runs on the
 * adapter thread under the order lock it took. Everything else runs on the
 * adapter thread. rd_join_degraded may run on either (it reads the registry
 * and calls host->complete, both any-thread).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "adapter/redis/redis.h"

#define RD_WATCH_PREFIX_LEN (sizeof HD_WATCH_CHANNEL_PREFIX - 1)
#define RD_USER_PREFIX_LEN (sizeof HD_USER_CHANNEL_PREFIX - 1)

static bool has_prefix(const char *s, size_t len, const char *p, size_t plen)
{
    return len >= plen && memcmp(s, p, plen) == 0;
}

/* ---- building ops (caller's thread, under the order lock) ---- */

static rd_user *op_user_slot(rd_op *op)
{
    if (op->n_users == op->cap_users) {
        op->cap_users = op->cap_users ? 2 * op->cap_users : 4;
        op->users = hd_realloc(op->users, op->cap_users * sizeof *op->users);
    }
    rd_user *u = &op->users[op->n_users++];
    memset(u, 0, sizeof *u);
    op->bytes += sizeof *u;
    return u;
}

/* One user with this node's count, its record and both frames. */
static void op_add_user(rd_op *op, const char *key, size_t key_len, uint32_t count, const char *id_json,
                        size_t id_len, const char *info_json, size_t info_len)
{
    rd_user *u = op_user_slot(op);
    u->key = rd_op_strdup(op, key, key_len);
    u->node_count = count;
    hd_buf b;
    hd_buf_init(&b);
    hd_buf_append(&b, id_json, id_len);
    hd_buf_append(&b, "\x1f", 1);
    if (info_json)
        hd_buf_append(&b, info_json, info_len);
    u->record = rd_op_strdup(op, b.data, b.len);
    char *id = hd_strndup(id_json, id_len);
    char *info = info_json ? hd_strndup(info_json, info_len) : NULL;
    b.len = 0;
    hd_frame_member(&b, true, op->channel, id, info);
    u->added = rd_op_strdup(op, b.data, b.len);
    b.len = 0;
    hd_frame_member(&b, false, op->channel, id, NULL);
    u->removed = rd_op_strdup(op, b.data, b.len);
    hd_free(id);
    hd_free(info);
    hd_buf_deinit(&b);
}

/* A user named by a leave (or a join): its current count on this node,
 * with the registry's texts while it is still there. */
static void op_add_user_now(rd_op *op, hd_channel *ch, const char *key, size_t key_len, const char *id_json,
                            size_t id_len)
{
    hd_buf id, info;
    hd_buf_init(&id);
    hd_buf_init(&info);
    uint32_t count = 0;
    if (hd_channel_member_sockets(ch, key, key_len, &count, &id, &info))
        op_add_user(op, key, key_len, count, id.data, id.len, info.len ? info.data : NULL, info.len);
    else
        op_add_user(op, key, key_len, 0, id_json, id_len, NULL, 0);
    hd_buf_deinit(&id);
    hd_buf_deinit(&info);
}

/* The op of a channel with this node's count; watchlist frames for a
 * #server-to-user- channel. */
static rd_op *channel_op(hd_app *app, hd_channel *ch, uint32_t node_count)
{
    const char *name = hd_channel_name(ch);
    size_t len = hd_channel_name_len(ch);
    bool watch = has_prefix(name, len, HD_WATCH_CHANNEL_PREFIX, RD_WATCH_PREFIX_LEN);
    rd_op *op = rd_op_new(watch ? RD_OP_WATCH : RD_OP_MEMBER, app, name, len);
    op->node_count = node_count;
    if (has_prefix(name, len, HD_USER_CHANNEL_PREFIX, RD_USER_PREFIX_LEN)) {
        hd_buf b;
        hd_buf_init(&b);
        hd_frame_watchlist(&b, true, name + RD_USER_PREFIX_LEN);
        op->online = rd_op_strdup(op, b.data, b.len);
        b.len = 0;
        hd_frame_watchlist(&b, false, name + RD_USER_PREFIX_LEN);
        op->offline = rd_op_strdup(op, b.data, b.len);
        hd_buf_deinit(&b);
    }
    return op;
}

/* Queue a membership op of the caller; when it cannot be queued the
 * channel is re-asserted later and a join waiting for an answer gets the
 * local one at once. */
static void push_member(hd_rd *rd, rd_op *op)
{
    hd_app *app = op->app;
    hd_ad_caller to = op->reply_to;
    size_t len = op->channel_len;
    char *channel = hd_strndup(op->channel, len);
    if (!rd_queue_push(rd, op, false)) {
        rd_count_drop(rd, RD_DROP_QUEUE_FULL, "a membership change (re-asserted later)");
        rd_dirty_mark(rd, app, channel, len);
        rd_op_free(op);
        if (to.token)
            rd_join_degraded(rd, app, channel, len, to);
    }
    hd_free(channel);
}

/* Not to Redis now: after leave_cluster (ignored), or while the link is
 * down (the resync at reconnect asserts the registry's state). */
static bool io_side_skip(hd_rd *rd, hd_app *app, hd_channel *ch, hd_ad_caller to)
{
    if (!atomic_load(&rd->left) && atomic_load(&rd->accepting))
        return false;
    if (to.token)
        rd_join_degraded(rd, app, hd_channel_name(ch), hd_channel_name_len(ch), to);
    return true;
}

void rd_op_joined(hd_adapter *a, hd_app *app, hd_channel *ch, const hd_join_result *jr, const hd_member *member,
                  const char *socket_id, hd_ad_caller reply_to)
{
    hd_rd *rd = rd_of(a);
    if (io_side_skip(rd, app, ch, reply_to))
        return;
    rd_op *op = channel_op(app, ch, jr->subscribers);
    op->reply_to = reply_to;
    if (socket_id)
        snprintf(op->except, sizeof op->except, "%s", socket_id);
    if (member && hd_channel_get_type(ch).kind == HD_CHANNEL_PRESENCE) {
        op->max_members = hd_app_cfg(app)->max_presence_members_per_channel;
        op_add_user_now(op, ch, member->user_key, member->user_key_len, member->user_id_json,
                        member->user_id_json_len);
    }
    push_member(rd, op);
}

void rd_op_left(hd_adapter *a, hd_app *app, hd_channel *ch, const hd_leave_result *res,
                const char *const *user_keys, const char *const *user_id_jsons, size_t n)
{
    hd_rd *rd = rd_of(a);
    hd_ad_caller none = {0, 0};
    if (n == 0 || io_side_skip(rd, app, ch, none))
        return;
    rd_op *op = channel_op(app, ch, res[n - 1].subscribers);
    if (hd_channel_get_type(ch).kind == HD_CHANNEL_PRESENCE && user_keys) {
        hd_map seen;
        hd_map_init(&seen);
        for (size_t i = 0; i < n; i++) {
            const char *key = user_keys[i];
            if (!key)
                continue;
            size_t key_len = strlen(key);
            if (hd_map_get(&seen, key, key_len))
                continue; /* each distinct user once, with its count after the batch */
            hd_map_insert(&seen, key, key_len, (void *)key);
            const char *id = user_id_jsons && user_id_jsons[i] ? user_id_jsons[i] : "null";
            op_add_user_now(op, ch, key, key_len, id, strlen(id));
        }
        hd_map_deinit(&seen);
    }
    push_member(rd, op);
}

typedef struct snap_ctx {
    rd_op *op;
} snap_ctx;

static void snap_member(const hd_member *m, uint32_t sockets, void *arg)
{
    snap_ctx *s = arg;
    op_add_user(s->op, m->user_key, m->user_key_len, sockets, m->user_id_json, m->user_id_json_len,
                m->user_info_json, m->user_info_json_len);
}

rd_op *rd_member_snapshot(hd_rd *rd, hd_app *app, hd_channel *ch)
{
    (void)rd;
    uint32_t subscribers = 0;
    hd_channel_counts(ch, &subscribers, NULL);
    rd_op *op = channel_op(app, ch, subscribers);
    op->full = true;
    if (hd_channel_get_type(ch).kind == HD_CHANNEL_PRESENCE) {
        snap_ctx s = {op};
        hd_channel_foreach_member(ch, snap_member, &s);
    }
    return op;
}

/* ---- answers from the registry alone ---- */

void rd_join_degraded(hd_rd *rd, hd_app *app, const char *channel, size_t len, hd_ad_caller to)
{
    if (rd->stopping || !to.token)
        return;
    hd_ad_reply *r = hd_ad_reply_new(to);
    r->status = HD_AD_OK;
    r->degraded = true;
    hd_channel *ch = hd_registry_acquire(app->registry, channel, len, false);
    bool presence = has_prefix(channel, len, "presence-", 9);
    if (ch) {
        hd_channel_counts(ch, &r->subscribers, &r->users);
        if (presence)
            hd_channel_presence_json(ch, &r->presence);
        hd_registry_release(app->registry, ch);
    } else if (presence) {
        hd_buf_puts(&r->presence, "{\"presence\":{\"ids\":[],\"hash\":{},\"count\":0}}");
    }
    atomic_fetch_add_explicit(&rd->st.degraded_joins, 1, memory_order_relaxed);
    rd->host->complete(rd->base.srv, r);
}

/* ---- waiting for P:n:<num> ---- */

uint64_t rd_wait_add(hd_rd *rd, hd_app *app, const char *channel, hd_ad_caller to, int kind)
{
    rd_wait *w = hd_calloc(1, sizeof *w);
    w->rid = ++rd->next_rid;
    w->deadline_ms = hd_mono_ms() + rd->cfg->adapter.redis.op_timeout_ms;
    w->app = app;
    w->channel = hd_strdup(channel ? channel : "");
    w->to = to;
    w->kind = (uint8_t)kind;
    char key[24];
    int kl = snprintf(key, sizeof key, "%" PRIu64, w->rid);
    w->entry = hd_map_insert(&rd->wait_map, key, (size_t)kl, w);
    w->prev = rd->waits_tail;
    if (rd->waits_tail)
        rd->waits_tail->next = w;
    else
        rd->waits = w;
    rd->waits_tail = w;
    return w->rid;
}

static rd_wait *wait_take(hd_rd *rd, const char *key, size_t len)
{
    if (!len || len > 20)
        return NULL;
    rd_wait *w = hd_map_remove(&rd->wait_map, key, len);
    if (!w)
        return NULL;
    if (w->prev)
        w->prev->next = w->next;
    else
        rd->waits = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        rd->waits_tail = w->prev;
    return w;
}

static void wait_fail_now(hd_rd *rd, rd_wait *w)
{
    if (w->kind == RD_WAIT_ONLINE)
        rd_reply_status(rd, w->to, HD_AD_UNAVAILABLE);
    else if (w->kind == RD_WAIT_JOIN)
        rd_join_degraded(rd, w->app, w->channel, strlen(w->channel), w->to);
    hd_free(w->channel);
    hd_free(w);
}

static rd_wait *wait_take_rid(hd_rd *rd, uint64_t rid)
{
    char key[24];
    int kl = snprintf(key, sizeof key, "%" PRIu64, rid);
    return rid ? wait_take(rd, key, (size_t)kl) : NULL;
}

void rd_wait_fail(hd_rd *rd, uint64_t rid)
{
    rd_wait *w = wait_take_rid(rd, rid);
    if (w)
        wait_fail_now(rd, w);
}

void rd_waits_tick(hd_rd *rd, uint64_t now_ms)
{
    while (rd->waits && rd->waits->deadline_ms <= now_ms) {
        rd_wait *w = wait_take_rid(rd, rd->waits->rid);
        rd_count_drop(rd, RD_DROP_TIMEOUT, "a cluster answer (the local one was given)");
        wait_fail_now(rd, w);
    }
}

void rd_waits_fail_all(hd_rd *rd)
{
    while (rd->waits)
        wait_fail_now(rd, wait_take_rid(rd, rd->waits->rid));
}

/* ---- the member script ---- */

static void report_member_reply(hd_rd *rd, const rd_op *op, const redisReply *r)
{
    hd_server *srv = rd->base.srv;
    hd_log(HD_LOG_DEBUG, RD_MOD, "member %s: status %lld occupied %lld hook %lld vacated %lld total %lld users %lld",
           op->channel, rd_int(r, 0, -1), rd_int(r, 1, -1), rd_int(r, 2, -1), rd_int(r, 3, -1), rd_int(r, 5, -1),
           rd_int(r, 6, -1));
    /* a join's occupied / member_added went out with its answer (join_result) */
    if (rd_int(r, 2, 0) == 1 && !op->hooks_in_answer)
        rd->host->webhook(srv, op->app, "channel_occupied", op->channel, NULL);
    if (rd_int(r, 4, 0) == 1 && !op->hooks_in_answer) {
        char total[24];
        snprintf(total, sizeof total, "%lld", rd_int(r, 5, 0));
        rd->host->webhook(srv, op->app, "subscription_count", op->channel, total);
    }
    for (size_t i = 7; i + 2 < r->elements; i += 3) {
        const redisReply *u = r->element[i], *what = r->element[i + 1];
        if (u->type != REDIS_REPLY_STRING || what->type != REDIS_REPLY_STRING)
            continue;
        if (strcmp(what->str, "added") == 0 && rd_int(r, i + 2, 0) == 1 && !op->hooks_in_answer)
            rd->host->webhook(srv, op->app, "member_added", op->channel, u->str);
    }
}

void rd_script_error(hd_rd *rd, int script, const redisReply *r)
{
    uint64_t before = rd->script_errors++;
    if (before == 0 || __builtin_clzll(before + 1) < __builtin_clzll(before))
        hd_log(HD_LOG_ERR, RD_MOD, "script %s failed: %s (%" PRIu64 " script errors so far)",
               hd_redis_script_name(script), r && r->str ? r->str : "?", before + 1);
}

static void member_done(hd_rd *rd, rd_cmd *c, redisReply *r)
{
    if (!r || r->type == REDIS_REPLY_ERROR) {
        rd_wait_fail(rd, c->rid); /* never a join left unanswered */
        if (rd_reply_is_error(r, "LEASE_LOST"))
            rd_lease_lost(rd, c->k);
        else if (r)
            rd_script_error(rd, HD_RS_MEMBER, r);
        return;
    }
    if (r->type == REDIS_REPLY_ARRAY && !rd->stopping)
        report_member_reply(rd, c->op, r);
}

static void push_arg(const char **argv, size_t *lens, int *n, const char *s, size_t len)
{
    argv[*n] = s;
    lens[*n] = len;
    (*n)++;
}

#define RD_MEMBER_FIXED 16

void rd_member_send(hd_rd *rd, rd_op *op)
{
    rd_op_uncount(rd, op);
    if (op->kind == RD_OP_WATCH) {
        /* only the subscription: it is in place now (pubsub.c parked the op until its ack) */
        if (op->reply_to.token && !rd->stopping) {
            hd_ad_reply *reply = hd_ad_reply_new(op->reply_to);
            reply->subscribers = op->node_count;
            rd->host->complete(rd->base.srv, reply);
        }
        rd_op_free(op);
        return;
    }
    uint64_t rid = 0;
    if (op->reply_to.token) {
        if (hd_mono_ms() - op->born_ms > rd->cfg->adapter.redis.op_timeout_ms) {
            /* waited too long in the queue: answer locally, still assert the state */
            rd_count_drop(rd, RD_DROP_TIMEOUT, "a cluster answer (the local one was given)");
            rd_join_degraded(rd, op->app, op->channel, op->channel_len, op->reply_to);
        } else {
            rid = rd_wait_add(rd, op->app, op->channel, op->reply_to, RD_WAIT_JOIN);
            op->hooks_in_answer = true;
        }
        op->reply_to.token = 0;
    } else if (op->refresh) {
        rid = rd_wait_add(rd, op->app, op->channel, op->reply_to, RD_WAIT_REFRESH);
    }
    const hd_config *cfg = rd->cfg;
    const hd_app_config *acfg = hd_app_cfg(op->app);
    char epoch[24], count[16], maxm[16], hold[16], ttl[16], token[24];
    snprintf(epoch, sizeof epoch, "%" PRIu64, rd->epoch);
    snprintf(count, sizeof count, "%u", op->node_count);
    snprintf(maxm, sizeof maxm, "%u", op->max_members);
    snprintf(hold, sizeof hold, "%u", cfg->webhooks.vacate_delay_ms);
    snprintf(ttl, sizeof ttl, "%u", cfg->channel_limits.cache_ttl);
    snprintf(token, sizeof token, "%" PRIu64, rid);
    size_t max = RD_MEMBER_FIXED + 5 * op->n_users;
    const char **argv = hd_malloc(max * sizeof *argv);
    size_t *lens = hd_malloc(max * sizeof *lens);
    char (*counts)[16] = op->n_users ? hd_malloc(op->n_users * sizeof *counts) : NULL;
    int n = 0;
    push_arg(argv, lens, &n, cfg->adapter.redis.prefix, strlen(cfg->adapter.redis.prefix));
    push_arg(argv, lens, &n, rd->inc, strlen(rd->inc));
    push_arg(argv, lens, &n, rd->num_str, strlen(rd->num_str));
    push_arg(argv, lens, &n, acfg->id, strlen(acfg->id));
    push_arg(argv, lens, &n, op->channel, op->channel_len);
    push_arg(argv, lens, &n, epoch, strlen(epoch));
    push_arg(argv, lens, &n, count, strlen(count));
    push_arg(argv, lens, &n, maxm, strlen(maxm));
    push_arg(argv, lens, &n, hold, strlen(hold));
    push_arg(argv, lens, &n, ttl, strlen(ttl));
    push_arg(argv, lens, &n, token, strlen(token));
    push_arg(argv, lens, &n, op->except, strlen(op->except));
    push_arg(argv, lens, &n, op->full ? "1" : "0", 1);
    push_arg(argv, lens, &n, acfg->enable_subscription_count ? "1" : "0", 1);
    push_arg(argv, lens, &n, op->online ? op->online : "", op->online ? strlen(op->online) : 0);
    push_arg(argv, lens, &n, op->offline ? op->offline : "", op->offline ? strlen(op->offline) : 0);
    for (size_t i = 0; i < op->n_users; i++) {
        const rd_user *u = &op->users[i];
        snprintf(counts[i], sizeof counts[i], "%u", u->node_count);
        push_arg(argv, lens, &n, u->key, strlen(u->key));
        push_arg(argv, lens, &n, counts[i], strlen(counts[i]));
        push_arg(argv, lens, &n, u->record, strlen(u->record));
        push_arg(argv, lens, &n, u->added, strlen(u->added));
        push_arg(argv, lens, &n, u->removed, strlen(u->removed));
    }
    rd_script_rid(rd, HD_RS_MEMBER, n, argv, lens, member_done, op, rid);
    hd_free(argv);
    hd_free(lens);
    hd_free(counts);
}

/* ---- P:n:<num>: join results, online reads, the probe ---- */

/* Next netstring of [*p, end): its bytes in *s / *len; false when malformed. */
static bool netstring(const char **p, const char *end, const char **s, size_t *len)
{
    size_t n = 0;
    const char *q = *p;
    if (q >= end || *q < '0' || *q > '9')
        return false;
    while (q < end && *q >= '0' && *q <= '9') {
        n = n * 10 + (size_t)(*q - '0');
        if (n > (size_t)(end - *p))
            return false;
        q++;
    }
    if (q >= end || *q != ':' || (size_t)(end - q - 1) < n + 1 || q[1 + n] != ',')
        return false;
    *s = q + 1;
    *len = n;
    *p = q + 2 + n;
    return true;
}

static uint32_t num_of(const char *s, size_t len)
{
    uint64_t v = 0;
    for (size_t i = 0; i < len && s[i] >= '0' && s[i] <= '9'; i++)
        v = v * 10 + (uint64_t)(s[i] - '0');
    return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

/* After a resync: this node's subscribers of a presence channel may have
 * missed member frames while the pub/sub connection was away; a fresh
 * pusher_internal:subscription_succeeded replaces the client's member list
 * (pusher-js rebuilds it on every such frame), ordered among the
 * channel's messages like any join result. */
static void presence_refresh(hd_rd *rd, rd_wait *w, const char *presence, size_t len)
{
    if (len && !rd->stopping) {
        hd_buf frame;
        hd_buf_init(&frame);
        hd_frame_event(&frame, "pusher_internal:subscription_succeeded", w->channel, presence, len);
        rd->host->deliver(rd->base.srv, w->app, w->channel, strlen(w->channel), frame.data, frame.len, NULL);
        hd_buf_deinit(&frame);
    }
    hd_free(w->channel);
    hd_free(w);
}

/* The webhooks a join crossed (J field 9: "1"/"0" occupied, \x1f, the
 * subscription_count total when due or "", then \x1f u per member_added),
 * sent before the subscriber gets its answer, in the order a single node
 * reports them: a client event it sends next is reported after them. */
static void join_hooks(hd_rd *rd, const rd_wait *w, const char *s, size_t len)
{
    hd_server *srv = rd->base.srv;
    if (len && s[0] == '1')
        rd->host->webhook(srv, w->app, "channel_occupied", w->channel, NULL);
    const char *end = s + len, *p = memchr(s, 0x1f, len);
    if (p) { /* the subscription_count total */
        const char *t = p + 1, *next = memchr(t, 0x1f, (size_t)(end - t));
        size_t tl = (size_t)((next ? next : end) - t);
        if (tl && tl < 16) {
            char total[16];
            memcpy(total, t, tl);
            total[tl] = '\0';
            rd->host->webhook(srv, w->app, "subscription_count", w->channel, total);
        }
        p = next;
    }
    while (p && p < end) {
        const char *u = p + 1, *next = memchr(u, 0x1f, (size_t)(end - u));
        size_t ul = (size_t)((next ? next : end) - u);
        char *user = hd_strndup(u, ul);
        rd->host->webhook(srv, w->app, "member_added", w->channel, user);
        hd_free(user);
        p = next;
    }
}

static void join_result(hd_rd *rd, const char *p, const char *end)
{
    const char *f[9];
    size_t l[9];
    for (int i = 0; i < 9; i++) {
        if (!netstring(&p, end, &f[i], &l[i])) {
            hd_log(HD_LOG_ERR, RD_MOD, "malformed join result on the node channel (field %d)", i + 1);
            return;
        }
    }
    rd_wait *w = wait_take(rd, f[0], l[0]);
    if (!w)
        return; /* answered already (timeout, failure) */
    if (w->kind == RD_WAIT_REFRESH) {
        presence_refresh(rd, w, f[4], l[4]);
        return;
    }
    hd_ad_reply *r = hd_ad_reply_new(w->to);
    r->status = l[1] == 1 && f[1][0] == '1' ? HD_AD_LIMIT : HD_AD_OK;
    r->subscribers = num_of(f[2], l[2]);
    r->users = num_of(f[3], l[3]);
    hd_buf_append(&r->presence, f[4], l[4]);
    hd_buf_append(&r->cache, f[5], l[5]);
    r->cache_ttl_s = num_of(f[6], l[6]);
    r->cache_first_miss = l[7] == 1 && f[7][0] == '1';
    join_hooks(rd, w, f[8], l[8]);
    if (r->cache_first_miss)
        rd->host->webhook(rd->base.srv, w->app, "cache_miss", w->channel, NULL);
    rd->host->complete(rd->base.srv, r);
    hd_free(w->channel);
    hd_free(w);
}

static void online_result(hd_rd *rd, const char *p, const char *end)
{
    const char *tok, *body;
    size_t tl, bl;
    if (!netstring(&p, end, &tok, &tl) || !netstring(&p, end, &body, &bl)) {
        hd_log(HD_LOG_ERR, RD_MOD, "malformed read result on the node channel");
        return;
    }
    rd_wait *w = wait_take(rd, tok, tl);
    if (!w)
        return;
    hd_ad_reply *r = hd_ad_reply_new(w->to);
    hd_buf_append(&r->body, body, bl);
    rd->host->complete(rd->base.srv, r);
    hd_free(w->channel);
    hd_free(w);
}

void rd_node_message(hd_rd *rd, const char *payload, size_t len)
{
    const char *end = payload + len, *nl = memchr(payload, '\n', len);
    const char *sp = memchr(payload, ' ', len);
    if (!nl || !sp || sp + 2 > nl || rd->stopping) {
        atomic_fetch_add_explicit(&rd->st.unrouted, 1, memory_order_relaxed);
        return;
    }
    switch (sp[1]) {
    case 'J':
        join_result(rd, nl + 1, end);
        break;
    case 'R':
        online_result(rd, nl + 1, end);
        break;
    case 'Q':
        rd_probe_received(rd, nl + 1, (size_t)(end - nl - 1));
        break;
    default:
        atomic_fetch_add_explicit(&rd->st.unrouted, 1, memory_order_relaxed);
    }
}
