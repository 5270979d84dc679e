/* series.h - the fixed label sets and histogram buckets of herald's own
 * series (docs/METRICS.md): under which close code, inbound message kind,
 * HTTP route and status a sample is counted, and in which latency bucket.
 *
 * DESIGN
 * ------
 * Every label value comes from a fixed list chosen here, never from what a
 * client sent: a client closing with 3999 random codes, or requesting a
 * million different paths, must not create a million series. Anything not
 * on a list is counted under "other". Each function is a handful of
 * compares, because the io threads call them on every close, message and
 * HTTP request; the counters themselves are arrays indexed by the slot
 * these functions return (adapter_internal.h, hd_io_stats).
 *
 * THREADING
 * ---------
 * Pure functions and constant tables: any thread.
 */
#ifndef HD_METRICS_SERIES_H
#define HD_METRICS_SERIES_H

#include <stddef.h>
#include <stdint.h>

/* ---- close codes: herald_connections_closed_total{code} ---- */

/* Known codes (WebSocket 1000-1011, Pusher 4001-4201) and "other". */
#define HD_SERIES_CLOSE_SLOTS 20
unsigned hd_series_close_slot(unsigned code);
const char *hd_series_close_label(unsigned slot);

/* ---- inbound WebSocket messages: herald_messages_received_by_kind_total{kind} ---- */

typedef enum hd_ws_kind {
    HD_WS_KIND_SUBSCRIBE,
    HD_WS_KIND_UNSUBSCRIBE,
    HD_WS_KIND_SIGNIN,
    HD_WS_KIND_PING,
    HD_WS_KIND_PONG,
    HD_WS_KIND_CLIENT_EVENT,
    HD_WS_KIND_OTHER, /* unknown event, not a JSON object with an event, binary */
    HD_WS_KINDS
} hd_ws_kind;

/* The kind of a message whose "event" is event (NULL: none). */
hd_ws_kind hd_series_ws_kind(const char *event);
const char *hd_series_ws_kind_label(hd_ws_kind k);

/* ---- outbound frames: herald_frames_queued_total{kind} ---- */

typedef enum hd_frame_kind {
    HD_FRAME_CHANNEL, /* fanned out to a channel's subscribers (one hd_msg per io thread) */
    HD_FRAME_DIRECT,  /* to one connection: answers, errors, pings, replays */
    HD_FRAME_KINDS
} hd_frame_kind;

const char *hd_series_frame_kind_label(hd_frame_kind k);

/* ---- HTTP API: herald_http_requests_by_route_total{route,status} ---- */

typedef enum hd_http_route {
    HD_ROUTE_EVENTS,        /* /apps/{id}/events */
    HD_ROUTE_BATCH_EVENTS,  /* /apps/{id}/batch_events */
    HD_ROUTE_CHANNELS,      /* /apps/{id}/channels */
    HD_ROUTE_CHANNEL,       /* /apps/{id}/channels/{c} */
    HD_ROUTE_CHANNEL_USERS, /* /apps/{id}/channels/{c}/users */
    HD_ROUTE_TERMINATE,     /* /apps/{id}/users/{u}/terminate_connections */
    HD_ROUTE_UP,            /* /up, /up/{id} */
    HD_ROUTE_READY,         /* /ready */
    HD_ROUTE_OTHER,
    HD_HTTP_ROUTES
} hd_http_route;

/* The route of a request target target[0, len) (a query string is
 * ignored), by the path's shape only, whatever the method: a GET of
 * /apps/1/events is counted under events, with its 405. */
hd_http_route hd_series_http_route(const char *target, size_t len);
const char *hd_series_http_route_label(hd_http_route r);

/* Statuses herald answers (200, 204, 400 ... 503) and "other". */
#define HD_SERIES_STATUS_SLOTS 13
unsigned hd_series_status_slot(int status);
const char *hd_series_status_label(unsigned slot);

/* ---- herald_http_request_duration_seconds ---- */

/* Upper bounds in microseconds, 100 us .. 1 s; the last bucket is +Inf. */
#define HD_SERIES_HTTP_BUCKETS 14
extern const uint32_t hd_series_http_le_us[HD_SERIES_HTTP_BUCKETS - 1];
/* The bucket of a duration: the first bound >= us, or the +Inf one. */
unsigned hd_series_http_bucket(uint64_t us);

#endif /* HD_METRICS_SERIES_H */
