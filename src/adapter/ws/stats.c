/* stats.c - the server's part of the Prometheus exposition: connections
 * per app, channels per app (by type, and presence members, counted from
 * the registry at scrape time), the io threads' counters, and the cleanup
 * pool's (rendered by the pool itself).
 *
 * Series with a fixed label set (kind, code, route, status: see
 * metrics/series.h) are summed over the io threads here, so their count
 * does not grow with io_threads; the plain counters keep io_thread.
 * Every label combination is printed, zeros included, so a series exists
 * from the first scrape and a dashboard never shows "No data" for it.
 *
 * THREADING: runs on the metrics thread; reads only atomics and the
 * registry's locked counters.
 */
#include <inttypes.h>
#include <stdio.h>

#include "adapter/adapter_internal.h"
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
    ROW(young_reads, "Reads of new connections' messages served ahead of a backlog of ready sockets (a disconnect storm)."),
    ROW(bytes_received, "WebSocket payload bytes received from clients."),
    ROW(http_bytes_received, "Bytes of HTTP API requests (head, and the body as far as it was read)."),
    ROW(http_bytes_sent, "Bytes of HTTP API answers (head and body)."),
};

/* app="<id>", escaped: ids come from the configuration. */
static const char *app_label(hd_buf *l, const hd_app *app)
{
    l->len = 0;
    hd_metrics_label(l, "app", hd_app_cfg(app)->id);
    return l->data;
}

