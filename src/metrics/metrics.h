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

/* Helpers for renderers: one metric family header, and one sample. */
void hd_metrics_family(hd_buf *out, const char *name, const char *type, const char *help);
void hd_metrics_sample(hd_buf *out, const char *name, const char *labels, double value);

#endif /* HD_METRICS_H */
