/* metrics.h - the Prometheus text endpoint on metrics.host:metrics.port.
 *
 * DESIGN
 * ------
 * One small thread with its own listening socket answers GET /metrics with
 * whatever the render callback appends (the server's counters, the cleanup
 * pool's, ...), and GET /ready / /up like the main port. It never touches
 * lws: everything it reads is atomics or lock-protected snapshots. It
 * serves many connections at once, each with a hard deadline for its
 * request head, so a slow or idle client cannot block a scrape (metrics.c).
 * The listening socket does not share its port: create fails (HD_EIO, with
 * a log line naming the port) when another process listens there.
 *
 * THREADING
 * ---------
 * create/destroy: main thread. render runs on the metrics thread.
 */
#ifndef HD_METRICS_H
#define HD_METRICS_H

#include <stdbool.h>

#include "common/common.h"

typedef struct hd_metrics hd_metrics;

/* Append the exposition text to out. */
typedef void (*hd_metrics_render_fn)(void *ctx, hd_buf *out);
/* Append why not ready; return readiness. */
typedef bool (*hd_metrics_ready_fn)(void *ctx, hd_buf *why);

/* Listen on host:port and serve. Returns 0 or HD_EIO (cannot listen) / HD_ETHREAD. */
int hd_metrics_create(hd_metrics **out, const char *host, uint16_t port, hd_metrics_render_fn render,
                      hd_metrics_ready_fn ready, void *ctx);
/* Stop the thread and close the socket. NULL is a no-op. */
void hd_metrics_destroy(hd_metrics *m);

/* The Prometheus text format (0.0.4, prom.c) for every renderer (the server's,
 * the cleanup pool's, the webhook pool's), so that all of them write it
 * the same way:
 * hd_metrics_family: the "# HELP name help" and "# TYPE name type" lines.
 * hd_metrics_sample: "name{labels} value" ("name value" when labels is
 *   NULL or ""), the value as %.17g (integers below 2^53 print exactly).
 * hd_metrics_label: name="value" with value escaped (\\, \", \n), to
 *   build a label set from strings a user configured (app ids, URLs). */
void hd_metrics_family(hd_buf *out, const char *name, const char *type, const char *help);
void hd_metrics_sample(hd_buf *out, const char *name, const char *labels, double value);
void hd_metrics_label(hd_buf *out, const char *name, const char *value);
/* One label set's samples of a histogram family: name_bucket{labels,le=...}
 * with the running total of counts[0..n) (per-bucket, not cumulative; the
 * last one is +Inf, le[] holds the n - 1 finite bounds, printed as %g),
 * then name_sum (sum, with sum_decimals decimals) and name_count. _count is
 * the +Inf bucket as printed, so the two agree even when the counters
 * move while a scrape reads them. labels may be NULL or "". */
void hd_metrics_histogram(hd_buf *out, const char *name, const char *labels, const uint64_t *counts,
                          const double *le, unsigned n, double sum, int sum_decimals);

#endif /* HD_METRICS_H */
