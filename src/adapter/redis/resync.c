/* resync.c - re-asserting this node's truth (its registry) to the cluster
 * (CLUSTER.md 4.6, D10, D11): after every registration every channel with
 * local subscribers ('#' ones included) is asserted with full = 1, then
 * the app quotas are set, then - for the same incarnation after a
 * reconnect - entries not re-asserted in this epoch are swept. Channels
 * whose membership op was dropped (queue full) are re-asserted the same
 * way, one by one, at most every 5 s.
 *
 * Each assertion is read under the channel's order lock and queued while
 * it is held, so it lands in the queue between the ops that came before
 * and after it: the queue is the order, and every op is absolute.
 *
 * THREADING: adapter thread only. It takes a channel's order lock with no
 * other lock held (the io threads queue their ops under it).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "adapter/redis/redis.h"

typedef struct resync_ctx {
    hd_rd *rd;
    hd_app *app;
    size_t channels;
} resync_ctx;

static void assert_channel(hd_rd *rd, hd_app *app, hd_channel *ch, bool refresh)
{
    hd_channel_order_lock(ch);
    rd_op *op = rd_member_snapshot(rd, app, ch);
    op->refresh = refresh && op->kind == RD_OP_MEMBER && hd_channel_get_type(ch).kind == HD_CHANNEL_PRESENCE &&
                  op->node_count > 0;
    rd_queue_push(rd, op, true); /* bounded by the registry's size, never dropped */
    hd_channel_order_unlock(ch);
}

static void resync_channel(hd_channel *ch, void *arg)
{
    resync_ctx *ctx = arg;
    assert_channel(ctx->rd, ctx->app, ch, ctx->rd->refresh_presence);
    ctx->channels++;
}

static void resync_app(void *arg, hd_app *app)
{
    resync_ctx *ctx = arg;
    ctx->app = app;
    hd_registry_foreach_occupied(app->registry, NULL, resync_channel, ctx);
}

void rd_resync_start(hd_rd *rd, int reason)
{
    rd_set_state(rd, RD_ST_RESYNCING);
    if (reason >= 0)
        atomic_fetch_add_explicit(&rd->st.resyncs[reason], 1, memory_order_relaxed);
    rd->sweep_after = reason == RD_RS_RECONNECT && !rd->fresh;
    /* after an outage or a lost lease this node may have missed member frames */
    rd->refresh_presence = reason >= 0 && reason != RD_RS_DROPPED_OP;
    rd->resync_gen++;
    rd->resync_end_seen = false;
    resync_ctx ctx = {rd, NULL, 0};
    rd->host->for_each_app(rd->base.srv, resync_app, &ctx);
    rd_op *end = rd_op_new(RD_OP_RESYNC_END, NULL, NULL, 0);
    end->delta = (int)rd->resync_gen;
    rd_queue_push(rd, end, true);
    rd->resync_started_ms = hd_mono_ms();
    rd->resync_channels = ctx.channels;
    if (ctx.channels)
        hd_log(HD_LOG_INFO, RD_MOD, "re-asserting %zu local channel(s) as %s, epoch %" PRIu64, ctx.channels,
               rd->inc, rd->epoch);
}

void rd_resync_end_marker(hd_rd *rd, unsigned gen)
{
    if (gen != rd->resync_gen || !rd_state_is(rd, RD_ST_RESYNCING))
        return; /* a resync that was cut short by a newer one */
    rd->resync_end_seen = true;
    rd_resync_maybe_finish(rd);
}

static void quota_app(void *arg, hd_app *app)
{
    hd_rd *rd = arg;
    if (hd_app_cfg(app)->max_connections == 0)
        return;
    rd_quota_call(rd, app, "set", rd->host->local_connections(rd->base.srv, app), NULL);
}

