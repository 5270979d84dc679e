/* metrics_internal.h - the pure HTTP pieces of the metrics port, shared by
 * metrics.c and the unit tests (suite "metrics").
 *
 * THREADING: pure functions; any thread.
 */
#ifndef HD_METRICS_INTERNAL_H
#define HD_METRICS_INTERNAL_H

#include <stddef.h>

#include "common/common.h"

/* Largest request head (request line + headers) the port reads; a longer
 * one is answered 431. Scrapers send a few hundred bytes. */
#define HD_METRICS_HEAD_MAX 4096

typedef enum hd_metrics_head {
    HD_METRICS_HEAD_PARTIAL,  /* no blank line yet, room left */
    HD_METRICS_HEAD_DONE,     /* the blank line that ends the head is in */
    HD_METRICS_HEAD_TOO_LARGE /* cap bytes and still no blank line */
} hd_metrics_head;

/* Where buf[0..len) stands; buf holds at most cap bytes. Bytes before from
 * were scanned already (pass the previous len), so a head trickled in one
 * byte at a time costs O(len) in all, not O(len^2). */
hd_metrics_head hd_metrics_head_state(const char *buf, size_t len, size_t from, size_t cap);

typedef enum hd_metrics_route {
    HD_METRICS_ROUTE_METRICS,   /* GET /metrics */
    HD_METRICS_ROUTE_READY,     /* GET /ready */
    HD_METRICS_ROUTE_UP,        /* GET /up, GET /up/... (as on the main port) */
    HD_METRICS_ROUTE_NOT_FOUND, /* any other method or path */
    HD_METRICS_ROUTE_BAD        /* not "METHOD target HTTP/x" */
} hd_metrics_route;

/* The page a complete head (its request line) asks for; the query string
 * is ignored. */
hd_metrics_route hd_metrics_route_of(const char *head, size_t len);

/* Append an HTTP/1.0 answer with Content-Length and Connection: close. */
void hd_metrics_response(hd_buf *out, int status, const char *type, const char *body, size_t len);

/* The same with a {"error":message} JSON body. */
void hd_metrics_error_response(hd_buf *out, int status, const char *message);

#endif /* HD_METRICS_INTERNAL_H */
