/* lease.c - this node's lease and the cluster's housekeeping (CLUSTER.md
 * 4.4-4.7): register (a new incarnation after a lost lease), renew every
 * lease/4, the reap scan of expired nodes (any node reaps, chunk by chunk),
 * the held-webhook poll, and the graceful leave (reaping itself).
 *
 * THREADING: adapter thread only.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "adapter/redis/redis.h"

static bool registered(const hd_rd *rd)
{
    int st = atomic_load(&rd->state);
    return rd_link_ready(rd) && (st == RD_ST_UP || st == RD_ST_RESYNCING);
}

static void set_inc(hd_rd *rd)
{
    snprintf(rd->inc, sizeof rd->inc, "%s-%u", rd->num_str, rd->k);
}

/* ---- register, renew ---- */

static void lease_ok(hd_rd *rd, const rd_cmd *c)
{
    uint64_t sent_ms = c->sent_us / 1000; /* the lease started no earlier than the send */
    rd->last_renew_ok_mono = sent_ms;
    atomic_store(&rd->lease_until_mono, sent_ms + rd->lease_ms);
}

static void resync_begin_done(hd_rd *rd, rd_cmd *c, redisReply *r)
{
    if (!r)
        return;
    if (rd_reply_is_error(r, "LEASE_LOST")) {
        rd_lease_lost(rd, c->k);
        return;
    }
    if (r->type != REDIS_REPLY_INTEGER) {
        rd_script_error(rd, HD_RS_RESYNC_BEGIN, r);
        rd_link_down(rd, "resync_begin failed");
        return;
    }
    rd->epoch = (uint64_t)r->integer;
    rd_resync_start(rd, RD_RS_RECONNECT);
}

static void register_done(hd_rd *rd, rd_cmd *c, redisReply *r)
{
    if (!r || !rd_state_is(rd, RD_ST_REGISTERING))
        return;
    if (rd_reply_is_error(r, "LEASE_LOST")) {
        /* this incarnation's lease ran out (maybe reaped): a new one */
        hd_log(HD_LOG_WARN, RD_MOD, "lease of %s expired: registering as a new incarnation", rd->inc);
        rd->k++;
        rd->lost_lease = true;
        rd_lease_register(rd);
        return;
    }
    if (rd_reply_is_error(r, "NUM_TAKEN")) {
        hd_log(HD_LOG_ERR, RD_MOD, "node number %s is held by another live process in Redis: cannot join the "
               "cluster (restart this node to draw another number)", rd->num_str);
        rd_set_why(rd, "node number %s taken", rd->num_str);
        rd_link_down(rd, "node number taken");
        return;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 5) {
        rd_script_error(rd, HD_RS_REGISTER, r);
        rd_link_down(rd, "register failed");
        return;
    }
    lease_ok(rd, c);
    bool rebuild = rd_int(r, 2, 0) == 1;
    rd->fresh = rd_int(r, 4, 1) == 1;
    rd_lease_renew_timer(rd, true);
    if (rebuild && rd->ever_registered)
        hd_log(HD_LOG_WARN, RD_MOD, "Redis lost the cluster state: re-asserting this node's");
    int reason = !rd->ever_registered ? -1
                 : rebuild             ? RD_RS_REBUILD
                 : rd->lost_lease      ? RD_RS_LEASE_LOST
                                       : RD_RS_RECONNECT;
    rd->ever_registered = true;
    rd->lost_lease = false;
    if (rd->fresh) {
        rd->epoch = 1;
        rd_resync_start(rd, reason);
        return;
    }
    /* same incarnation, lease still valid: a new epoch, re-assert, sweep */
    const char *argv[2] = {rd->cfg->adapter.redis.prefix, rd->inc};
    rd_script(rd, HD_RS_RESYNC_BEGIN, 2, argv, NULL, resync_begin_done, NULL);
}

