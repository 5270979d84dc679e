/* http_api.c - routing, app lookup and authentication for the Pusher HTTP
 * API (PUSHER_PROTOCOL.md §9, §9.1) and the health routes /up, /up/{id},
 * /ready.
 *
 * DESIGN
 * ------
 * hd_http_api_handle() splits the path on '/' and matches the segments
 * against a route table; a row names the method, the segments ("*" is a
 * parameter) and the handler. A path that matches no row's segments is
 * 404; one that matches segments but not the method is 405.
 *
 * For routes with an app id the segment is percent-decoded and looked up
 * (unknown: 404). /apps/ routes are then authenticated with
 * hd_http_auth_verify() against the path exactly as received (its status
 * and message are returned as they are), and a disabled app is refused
 * with 403, before the handler runs. A {channel} or {user_id} segment is
 * percent-decoded for the handler (#server-to-user-1 arrives as
 * %23server-to-user-1); only the signature sees the raw path.
 *
 * Handlers live in http_events.c (triggers) and http_channels.c (queries,
 * terminate_connections). Every reply is JSON; errors are
 * {"error":"..."} with the message escaped by hd_buf_json_string().
 *
 * THREADING
 * ---------
 * Runs on the io thread that received the request. No state of its own;
 * it only calls the thread-safe hd_server_* functions of adapter.h.
 */
#include "http_internal.h"
#include "http_internal.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define MAX_SEGMENTS 5
#define AUTH_MAX_SKEW_S 600
#define AUTH_ERR_MAX 2048

enum {
    ROUTE_APP = 0x1,  /* the first "*" is an app id that must exist */
    ROUTE_AUTH = 0x2, /* §9.1 authentication, then the enabled check */
};

typedef struct route {
    const char *method;
    const char *segments[MAX_SEGMENTS]; /* shorter routes end with NULL */
    unsigned flags;
    void (*fn)(hd_http_ctx *c);
} route;

typedef struct path_parts {
    const char *seg[MAX_SEGMENTS];
    size_t len[MAX_SEGMENTS];
    size_t n;
} path_parts;

static void route_up(hd_http_ctx *c);
static void route_ready(hd_http_ctx *c);

static const route routes[] = {
    {"GET", {""}, 0, route_up}, /* GET /: load balancers and soketi users probe the root */
    {"GET", {"up"}, 0, route_up},
    {"GET", {"up", "*"}, ROUTE_APP, route_up},
    {"GET", {"ready"}, 0, route_ready},
    {"POST", {"apps", "*", "events"}, ROUTE_APP | ROUTE_AUTH, hd_http__events},
    {"POST", {"apps", "*", "batch_events"}, ROUTE_APP | ROUTE_AUTH, hd_http__batch_events},
    {"GET", {"apps", "*", "channels"}, ROUTE_APP | ROUTE_AUTH, hd_http__channels},
    {"GET", {"apps", "*", "channels", "*"}, ROUTE_APP | ROUTE_AUTH, hd_http__channel},
    {"GET", {"apps", "*", "channels", "*", "users"}, ROUTE_APP | ROUTE_AUTH, hd_http__channel_users},
    {"POST", {"apps", "*", "users", "*", "terminate_connections"}, ROUTE_APP | ROUTE_AUTH, hd_http__terminate},
};

/* ---- replies ---- */