static void resync_up(hd_rd *rd)
{
    if (rd->resync_channels)
        hd_log(HD_LOG_INFO, RD_MOD, "re-asserted %zu channel(s) in %" PRIu64 " ms", rd->resync_channels,
               hd_mono_ms() - rd->resync_started_ms);
    atomic_store(&rd->down_since_ms, 0);
    rd_set_state(rd, RD_ST_UP);
}

static void sweep_call(hd_rd *rd);

static void sweep_done(hd_rd *rd, rd_cmd *c, redisReply *r)
{
    if (!r || !rd_state_is(rd, RD_ST_RESYNCING))
        return;
    if (rd_reply_is_error(r, "LEASE_LOST")) {
        rd_lease_lost(rd, c->k);
        return;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 6) {
        rd_script_error(rd, HD_RS_SWEEP, r);
        resync_up(rd); /* the stale entries stay until this node's lease ends; serve on */
        return;
    }
    rd_report_counts(rd, r->element[5]);
    if (rd_int(r, 1, 0) > 0) {
        sweep_call(rd);
        return;
    }
    resync_up(rd);
}

static void sweep_call(hd_rd *rd)
{
    char epoch[24], batch[16], hold[16];
    snprintf(epoch, sizeof epoch, "%" PRIu64, rd->epoch);
    snprintf(batch, sizeof batch, "%u", rd->cfg->adapter.redis.reap_batch ? rd->cfg->adapter.redis.reap_batch : 256);
    snprintf(hold, sizeof hold, "%u", rd->cfg->webhooks.vacate_delay_ms);
    const char *argv[5] = {rd->cfg->adapter.redis.prefix, rd->inc, epoch, batch, hold};
    rd_script(rd, HD_RS_SWEEP, 5, argv, NULL, sweep_done, NULL);
}

void rd_resync_maybe_finish(hd_rd *rd)
{
    /* every assertion must have reached Redis before the sweep, or the sweep
     * would zero a channel whose assertion still waits for its SUBSCRIBE */
    if (!rd->resync_end_seen || rd->parked_ops > 0 || !rd_state_is(rd, RD_ST_RESYNCING))
        return;
    rd->resync_end_seen = false;
    rd->host->for_each_app(rd->base.srv, quota_app, rd);
    if (rd->sweep_after)
        sweep_call(rd);
    else
        resync_up(rd);
}

/* ---- channels whose op was dropped ---- */

void rd_dirty_tick(hd_rd *rd, uint64_t now_ms)
{
    if (now_ms - rd->last_dirty_ms < RD_DIRTY_MIN_MS || !rd_state_is(rd, RD_ST_UP))
        return;
    if (atomic_load_explicit(&rd->q_bytes, memory_order_relaxed) > rd->queue_limit / 2)
        return; /* still congested: later */
    rd->last_dirty_ms = now_ms;
    hd_map dirty;
    bool overflow;
    rd_dirty_take(rd, &dirty, &overflow);
    if (overflow) {
        hd_map_deinit(&dirty);
        hd_log(HD_LOG_WARN, RD_MOD, "too many membership changes were dropped: re-asserting every channel");
        rd_resync_start(rd, RD_RS_DROPPED_OP);
        return;
    }
    if (dirty.count == 0) {
        hd_map_deinit(&dirty);
        return;
    }
    atomic_fetch_add_explicit(&rd->st.resyncs[RD_RS_DROPPED_OP], 1, memory_order_relaxed);
    hd_map_iter it = {0};
    hd_map_entry *e;
    while ((e = hd_map_next(&dirty, &it))) {
        hd_app *app = e->value;
        const char *sep = memchr(e->key, '\x1f', e->key_len);
        if (!sep)
            continue;
        const char *name = sep + 1;
        size_t len = e->key_len - (size_t)(name - e->key);
        /* created if it is gone: its order lock then orders this assertion
         * (count 0) with a join racing to create it again */
        hd_channel *ch = hd_registry_acquire(app->registry, name, len, true);
        if (!ch)
            continue;
        assert_channel(rd, app, ch, false);
        hd_registry_release(app->registry, ch);
    }
    hd_map_deinit(&dirty);
}