void rd_lease_register(hd_rd *rd)
{
    rd_set_state(rd, RD_ST_REGISTERING);
    rd_lease_renew_timer(rd, false);
    if (!rd->k)
        rd->k = 1;
    set_inc(rd);
    char lease[16], pid[16], started[24], gen[24];
    snprintf(lease, sizeof lease, "%u", rd->lease_ms);
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    snprintf(started, sizeof started, "%" PRIu64, rd->started_ms);
    snprintf(gen, sizeof gen, "%016" PRIx64, rd_random(rd));
    const char *argv[10] = {rd->cfg->adapter.redis.prefix, rd->inc, rd->num_str, lease, gen, rd->owner,
                            rd->host_name, pid, started, HERALD_VERSION};
    rd_script(rd, HD_RS_REGISTER, 10, argv, NULL, register_done, NULL);
}

void rd_lease_lost(hd_rd *rd, uint32_t k)
{
    int st = atomic_load(&rd->state);
    if (k != rd->k || st == RD_ST_REGISTERING || st == RD_ST_LEAVING || st == RD_ST_LEFT || !rd_link_ready(rd))
        return; /* about an older incarnation, or handled already */
    hd_log(HD_LOG_WARN, RD_MOD, "lease of %s lost: registering as a new incarnation and re-asserting this "
           "node's state (clients stay connected)", rd->inc);
    atomic_store(&rd->lease_until_mono, 0);
    rd->k++;
    rd->lost_lease = true;
    rd_lease_register(rd);
}

void rd_lease_tick(hd_rd *rd, uint64_t now_ms)
{
    uint64_t until = atomic_load(&rd->lease_until_mono);
    if (until && now_ms > until && registered(rd))
        rd_lease_lost(rd, rd->k); /* renewals stopped succeeding: stop writing under this inc */
}

static void renew_done(hd_rd *rd, rd_cmd *c, redisReply *r)
{
    if (!r)
        return;
    if (rd_reply_is_error(r, "LEASE_LOST")) {
        rd_lease_lost(rd, c->k);
        return;
    }
    if (r->type == REDIS_REPLY_INTEGER && c->k == rd->k)
        lease_ok(rd, c);
    else if (r->type == REDIS_REPLY_ERROR)
        rd_script_error(rd, HD_RS_RENEW, r);
}

static void renew_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    hd_rd *rd = w->data;
    (void)loop, (void)revents;
    if (!registered(rd))
        return;
    char lease[16];
    snprintf(lease, sizeof lease, "%u", rd->lease_ms);
    const char *argv[3] = {rd->cfg->adapter.redis.prefix, rd->inc, lease};
    rd_script(rd, HD_RS_RENEW, 3, argv, NULL, renew_done, NULL);
}

void rd_lease_renew_timer(hd_rd *rd, bool on)
{
    ev_timer_stop(rd->loop, &rd->renew_timer);
    if (on) {
        double every = rd->lease_ms / 4 / 1000.0;
        ev_timer_set(&rd->renew_timer, every, every);
        ev_timer_start(rd->loop, &rd->renew_timer);
    }
}

void rd_lease_init(hd_rd *rd)
{
    ev_init(&rd->renew_timer, renew_cb);
    rd->renew_timer.data = rd;
}

/* ---- reaping (any node, every second) ---- */

void rd_report_counts(hd_rd *rd, const redisReply *triples)
{
    if (!triples || triples->type != REDIS_REPLY_ARRAY || rd->stopping)
        return;
    for (size_t i = 0; i + 2 < triples->elements; i += 3) {
        const redisReply *a = triples->element[i], *c = triples->element[i + 1];
        if (a->type != REDIS_REPLY_STRING || c->type != REDIS_REPLY_STRING)
            continue;
        hd_app *app = rd->host->app_by_id(rd->base.srv, a->str);
        if (!app)
            continue;
        char total[24];
        snprintf(total, sizeof total, "%lld", rd_int(triples, i + 2, 0));
        rd->host->webhook(rd->base.srv, app, "subscription_count", c->str, total);
    }
}

static void reap_next(hd_rd *rd);

static void reap_list_free(hd_rd *rd)
{
    for (size_t i = 0; i < rd->reap_n; i++)
        hd_free(rd->reap_list[i]);
    hd_free(rd->reap_list);
    rd->reap_list = NULL;
    rd->reap_n = rd->reap_i = 0;
    rd->reap_channels = 0;
    rd->reaping = false;
}

