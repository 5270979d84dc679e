/* stats.c - the server's part of the Prometheus exposition: connections
 * per app, channels per app, the io threads' counters, and the cleanup
 * pool's (rendered by the pool itself).
 *
 * THREADING: runs on the metrics thread; reads only atomics and the
 * registry's locked counters.
 */
#include <stdio.h>

#include "adapter_internal.h"
#include "cleanup/cleanup.h"
#include "metrics/metrics.h"
#include "webhooks/webhooks.h"

typedef struct counter_row {
    const char *name;
    const char *help;
    size_t offset;
} counter_row;

#define ROW(field, help) {"herald_" #field "_total", help, offsetof(hd_io_stats, field)}

static const counter_row counters[] = {
    ROW(connections_opened, "WebSocket connections accepted (handshake completed)."),
    ROW(messages_received, "WebSocket messages received from clients."),
    ROW(frames_sent, "WebSocket frames written to clients."),
    ROW(bytes_sent, "WebSocket payload bytes written to clients."),
    ROW(http_requests, "HTTP API requests answered."),
    ROW(slow_consumer_closes, "Connections closed (4100) because their outbound buffer overflowed."),
    ROW(coalesced_writes, "Writes that carried several queued frames in one send()."),
    ROW(http_refused, "HTTP requests answered with a 4xx/5xx status (bad head, authentication, validation, over a limit)."),
    ROW(http_timeouts, "HTTP request heads or bodies that missed their deadline (408)."),
    ROW(connections_rate_limited, "WebSocket handshakes refused (429) by limits.new_connections_per_second / _per_ip_per_second."),
    ROW(connections_over_limit, "WebSocket connections closed 4100 because limits.max_connections was reached."),
    ROW(close_timeouts, "Closed WebSocket sessions torn down because the client did not complete the close in time."),
};

static void render_apps(hd_server *srv, hd_buf *out)
{
    char labels[300];
    size_t n = hd_server_n_apps(srv); /* apps a reload added too; removed ones drop out */
    hd_metrics_family(out, "herald_connections", "gauge", "Open WebSocket connections.");
    for (size_t i = 0; i < n; i++) {
        if (atomic_load(&srv->apps[i].removed))
            continue;
        snprintf(labels, sizeof labels, "app=\"%s\"", hd_app_cfg(&srv->apps[i])->id);
        hd_metrics_sample(out, "herald_connections", labels, atomic_load(&srv->apps[i].connections));
    }
    hd_metrics_family(out, "herald_channels", "gauge", "Channels in the registry (incl. internal and cached).");
    for (size_t i = 0; i < n; i++) {
        if (atomic_load(&srv->apps[i].removed))
            continue;
        snprintf(labels, sizeof labels, "app=\"%s\"", hd_app_cfg(&srv->apps[i])->id);
        hd_metrics_sample(out, "herald_channels", labels, (double)hd_registry_channel_count(srv->apps[i].registry));
    }
}

static void render_counters(hd_server *srv, hd_buf *out)
{
    char labels[32];
    for (size_t c = 0; c < sizeof counters / sizeof counters[0]; c++) {
        hd_metrics_family(out, counters[c].name, "counter", counters[c].help);
        for (unsigned t = 0; t < srv->n_threads; t++) {
            atomic_uint_fast64_t *v = (atomic_uint_fast64_t *)((char *)&srv->threads[t].stats + counters[c].offset);
            snprintf(labels, sizeof labels, "io_thread=\"%u\"", t);
            hd_metrics_sample(out, counters[c].name, labels, (double)atomic_load_explicit(v, memory_order_relaxed));
        }
    }
}

void hd_server_metrics_render(void *arg, hd_buf *out)
{
    hd_server *srv = arg;
    render_apps(srv, out);
    render_counters(srv, out);
    hd_cleanup_metrics(srv->cleanup, out);
    hd_webhooks_metrics(srv->webhooks, out);
}

bool hd_server_metrics_ready(void *arg, hd_buf *why)
{
    return hd_server_ready(arg, why);
}
