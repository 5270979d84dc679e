/* series.c - fixed label sets and buckets of herald's series (series.h).
 *
 * THREADING: pure functions and constant tables (the close-code labels
 * are written once, under pthread_once); any thread.
 */
#include "series.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "protocol/protocol.h"

/* ---- close codes ---- */

/* What herald sends (1002, 1007, 1009, 1011 and the Pusher 4xxx codes),
 * what clients and browsers commonly send (1000, 1001, 1003, 1008), and
 * what stands for "no code" (1005: a close frame without one; 1006: no
 * close frame at all, the connection dropped). */
static const uint16_t close_codes[HD_SERIES_CLOSE_SLOTS - 1] = {
    HD_CLOSE_NORMAL,          HD_CLOSE_GOING_AWAY,     HD_CLOSE_PROTOCOL_ERROR, HD_CLOSE_UNSUPPORTED_DATA,
    HD_CLOSE_NO_STATUS,       HD_CLOSE_ABNORMAL,       HD_CLOSE_INVALID_PAYLOAD, HD_CLOSE_POLICY_VIOLATION,
    HD_CLOSE_MESSAGE_TOO_BIG, HD_CLOSE_INTERNAL_ERROR, HD_CLOSE_APP_NOT_FOUND,  HD_CLOSE_APP_DISABLED,
    HD_CLOSE_APP_OVER_QUOTA,  HD_CLOSE_PATH_NOT_FOUND, HD_CLOSE_BAD_PROTOCOL,   HD_CLOSE_UNAUTHORIZED,
    HD_CLOSE_OVER_CAPACITY,   HD_CLOSE_SHUTTING_DOWN,  HD_CLOSE_PONG_TIMEOUT,
};

/* A slot's label is its code in decimal, written once from close_codes so
 * that the two cannot disagree. */
static char close_labels[HD_SERIES_CLOSE_SLOTS][8];
static pthread_once_t close_labels_once = PTHREAD_ONCE_INIT;

static void close_labels_fill(void)
{
    for (unsigned i = 0; i < HD_SERIES_CLOSE_SLOTS - 1; i++)
        snprintf(close_labels[i], sizeof close_labels[i], "%u", (unsigned)close_codes[i]);
    snprintf(close_labels[HD_SERIES_CLOSE_SLOTS - 1], sizeof close_labels[0], "other");
}

unsigned hd_series_close_slot(unsigned code)
{
    for (unsigned i = 0; i < HD_SERIES_CLOSE_SLOTS - 1; i++)
        if (close_codes[i] == code)
            return i;
    return HD_SERIES_CLOSE_SLOTS - 1;
}

const char *hd_series_close_label(unsigned slot)
{
    pthread_once(&close_labels_once, close_labels_fill);
    return close_labels[slot < HD_SERIES_CLOSE_SLOTS ? slot : HD_SERIES_CLOSE_SLOTS - 1];
}

/* ---- inbound message kinds ---- */

static const char *const ws_kind_labels[HD_WS_KINDS] = {
    "subscribe", "unsubscribe", "signin", "ping", "pong", "client_event", "other",
};

hd_ws_kind hd_series_ws_kind(const char *event)
{
    if (!event)
        return HD_WS_KIND_OTHER;
    if (!strncmp(event, "client-", 7))
        return HD_WS_KIND_CLIENT_EVENT;
    if (strncmp(event, "pusher:", 7) != 0)
        return HD_WS_KIND_OTHER;
    const char *e = event + 7;
    if (!strcmp(e, "subscribe"))
        return HD_WS_KIND_SUBSCRIBE;
    if (!strcmp(e, "unsubscribe"))
        return HD_WS_KIND_UNSUBSCRIBE;
    if (!strcmp(e, "signin"))
        return HD_WS_KIND_SIGNIN;
    if (!strcmp(e, "ping"))
        return HD_WS_KIND_PING;
    if (!strcmp(e, "pong"))
        return HD_WS_KIND_PONG;
    return HD_WS_KIND_OTHER;
}

const char *hd_series_ws_kind_label(hd_ws_kind k)
{
    return k < HD_WS_KINDS ? ws_kind_labels[k] : ws_kind_labels[HD_WS_KIND_OTHER];
}

/* ---- outbound frame kinds ---- */