static void reap_call(hd_rd *rd, const char *dead, bool force, rd_done_fn done)
{
    char batch[16], hold[16];
    snprintf(batch, sizeof batch, "%u", rd->cfg->adapter.redis.reap_batch ? rd->cfg->adapter.redis.reap_batch : 256);
    snprintf(hold, sizeof hold, "%u", rd->cfg->webhooks.vacate_delay_ms);
    const char *argv[5] = {rd->cfg->adapter.redis.prefix, dead, batch, hold, force ? "1" : "0"};
    rd_script(rd, HD_RS_REAP, 5, argv, NULL, done, NULL);
}

static void reap_done(hd_rd *rd, rd_cmd *c, redisReply *r)
{
    (void)c;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 6) {
        if (r)
            rd_script_error(rd, HD_RS_REAP, r);
        reap_list_free(rd);
        return;
    }
    const char *dead = rd->reap_list[rd->reap_i];
    rd_report_counts(rd, r->element[5]);
    long long alive = rd_int(r, 0, 0), remaining = rd_int(r, 1, 0), channels = rd_int(r, 2, 0);
    rd->reap_channels += (uint64_t)(channels > 0 ? channels : 0);
    atomic_fetch_add_explicit(&rd->st.reaped_channels, (uint64_t)(channels > 0 ? channels : 0),
                              memory_order_relaxed);
    if (!alive && remaining > 0 && registered(rd)) {
        reap_call(rd, dead, false, reap_done); /* the next chunk */
        return;
    }
    if (!alive) {
        atomic_fetch_add_explicit(&rd->st.reaped_nodes, 1, memory_order_relaxed);
        hd_log(HD_LOG_NOTICE, RD_MOD, "node %s's lease ended: removed its state (%" PRIu64 " channel entries)%s",
               dead, rd->reap_channels, strcmp(dead, rd->inc) == 0 ? " - it was this node's own" : "");
    }
    rd->reap_channels = 0;
    rd->reap_i++;
    reap_next(rd);
}

static void reap_next(hd_rd *rd)
{
    if (rd->reap_i >= rd->reap_n || !registered(rd)) {
        reap_list_free(rd);
        return;
    }
    reap_call(rd, rd->reap_list[rd->reap_i], false, reap_done);
}

static void expired_done(hd_rd *rd, rd_cmd *c, redisReply *r)
{
    (void)c;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
        if (r && r->type == REDIS_REPLY_ERROR)
            rd_script_error(rd, HD_RS_EXPIRED, r);
        rd->reaping = false;
        return;
    }
    rd->reap_list = hd_calloc(r->elements, sizeof *rd->reap_list);
    for (size_t i = 0; i < r->elements; i++)
        if (r->element[i]->type == REDIS_REPLY_STRING)
            rd->reap_list[rd->reap_n++] = hd_strndup(r->element[i]->str, r->element[i]->len);
    rd->reap_i = 0;
    reap_next(rd);
}

void rd_reap_scan(hd_rd *rd)
{
    if (rd->reaping || !registered(rd))
        return;
    rd->reaping = true;
    char limit[8];
    snprintf(limit, sizeof limit, "%d", RD_EXPIRED_LIMIT);
    const char *argv[2] = {rd->cfg->adapter.redis.prefix, limit};
    rd_script(rd, HD_RS_EXPIRED, 2, argv, NULL, expired_done, NULL);
}

/* ---- held webhooks ---- */

static void holds_call(hd_rd *rd, bool flush);

