/* metrics.c - the Redis adapter's herald_adapter_* series (Prometheus
 * text, CLUSTER.md 8) and its /ready answer.
 *
 * THREADING: rd_rtt_observe on the adapter thread; rd_metrics and rd_ready
 * on the metrics thread or an io thread: they read only atomics and the
 * why text under why_lock.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "adapter/redis/redis.h"
#include "metrics/metrics.h"

static const double rtt_bounds[RD_RTT_BUCKETS] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                  0.01,   0.025,   0.05,   0.1,   0.5,    1.0};
static const char *const rtt_kinds[RD_RTT_COUNT] = {"script", "publish", "lease"};
static const char *const resync_reasons[RD_RS_COUNT] = {"reconnect", "lease_lost", "rebuild", "dropped_op"};
static const char *const drop_reasons[RD_DROP_COUNT] = {"queue_full", "redis_down", "timeout"};

void rd_rtt_observe(hd_rd *rd, int kind, uint64_t us)
{
    double s = (double)us / 1e6;
    unsigned b = 0;
    while (b < RD_RTT_BUCKETS && s > rtt_bounds[b])
        b++;
    atomic_fetch_add_explicit(&rd->st.rtt[kind][b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&rd->st.rtt_sum_us[kind], us, memory_order_relaxed);
}

static uint64_t ld(atomic_uint_fast64_t *v)
{
    return atomic_load_explicit(v, memory_order_relaxed);
}

static void counter(hd_buf *out, const char *name, const char *help, const char *labels, uint64_t v)
{
    hd_metrics_family(out, name, "counter", help);
    hd_metrics_sample(out, name, labels, (double)v);
}

static void rtt_histogram(hd_rd *rd, hd_buf *out)
{
    const char *name = "herald_adapter_redis_rtt_seconds";
    hd_metrics_family(out, name, "histogram", "Round trip of commands to Redis, by kind.");
    for (int k = 0; k < RD_RTT_COUNT; k++) {
        uint64_t cum = 0;
        for (unsigned b = 0; b < RD_RTT_BUCKETS; b++) {
            cum += ld(&rd->st.rtt[k][b]);
            hd_buf_printf(out, "%s_bucket{kind=\"%s\",le=\"%g\"} %" PRIu64 "\n", name, rtt_kinds[k], rtt_bounds[b],
                          cum);
        }
        cum += ld(&rd->st.rtt[k][RD_RTT_BUCKETS]);
        hd_buf_printf(out, "%s_bucket{kind=\"%s\",le=\"+Inf\"} %" PRIu64 "\n", name, rtt_kinds[k], cum);
        hd_buf_printf(out, "%s_sum{kind=\"%s\"} %.6f\n", name, rtt_kinds[k], (double)ld(&rd->st.rtt_sum_us[k]) / 1e6);
        hd_buf_printf(out, "%s_count{kind=\"%s\"} %" PRIu64 "\n", name, rtt_kinds[k], cum);
    }
}

void rd_metrics(hd_adapter *a, hd_buf *out)
{
    hd_rd *rd = rd_of(a);
    char labels[64];
    int st = atomic_load(&rd->state);
    hd_metrics_family(out, "herald_adapter_state", "gauge", "Cluster state of this node: 1 on the current one.");
    for (int i = 0; i < RD_ST_COUNT; i++) {
        snprintf(labels, sizeof labels, "state=\"%s\"", rd_state_name(i));
        hd_metrics_sample(out, "herald_adapter_state", labels, i == st);
    }
    hd_metrics_family(out, "herald_adapter_publishes_total", "counter",
                      "Messages sent to other nodes (out) and delivered from them (in).");
    hd_metrics_sample(out, "herald_adapter_publishes_total", "dir=\"out\"", (double)ld(&rd->st.publishes_out));
    hd_metrics_sample(out, "herald_adapter_publishes_total", "dir=\"in\"", (double)ld(&rd->st.publishes_in));
    counter(out, "herald_adapter_messages_unrouted_total",
            "Messages received for a channel without local subscribers (lingering), or not understood.", NULL,
            ld(&rd->st.unrouted));
    rtt_histogram(rd, out);
    counter(out, "herald_adapter_reconnects_total", "Attempts to connect to Redis again.", NULL,
            ld(&rd->st.reconnects));
    hd_metrics_family(out, "herald_adapter_resyncs_total", "counter",
                      "Re-assertions of this node's state to the cluster, by reason.");
    for (int i = 0; i < RD_RS_COUNT; i++) {
        snprintf(labels, sizeof labels, "reason=\"%s\"", resync_reasons[i]);
        hd_metrics_sample(out, "herald_adapter_resyncs_total", labels, (double)ld(&rd->st.resyncs[i]));
    }
    counter(out, "herald_adapter_reaped_nodes_total", "Nodes whose expired lease this node finished reaping.", NULL,
            ld(&rd->st.reaped_nodes));
    counter(out, "herald_adapter_reaped_subscriptions_total", "Channel entries of dead nodes removed by this node.",
            NULL, ld(&rd->st.reaped_channels));
    hd_metrics_family(out, "herald_adapter_dropped_total", "counter",
                      "Operations not sent to Redis, by reason (local delivery went on).");
    for (int i = 0; i < RD_DROP_COUNT; i++) {
        snprintf(labels, sizeof labels, "reason=\"%s\"", drop_reasons[i]);
        hd_metrics_sample(out, "herald_adapter_dropped_total", labels, (double)ld(&rd->st.dropped[i]));
    }
    counter(out, "herald_adapter_degraded_joins_total",
            "Subscriptions answered from this node's registry alone (Redis away or late).", NULL,
            ld(&rd->st.degraded_joins));
    hd_metrics_family(out, "herald_adapter_holds_confirmed_total", "counter",
                      "Held webhooks this node confirmed and sent, by event.");
    hd_metrics_sample(out, "herald_adapter_holds_confirmed_total", "event=\"channel_vacated\"",
                      (double)ld(&rd->st.holds_vacated));
    hd_metrics_sample(out, "herald_adapter_holds_confirmed_total", "event=\"member_removed\"",
                      (double)ld(&rd->st.holds_removed));
    hd_metrics_family(out, "herald_adapter_queue_bytes", "gauge", "Bytes of operations waiting for Redis.");
    hd_metrics_sample(out, "herald_adapter_queue_bytes", NULL,
                      (double)atomic_load_explicit(&rd->q_bytes, memory_order_relaxed));
    hd_metrics_family(out, "herald_adapter_subscribed_channels", "gauge",
                      "Redis pub/sub channels this node listens to (its node channel excluded).");
    hd_metrics_sample(out, "herald_adapter_subscribed_channels", NULL, (double)ld(&rd->st.subscribed));
    uint64_t until = atomic_load(&rd->lease_until_mono), now = hd_mono_ms();
    hd_metrics_family(out, "herald_adapter_lease_seconds_left", "gauge",
                      "Time this node's lease is known valid for (0 = none).");
    hd_metrics_sample(out, "herald_adapter_lease_seconds_left", NULL, until > now ? (double)(until - now) / 1000.0 : 0);
}

bool rd_ready(hd_adapter *a, hd_buf *why)
{
    hd_rd *rd = rd_of(a);
    int st = atomic_load(&rd->state);
    if (st == RD_ST_UP)
        return true;
    if (!why)
        return false;
    char detail[sizeof rd->why];
    pthread_mutex_lock(&rd->why_lock);
    memcpy(detail, rd->why, sizeof detail);
    pthread_mutex_unlock(&rd->why_lock);
    uint64_t since = atomic_load(&rd->down_since_ms), now = hd_wall_ms();
    double for_s = since && now > since ? (double)(now - since) / 1000.0 : 0;
    if (since && (st == RD_ST_DOWN || st == RD_ST_CONNECTING)) {
        hd_buf_printf(why, "redis: down for %.1f s (%s)", for_s, detail);
        return false;
    }
    switch (st) {
    case RD_ST_DOWN:
        hd_buf_printf(why, "redis: down (%s)", detail);
        break;
    case RD_ST_CONNECTING:
        hd_buf_printf(why, "redis: connecting to %s:%u", rd->cfg->adapter.redis.host,
                      (unsigned)rd->cfg->adapter.redis.port);
        break;
    case RD_ST_REGISTERING:
        hd_buf_puts(why, "redis: registering this node");
        break;
    case RD_ST_RESYNCING:
        hd_buf_puts(why, "redis: resyncing");
        break;
    default:
        hd_buf_puts(why, "redis: left the cluster");
    }
    return false;
}