const char *hd_series_frame_kind_label(hd_frame_kind k)
{
    return k == HD_FRAME_CHANNEL ? "channel" : "direct";
}

/* ---- HTTP routes ---- */

static const char *const route_labels[HD_HTTP_ROUTES] = {
    "events", "batch_events", "channels", "channel", "channel_users", "terminate", "up", "ready", "other",
};

#define MAX_SEGS 5 /* the longest route has five segments */

typedef struct segs {
    const char *s[MAX_SEGS];
    size_t len[MAX_SEGS];
    unsigned n;
} segs;

/* Split the path of target[0, len) (up to a '?') into segments; false
 * for a path that is not absolute or has more segments than any route
 * ("/" is one empty segment, as in http_api.c). */
static bool split(const char *target, size_t len, segs *out)
{
    out->n = 0;
    if (!target || !len || target[0] != '/')
        return false;
    const char *q = memchr(target, '?', len);
    const char *end = q ? q : target + len;
    const char *p = target + 1;
    for (;;) {
        if (out->n == MAX_SEGS)
            return false;
        const char *slash = memchr(p, '/', (size_t)(end - p));
        const char *stop = slash ? slash : end;
        out->s[out->n] = p;
        out->len[out->n++] = (size_t)(stop - p);
        if (!slash)
            return true;
        p = slash + 1;
    }
}

static bool seg_is(const segs *g, unsigned i, const char *word)
{
    return strlen(word) == g->len[i] && !memcmp(g->s[i], word, g->len[i]);
}

/* /apps/{id}/... : the route by its third and later segments. */
static hd_http_route apps_route(const segs *g)
{
    if (g->n == 3 && seg_is(g, 2, "events"))
        return HD_ROUTE_EVENTS;
    if (g->n == 3 && seg_is(g, 2, "batch_events"))
        return HD_ROUTE_BATCH_EVENTS;
    if (seg_is(g, 2, "channels")) {
        if (g->n == 3)
            return HD_ROUTE_CHANNELS;
        if (g->n == 4)
            return HD_ROUTE_CHANNEL;
        if (g->n == 5 && seg_is(g, 4, "users"))
            return HD_ROUTE_CHANNEL_USERS;
    }
    if (g->n == 5 && seg_is(g, 2, "users") && seg_is(g, 4, "terminate_connections"))
        return HD_ROUTE_TERMINATE;
    return HD_ROUTE_OTHER;
}

hd_http_route hd_series_http_route(const char *target, size_t len)
{
    segs g;
    if (!split(target, len, &g))
        return HD_ROUTE_OTHER;
    if (seg_is(&g, 0, "up") && g.n <= 2)
        return HD_ROUTE_UP;
    if (seg_is(&g, 0, "ready") && g.n == 1)
        return HD_ROUTE_READY;
    if (seg_is(&g, 0, "apps") && g.n >= 3)
        return apps_route(&g);
    return HD_ROUTE_OTHER;
}

const char *hd_series_http_route_label(hd_http_route r)
{
    return r < HD_HTTP_ROUTES ? route_labels[r] : route_labels[HD_ROUTE_OTHER];
}

/* ---- HTTP statuses ---- */

static const int statuses[HD_SERIES_STATUS_SLOTS - 1] = {200, 204, 400, 401, 403, 404, 405, 408, 413, 429, 500, 503};
static const char *const status_labels[HD_SERIES_STATUS_SLOTS] = {
    "200", "204", "400", "401", "403", "404", "405", "408", "413", "429", "500", "503", "other",
};

unsigned hd_series_status_slot(int status)
{
    for (unsigned i = 0; i < HD_SERIES_STATUS_SLOTS - 1; i++)
        if (statuses[i] == status)
            return i;
    return HD_SERIES_STATUS_SLOTS - 1;
}

const char *hd_series_status_label(unsigned slot)
{
    return slot < HD_SERIES_STATUS_SLOTS ? status_labels[slot] : status_labels[HD_SERIES_STATUS_SLOTS - 1];
}

/* ---- request duration buckets ---- */

const uint32_t hd_series_http_le_us[HD_SERIES_HTTP_BUCKETS - 1] = {
    100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000,
};

unsigned hd_series_http_bucket(uint64_t us)
{
    unsigned b = 0;
    while (b < HD_SERIES_HTTP_BUCKETS - 1 && us > hd_series_http_le_us[b])
        b++;
    return b;
}