static void holds_done(hd_rd *rd, rd_cmd *c, redisReply *r)
{
    bool flush = c->u == 1;
    rd->holds_busy = false;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 1) {
        if (r)
            rd_script_error(rd, HD_RS_HOLDS, r);
        if (flush)
            rd_leave_done_now(rd);
        return;
    }
    for (size_t i = 1; i + 3 < r->elements && !rd->stopping; i += 4) {
        const redisReply *kind = r->element[i], *a = r->element[i + 1], *ch = r->element[i + 2],
                         *u = r->element[i + 3];
        if (kind->type != REDIS_REPLY_STRING || a->type != REDIS_REPLY_STRING || ch->type != REDIS_REPLY_STRING)
            continue;
        hd_app *app = rd->host->app_by_id(rd->base.srv, a->str);
        if (!app)
            continue;
        if (kind->str[0] == 'v') {
            atomic_fetch_add_explicit(&rd->st.holds_vacated, 1, memory_order_relaxed);
            rd->host->webhook(rd->base.srv, app, "channel_vacated", ch->str, NULL);
        } else if (u->type == REDIS_REPLY_STRING) {
            atomic_fetch_add_explicit(&rd->st.holds_removed, 1, memory_order_relaxed);
            rd->host->webhook(rd->base.srv, app, "member_removed", ch->str, u->str);
        }
    }
    if (rd_int(r, 0, 0) > 0 && rd_link_ready(rd)) {
        holds_call(rd, flush); /* more are due */
        return;
    }
    if (flush)
        rd_leave_done_now(rd);
}

static void holds_call(hd_rd *rd, bool flush)
{
    char batch[8];
    snprintf(batch, sizeof batch, "%d", RD_HOLDS_BATCH);
    const char *argv[3] = {rd->cfg->adapter.redis.prefix, batch, flush ? "1" : "0"};
    rd->holds_busy = true;
    rd_cmd *c = rd_script(rd, HD_RS_HOLDS, 3, argv, NULL, holds_done, NULL);
    if (c)
        c->u = flush;
}

void rd_holds_poll(hd_rd *rd)
{
    int st = atomic_load(&rd->state);
    if (rd->holds_busy || !rd_link_ready(rd) || rd->handshake_left || st == RD_ST_LEAVING || st == RD_ST_LEFT)
        return;
    holds_call(rd, false);
}

/* ---- graceful leave (CLUSTER.md 4.6, 7.5) ---- */

void rd_leave_done_now(hd_rd *rd)
{
    if (!rd_state_is(rd, RD_ST_LEAVING))
        return;
    rd_set_state(rd, RD_ST_LEFT);
    rd_leave_finished(rd);
}

static void nodes_left_done(hd_rd *rd, rd_cmd *c, redisReply *r)
{
    (void)c;
    if (r && r->type == REDIS_REPLY_INTEGER && r->integer == 0 && rd_link_ready(rd)) {
        /* the last node: nobody else will confirm the held webhooks */
        holds_call(rd, true);
        return;
    }
    rd_leave_done_now(rd);
}

static void leave_reap_done(hd_rd *rd, rd_cmd *c, redisReply *r)
{
    (void)c;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 6) {
        if (r)
            rd_script_error(rd, HD_RS_REAP, r);
        rd_leave_done_now(rd);
        return;
    }
    rd_report_counts(rd, r->element[5]);
    if (rd_int(r, 1, 0) > 0 && rd_link_ready(rd)) {
        reap_call(rd, rd->inc, true, leave_reap_done);
        return;
    }
    atomic_store(&rd->lease_until_mono, 0);
    char key[256];
    snprintf(key, sizeof key, "%s:nodes", rd->cfg->adapter.redis.prefix);
    const char *argv[2] = {"ZCARD", key};
    rd_command(rd, RD_RTT_SCRIPT, 2, argv, NULL, nodes_left_done, NULL);
}

void rd_leave_start(hd_rd *rd)
{
    int st = atomic_load(&rd->state);
    rd_lease_renew_timer(rd, false);
    ev_timer_stop(rd->loop, &rd->reconnect_timer);
    if (!rd_link_ready(rd) || (st != RD_ST_UP && st != RD_ST_RESYNCING)) {
        /* not registered: nothing of this node to remove now (a lease of an
         * earlier connection ends by itself and is reaped by the others) */
        rd_set_state(rd, RD_ST_LEFT);
        rd_leave_finished(rd);
        return;
    }
    rd_set_state(rd, RD_ST_LEAVING);
    reap_call(rd, rd->inc, true, leave_reap_done);
}
