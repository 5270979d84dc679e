/* http_internal.h - what the files of the http module share: the request
 * context handed to route handlers, the reply helpers and the handlers.
 * Not for other modules; their contract is http_api.h.
 *
 * DESIGN
 * ------
 * http_api.c routes, looks up and authenticates the app, then calls one
 * handler with an hd_http_ctx. A handler fills ctx->res completely: on
 * every path it sets the status and the whole JSON body (the reply
 * helpers below reset the body first, so nothing half-written leaks out).
 *
 * THREADING
 * ---------
 * Same as http_api.h: called on an io thread, no state of their own.
 */
#ifndef HD_HTTP_INTERNAL_H
#define HD_HTTP_INTERNAL_H

#include <stdatomic.h>
#include <stdint.h>

#include "http_api.h"

typedef struct hd_http_ctx {
    hd_server *srv;
    hd_app *app;              /* the app named in the path; NULL for /up, /ready */
    const hd_app_config *cfg; /* hd_app_cfg(app) read once at admission (a reload may swap it), or NULL */
    const hd_http_request *req;
    const hd_params *params;  /* req->params, never NULL (an empty set if the caller gave none) */
    hd_http_response *res;
    const char *arg;          /* percent-decoded {channel} / {user_id} segment; NULL when the
                               * route has none or its %-escapes are malformed */
} hd_http_ctx;

/* Flags of an `info` list ("user_count,subscription_count,cache"). */
#define HD_HTTP_INFO_USER_COUNT 0x1u
#define HD_HTTP_INFO_SUBSCRIPTION_COUNT 0x2u
#define HD_HTTP_INFO_CACHE 0x4u

/* Parse a comma-separated info list (spaces around items ignored, unknown
 * items ignored). NULL gives 0. */
unsigned hd_http__parse_info(const char *s);

/* Reset res->body and make the reply status + the JSON text json. */
void hd_http__reply(hd_http_response *res, int status, const char *json);
/* Reset res->body and make the reply status + {"error":"<message>"}; the
 * formatted message is JSON-escaped, so it may contain user strings. */
void hd_http__error(hd_http_response *res, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Reset res->body for a handler that writes a 200 body itself. */
void hd_http__begin(hd_http_response *res, int status);

/* http_events.c: POST /apps/{id}/events and /apps/{id}/batch_events. */
void hd_http__events(hd_http_ctx *c);
void hd_http__batch_events(hd_http_ctx *c);

/* http_channels.c: channel queries and terminate_connections. */
void hd_http__channels(hd_http_ctx *c);
void hd_http__channel(hd_http_ctx *c);
void hd_http__channel_users(hd_http_ctx *c);
void hd_http__terminate(hd_http_ctx *c);

/* ---- http_limits.c: the per-app request rate limit (max_http_requests_per_second),
 * a token bucket checked once per authenticated request before its handler
 * runs. Any thread: the bucket is one atomic word in hd_app, lock-free. ---- */

/* Take one request from the bucket whose state is *tat_ns (a zeroed word is
 * a full bucket), refilled at rate per second and holding at most burst
 * (>= 1). now_ns is a monotonic clock. Returns 0 when the request is
 * admitted, else how many ns until one would be (nothing is taken then).
 * rate 0 admits everything. */
uint64_t hd_http__bucket_take(_Atomic uint64_t *tat_ns, uint32_t rate, uint32_t burst, uint64_t now_ns);

/* A wait as the Retry-After value: whole seconds rounded up, at least 1. */
unsigned hd_http__retry_after_s(uint64_t wait_ns);

/* Charge one request to c->app. True when it may go on; false after
 * replying 429 {"error":"Too many requests ..."} with res->retry_after_s
 * set. Call once per request, after authentication. */
bool hd_http__rate_admit(hd_http_ctx *c);

#endif /* HD_HTTP_INTERNAL_H */