static void body_reset(hd_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void hd_http__begin(hd_http_response *res, int status)
{
    res->status = status;
    res->retry_after_s = 0;
    body_reset(&res->body);
}

void hd_http_api_finish(hd_http_response *res, const hd_ad_reply *r)
{
    res->pending = false;
    if (res->finish)
        res->finish(res, r);
    hd_free(res->read_arg);
    res->read_arg = NULL;
}

void hd_http_response_deinit(hd_http_response *res)
{
    hd_buf_deinit(&res->body);
    hd_free(res->read_arg);
    res->read_arg = NULL;
}

void hd_http__reply(hd_http_response *res, int status, const char *json)
{
    hd_http__begin(res, status);
    hd_buf_puts(&res->body, json);
}

void hd_http__error(hd_http_response *res, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *msg = hd_malloc(n > 0 ? (size_t)n + 1 : 1);
    msg[0] = '\0';
    if (n > 0) {
        va_start(ap, fmt);
        vsnprintf(msg, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    hd_http__begin(res, status);
    hd_buf_puts(&res->body, "{\"error\":");
    hd_buf_json_string(&res->body, msg, strlen(msg));
    hd_buf_puts(&res->body, "}");
    hd_free(msg);
}

/* ---- info lists ---- */

static bool token_is(const char *s, size_t len, const char *word)
{
    return strlen(word) == len && memcmp(s, word, len) == 0;
}

unsigned hd_http__parse_info(const char *s)
{
    unsigned flags = 0;
    while (s && *s) {
        while (*s == ' ')
            s++;
        size_t len = strcspn(s, ",");
        size_t tlen = len;
        while (tlen > 0 && s[tlen - 1] == ' ')
            tlen--;
        if (token_is(s, tlen, "user_count"))
            flags |= HD_HTTP_INFO_USER_COUNT;
        else if (token_is(s, tlen, "subscription_count"))
            flags |= HD_HTTP_INFO_SUBSCRIPTION_COUNT;
        else if (token_is(s, tlen, "cache"))
            flags |= HD_HTTP_INFO_CACHE;
        s += len;
        if (*s == ',')
            s++;
    }
    return flags;
}

/* ---- paths ---- */

static int hex_value(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Percent-decode one path segment ('+' stays '+'). Returns a heap string
 * the caller frees, or NULL for a truncated or non-hex escape or %00. */
static char *segment_decode(const char *s, size_t len)
{
    char *out = hd_malloc(len + 1);
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '%') {
            out[o++] = s[i];
            continue;
        }
        int hi = i + 2 < len ? hex_value(s[i + 1]) : -1;
        int lo = hi >= 0 ? hex_value(s[i + 2]) : -1;
        if (lo < 0 || (hi | lo) == 0) {
            hd_free(out);
            return NULL;
        }
        out[o++] = (char)(hi * 16 + lo);
        i += 2;
    }
    out[o] = '\0';
    return out;
}

/* Split "/a/b/c" into segments; false when the path does not start with
 * '/' or has more than MAX_SEGMENTS segments. "/" is one empty segment. */
static bool path_split(const char *path, path_parts *pp)
{
    pp->n = 0;
    if (!path || path[0] != '/')
        return false;
    const char *p = path + 1;
    for (;;) {
        if (pp->n == MAX_SEGMENTS)
            return false;
        size_t len = strcspn(p, "/");
        pp->seg[pp->n] = p;
        pp->len[pp->n] = len;
        pp->n++;
        if (p[len] == '\0')
            return true;
        p += len + 1;
    }
}

static bool route_matches(const route *r, const path_parts *pp)
{
    size_t i = 0;
    for (; i < MAX_SEGMENTS && r->segments[i]; i++) {
        if (i >= pp->n)
            return false;
        if (strcmp(r->segments[i], "*") != 0 && !token_is(pp->seg[i], pp->len[i], r->segments[i]))
            return false;
    }
    return i == pp->n;
}

/* The route for the request, or NULL with *status 404 or 405. */
static const route *route_find(const hd_http_request *req, const path_parts *pp, int *status)
{
    *status = 404;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (!route_matches(&routes[i], pp))
            continue;
        if (req->method && strcmp(req->method, routes[i].method) == 0)
            return &routes[i];
        *status = 405;
    }
    return NULL;
}

/* Decode the "*" segments of r into caps (at most two); a segment with a
 * malformed escape gives NULL. */
static void captures_decode(const route *r, const path_parts *pp, char *caps[2])
{
    size_t n = 0;
    for (size_t i = 0; i < MAX_SEGMENTS && r->segments[i] && n < 2; i++) {
        if (strcmp(r->segments[i], "*") != 0)
            continue;
        caps[n++] = segment_decode(pp->seg[i], pp->len[i]);
    }
}

/* ---- app lookup and authentication ---- */

/* mode: HD_AUTH_HEAD when admitting a head (body_len declared), else
 * HD_AUTH_FULL, or HD_AUTH_BODY for a head admitted before. */
static bool authenticate(hd_http_ctx *c, int mode, size_t body_len)
{
    char err[AUTH_ERR_MAX];
    hd_http_auth_request a = {
        .method = c->req->method,
        .path = c->req->path,
        .params = c->params,
        .body = c->req->body,
        .body_len = body_len,
        .app_key = c->cfg->key,
        .app_secret = c->cfg->secret,
        .now_s = (int64_t)time(NULL),
        .max_skew_s = AUTH_MAX_SKEW_S,
        .mode = mode,
    };
    int status = hd_http_auth_verify(&a, err, sizeof err);
    if (status == 0)
        return true;
    if (status < 400 || status > 599)
        status = 401;
    hd_http__error(c->res, status, "%s", err[0] ? err : "Authentication failed");
    return false;
}

/* Look up the app and run the route's checks; false when a reply is made. */
static bool admit(hd_http_ctx *c, const route *r, const char *app_id, int mode, size_t body_len)
{
    if (!(r->flags & ROUTE_APP))
        return true;
    c->app = app_id ? hd_server_app_by_id(c->srv, app_id) : NULL;
    if (!c->app) {
        hd_http__error(c->res, 404, "Unknown app");
        return false;
    }
    c->cfg = hd_app_cfg(c->app); /* one version for the whole request: key, secret and limits agree */
    if (!(r->flags & ROUTE_AUTH))
        return true;
    if (!authenticate(c, mode, body_len))
        return false;
    if (mode != HD_AUTH_BODY && !hd_http__rate_admit(c)) /* charged once: at the head, or whole */
        return false;
    if (!c->cfg->enabled) {
        hd_http__error(c->res, 403, "App is disabled");
        return false;
    }
    return true;
}

static void route_up(hd_http_ctx *c)
{
    hd_http__reply(c->res, 200, "{\"ok\":true}");
}

static void route_ready(hd_http_ctx *c)
{
    hd_buf why;
    hd_buf_init(&why);
    if (hd_server_ready(c->srv, &why))
        hd_http__reply(c->res, 200, "{\"ok\":true}");
    else
        hd_http__error(c->res, 503, "%s", why.len ? why.data : "Not ready");
    hd_buf_deinit(&why);
}

/* ---- entry point ---- */

/* Route req and set up c (caps receives the decoded "*" segments, which
 * the caller frees); NULL with res filled when no route matches. */
static const route *prepare(hd_server *srv, const hd_http_request *req, hd_http_response *res, char *caps[2],
                            hd_http_ctx *c)
{
    static const hd_params no_params = {NULL, 0, 0};
    path_parts pp;
    int status = 404;
    const route *r = path_split(req->path, &pp) ? route_find(req, &pp, &status) : NULL;
    if (!r) {
        hd_http__error(res, status, status == 405 ? "Method not allowed" : "Not found");
        return NULL;
    }
    captures_decode(r, &pp, caps);
    *c = (hd_http_ctx){
        .srv = srv,
        .req = req,
        .params = req->params ? req->params : &no_params,
        .res = res,
        .arg = (r->flags & ROUTE_APP) ? caps[1] : caps[0],
    };
    return r;
}

void hd_http_api_handle(hd_server *srv, const hd_http_request *req, hd_http_response *res)
{
    char *caps[2] = {NULL, NULL};
    hd_http_ctx c;
    const route *r = prepare(srv, req, res, caps, &c);
    if (!r)
        return;
    size_t body_len = req->body ? req->body_len : 0;
    if (admit(&c, r, caps[0], req->head_admitted ? HD_AUTH_BODY : HD_AUTH_FULL, body_len))
        r->fn(&c);
    hd_free(caps[0]);
    hd_free(caps[1]);
}

bool hd_http_api_admit(hd_server *srv, const hd_http_request *req, size_t body_len, hd_http_response *res)
{
    char *caps[2] = {NULL, NULL};
    hd_http_ctx c;
    const route *r = prepare(srv, req, res, caps, &c);
    bool ok = r && admit(&c, r, caps[0], HD_AUTH_HEAD, body_len);
    hd_free(caps[0]);
    hd_free(caps[1]);
    return ok;
}