static void render_apps(hd_server *srv, hd_buf *out)
{
    hd_buf l;
    hd_buf_init(&l);
    size_t n = hd_server_n_apps(srv); /* apps a reload added too; removed ones drop out */
    hd_metrics_family(out, "herald_connections", "gauge", "Open WebSocket connections.");
    for (size_t i = 0; i < n; i++)
        if (!atomic_load(&srv->apps[i].removed))
            hd_metrics_sample(out, "herald_connections", app_label(&l, &srv->apps[i]),
                              atomic_load(&srv->apps[i].connections));
    hd_metrics_family(out, "herald_channels", "gauge", "Channels in the registry (incl. internal and cached).");
    for (size_t i = 0; i < n; i++)
        if (!atomic_load(&srv->apps[i].removed))
            hd_metrics_sample(out, "herald_channels", app_label(&l, &srv->apps[i]),
                              (double)hd_registry_channel_count(srv->apps[i].registry));
    hd_buf_deinit(&l);
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

/* The registry's channels by type and its presence members, per app. */
static void render_census(hd_server *srv, hd_buf *out)
{
    size_t n = hd_server_n_apps(srv);
    hd_census *census = hd_calloc(n ? n : 1, sizeof *census);
    for (size_t i = 0; i < n; i++)
        if (!atomic_load(&srv->apps[i].removed))
            hd_registry_census(srv->apps[i].registry, &census[i]);
    hd_buf l;
    hd_buf_init(&l);
    hd_metrics_family(out, "herald_channels_by_type", "gauge",
                      "Channels in the registry by type (public, private, encrypted, presence, cache, internal).");
    for (size_t i = 0; i < n; i++) {
        if (atomic_load(&srv->apps[i].removed))
            continue;
        for (unsigned t = 0; t < HD_CENSUS_TYPES; t++)
            hd_buf_printf(out, "herald_channels_by_type{%s,type=\"%s\"} %zu\n", app_label(&l, &srv->apps[i]),
                          hd_census_type_label((hd_census_type)t), census[i].channels[t]);
    }
    hd_metrics_family(out, "herald_presence_members", "gauge", "Distinct users, summed over the presence channels.");
    for (size_t i = 0; i < n; i++)
        if (!atomic_load(&srv->apps[i].removed))
            hd_buf_printf(out, "herald_presence_members{%s} %zu\n", app_label(&l, &srv->apps[i]),
                          census[i].presence_members);
    hd_buf_deinit(&l);
    hd_free(census);
}

/* Sum over the io threads of the counter at byte offset off of hd_io_stats. */
static uint64_t sum_threads(const hd_server *srv, size_t off)
{
    uint64_t sum = 0;
    for (unsigned t = 0; t < srv->n_threads; t++) {
        const atomic_uint_fast64_t *v = (const atomic_uint_fast64_t *)((const char *)&srv->threads[t].stats + off);
        sum += atomic_load_explicit(v, memory_order_relaxed);
    }
    return sum;
}

/* Element i of an array of counters (a two-dimensional one flattened). */
#define SUM(srv, field, i) sum_threads((srv), offsetof(hd_io_stats, field) + (size_t)(i) * sizeof(atomic_uint_fast64_t))

static void render_kinds(hd_server *srv, hd_buf *out)
{
    hd_metrics_family(out, "herald_messages_received_by_kind_total", "counter",
                      "WebSocket messages received from clients, by kind.");
    for (unsigned k = 0; k < HD_WS_KINDS; k++)
        hd_buf_printf(out, "herald_messages_received_by_kind_total{kind=\"%s\"} %" PRIu64 "\n",
                      hd_series_ws_kind_label((hd_ws_kind)k), SUM(srv, messages_by_kind, k));
    hd_metrics_family(out, "herald_frames_queued_total", "counter",
                      "Frames handed to connections' outbound queues: channel (fan-out) or direct (to one connection).");
    for (unsigned k = 0; k < HD_FRAME_KINDS; k++)
        hd_buf_printf(out, "herald_frames_queued_total{kind=\"%s\"} %" PRIu64 "\n",
                      hd_series_frame_kind_label((hd_frame_kind)k), SUM(srv, frames_queued, k));
    hd_metrics_family(out, "herald_bytes_queued_total", "counter", "Payload bytes of those frames.");
    for (unsigned k = 0; k < HD_FRAME_KINDS; k++)
        hd_buf_printf(out, "herald_bytes_queued_total{kind=\"%s\"} %" PRIu64 "\n",
                      hd_series_frame_kind_label((hd_frame_kind)k), SUM(srv, bytes_queued, k));
    hd_metrics_family(out, "herald_connections_closed_total", "counter",
                      "WebSocket connections closed, by close code (herald's, else the client's; 1006: dropped).");
    for (unsigned c = 0; c < HD_SERIES_CLOSE_SLOTS; c++)
        hd_buf_printf(out, "herald_connections_closed_total{code=\"%s\"} %" PRIu64 "\n", hd_series_close_label(c),
                      SUM(srv, closed_by_code, c));
}

static void render_http_routes(hd_server *srv, hd_buf *out)
{
    static const char dur[] = "herald_http_request_duration_seconds";
    hd_metrics_family(out, "herald_http_requests_by_route_total", "counter",
                      "HTTP API requests answered, by route and status.");
    for (unsigned r = 0; r < HD_HTTP_ROUTES; r++)
        for (unsigned c = 0; c < HD_SERIES_STATUS_SLOTS; c++)
            hd_buf_printf(out, "herald_http_requests_by_route_total{route=\"%s\",status=\"%s\"} %" PRIu64 "\n",
                          hd_series_http_route_label((hd_http_route)r), hd_series_status_label(c),
                          SUM(srv, http_by_route, r * HD_SERIES_STATUS_SLOTS + c));
    hd_metrics_family(out, dur, "histogram", "Time from the end of an HTTP API request's head to its answer being queued.");
    double le[HD_SERIES_HTTP_BUCKETS - 1];
    for (unsigned b = 0; b < HD_SERIES_HTTP_BUCKETS - 1; b++)
        le[b] = hd_series_http_le_us[b] / 1e6;
    hd_buf l;
    hd_buf_init(&l);
    for (unsigned r = 0; r < HD_HTTP_ROUTES; r++) {
        uint64_t counts[HD_SERIES_HTTP_BUCKETS];
        for (unsigned b = 0; b < HD_SERIES_HTTP_BUCKETS; b++)
            counts[b] = SUM(srv, http_duration, r * HD_SERIES_HTTP_BUCKETS + b);
        l.len = 0;
        hd_metrics_label(&l, "route", hd_series_http_route_label((hd_http_route)r));
        hd_metrics_histogram(out, dur, l.data, counts, le, HD_SERIES_HTTP_BUCKETS,
                             SUM(srv, http_duration_sum_us, r) / 1e6, 6);
    }
    hd_buf_deinit(&l);
}

/* Queues with no home of their own: the io threads' inboxes (unbounded:
 * depth and high water) and the HTTP front end's buffer budget. */
static void render_queues(hd_server *srv, hd_buf *out)
{
    char labels[32];
    hd_metrics_family(out, "herald_inbox_depth", "gauge", "Items (publishes, terminations) waiting in the io thread's inbox.");
    for (unsigned t = 0; t < srv->n_threads; t++) {
        snprintf(labels, sizeof labels, "io_thread=\"%u\"", t);
        hd_metrics_sample(out, "herald_inbox_depth", labels,
                          (double)atomic_load_explicit(&srv->threads[t].inbox_depth, memory_order_relaxed));
    }
    hd_metrics_family(out, "herald_inbox_high_water", "gauge", "Highest depth the io thread's inbox has reached.");
    for (unsigned t = 0; t < srv->n_threads; t++) {
        snprintf(labels, sizeof labels, "io_thread=\"%u\"", t);
        hd_metrics_sample(out, "herald_inbox_high_water", labels,
                          (double)atomic_load_explicit(&srv->threads[t].inbox_high_water, memory_order_relaxed));
    }
    hd_metrics_family(out, "herald_http_buffers_bytes", "gauge",
                      "Memory the HTTP front end holds for connections and requests in flight.");
    hd_metrics_sample(out, "herald_http_buffers_bytes", NULL, (double)atomic_load(&srv->front_bytes));
    hd_metrics_family(out, "herald_http_buffers_capacity_bytes", "gauge",
                      "Budget for that memory (limits.http_buffers_mb); past it requests get 503.");
    hd_metrics_sample(out, "herald_http_buffers_capacity_bytes", NULL,
                      (double)((uint64_t)srv->cfg->limits.http_buffers_mb << 20));
}

void hd_server_metrics_render(void *arg, hd_buf *out)
{
    hd_server *srv = arg;
    render_apps(srv, out);
    render_census(srv, out);
    render_counters(srv, out);
    render_kinds(srv, out);
    render_http_routes(srv, out);
    render_queues(srv, out);
    hd_cleanup_metrics(srv->cleanup, out);
    hd_webhooks_metrics(srv->webhooks, out);
    if (srv->adapter->ops->metrics)
        srv->adapter->ops->metrics(srv->adapter, out);
}

bool hd_server_metrics_ready(void *arg, hd_buf *why)
{
    return hd_server_ready(arg, why);
}
