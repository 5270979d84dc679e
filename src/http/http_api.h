/* http_api.h - the Pusher HTTP API (PUSHER_PROTOCOL.md §9) and health routes.
 *
 * DESIGN
 * ------
 * The connection layer collects a whole request (method, path, decoded
 * query parameters, body) and calls hd_http_api_handle(), which validates,
 * authenticates (§9.1), acts through the adapter functions of
 * adapter/adapter.h and fills a JSON response. It knows nothing of lws, so
 * it is testable without sockets.
 *
 * THREADING
 * ---------
 * Called on an io thread; it only uses thread-safe server functions.
 */
#ifndef HD_HTTP_API_H
#define HD_HTTP_API_H

#include <stdbool.h>
#include <stddef.h>

#include "adapter/adapter.h"
#include "common/common.h"
#include "protocol/protocol.h"

typedef struct hd_http_request {
    const char *method;      /* "GET", "POST", ... */
    const char *path;        /* "/apps/3/events" (no query string) */
    const hd_params *params; /* decoded query parameters */
    const char *body;        /* NUL-terminated; "" when none */
    size_t body_len;
    bool head_admitted;      /* hd_http_api_admit() passed it: only the body's MD5 is left to check */
} hd_http_request;

typedef struct hd_http_response {
    int status;   /* 200, 400, ... */
    hd_buf body;  /* JSON text; errors are {"error":"..."} */
    unsigned retry_after_s; /* > 0: send "Retry-After: <n>" (429 from http_limits.c); 0 = no header */
    /* Set by a handler whose answer is the cluster's (a cluster adapter
     * answers later): the caller asks the adapter for read_what / read_arg
     * of read_app and, with the reply, calls hd_http_api_finish(). */
    bool pending;
    hd_app *read_app;
    enum hd_ad_read read_what;
    char *read_arg;    /* heap; freed by hd_http_api_finish or hd_http_response_deinit */
    unsigned read_info; /* the request's info flags, for finish */
    void (*finish)(struct hd_http_response *res, const hd_ad_reply *r);
} hd_http_response;

/* Fill a pending response from the adapter's reply (status and body). */
void hd_http_api_finish(hd_http_response *res, const hd_ad_reply *r);
/* Free what a response holds (its body, a pending read's argument). */
void hd_http_response_deinit(hd_http_response *res);

/* Route and answer one request. res->body must be initialised by the caller. */
void hd_http_api_handle(hd_server *srv, const hd_http_request *req, hd_http_response *res);

/* Everything that can be decided before a body is read: route, app,
 * authentication (the signature covers body_md5, so a body that does not
 * match it is refused later, in hd_http_api_handle with head_admitted
 * set). body_len is the declared Content-Length. Returns true when the
 * body may be read; otherwise res holds the answer (404, 405, 401, ...).
 * req->body is not looked at. */
bool hd_http_api_admit(hd_server *srv, const hd_http_request *req, size_t body_len, hd_http_response *res);

/* ---- request heads (http_parse.c) ---- */

typedef struct hd_http_head_limits {
    size_t max_head;    /* whole head, request line to blank line: 431 past it */
    size_t max_target;  /* request target (path and query): 414 past it */
    unsigned max_headers; /* header lines: 431 past it */
} hd_http_head_limits;

typedef struct hd_http_head {
    char method[8];
    size_t method_len;
    size_t target_off, target_len; /* the request target, inside the parsed buffer */
    int http_minor;                 /* HTTP/1.0 or HTTP/1.1 */
    long long content_length;       /* -1 when absent */
    unsigned n_headers;
    bool has_transfer_encoding, chunked;
    bool conn_close, conn_keep_alive, conn_upgrade;
    bool upgrade_websocket; /* Upgrade: websocket */
    bool expect_continue;   /* Expect: 100-continue */
    bool keep_alive;        /* the connection stays open after the answer */
    size_t origin_off, origin_len;   /* Origin, inside the buffer (len 0: none) */
    size_t acrh_off, acrh_len;       /* Access-Control-Request-Headers (CORS preflight) */
    size_t head_len;
} hd_http_head;

/* Parse the request head at the start of buf[0, len). Returns the head's
 * length (> 0) when it is complete, 0 when more bytes are needed, or a
 * negated HTTP status to answer: -400 malformed (bad request line, header
 * shape, bare CR, folding, bad or conflicting Content-Length, both
 * Content-Length and Transfer-Encoding), -411 chunked body, -501 another
 * transfer coding, -414 target over lim->max_target, -431 head over
 * lim->max_head or more than lim->max_headers headers, -505 not HTTP/1.x.
 * Bytes after the head (a body, a pipelined request) are not looked at. */
int hd_http_parse_head(const char *buf, size_t len, const hd_http_head_limits *lim, hd_http_head *h);

#endif /* HD_HTTP_API_H */
