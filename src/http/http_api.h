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
} hd_http_request;

typedef struct hd_http_response {
    int status;   /* 200, 400, ... */
    hd_buf body;  /* JSON text; errors are {"error":"..."} */
} hd_http_response;

/* Route and answer one request. res->body must be initialised by the caller. */
void hd_http_api_handle(hd_server *srv, const hd_http_request *req, hd_http_response *res);

#endif /* HD_HTTP_API_H */
