/* webhooks.h - the seam through which the server reports webhook events
 * (PUSHER_PROTOCOL.md §10): channel_occupied, channel_vacated,
 * member_added, member_removed, client_event, cache_miss,
 * subscription_count.
 *
 * DESIGN
 * ------
 * Callers report what happened; this module decides what each configured
 * endpoint of the app receives (event_types, channel filters), batches,
 * signs and delivers it off the io threads. Reporting never blocks and
 * never fails from the caller's point of view.
 *
 * THREADING
 * ---------
 * hd_webhooks_create/destroy: main thread. Every report function: any
 * thread (io threads, cleanup workers); a report never waits for I/O,
 * only for a short mutex (an endpoint queue, a state shard). A NULL pool
 * ignores reports. The pool's own threads are described in
 * webhooks_internal.h.
 */
#ifndef HD_WEBHOOKS_H
#define HD_WEBHOOKS_H

#include <stdint.h>

#include "common/common.h"
#include "config/config.h"

typedef struct hd_webhooks hd_webhooks;

/* How the pool asks the server, at send time, whether a delayed
 * channel_vacated / member_removed still holds: each call takes the
 * channel's lock briefly (through the adapter, so cluster-wide later).
 * Called from the pool's threads. */
typedef struct hd_webhooks_probe {
    void *ctx;
    bool (*channel_occupied)(void *ctx, const hd_app_config *app, const char *channel);
    bool (*member_present)(void *ctx, const hd_app_config *app, const char *channel, const char *user_id);
} hd_webhooks_probe;

/* Start the pool: one endpoint per entry of every app's `webhooks`, and
 * webhooks.sender_threads sender threads. Returns NULL when no app has a
 * webhook configured, or (logged) when libcurl or a thread cannot start;
 * a NULL pool ignores every report. cfg is borrowed and must outlive the
 * pool; probe is copied, and its callbacks are called from the sender
 * threads until hd_webhooks_destroy() returns. */
hd_webhooks *hd_webhooks_create(const hd_config *cfg, const hd_webhooks_probe *probe);
/* Stop taking reports; send every held-back channel_vacated /
 * member_removed the probe still confirms, and deliver what is queued for
 * at most shutdown_grace_period seconds; drop (count, log) the rest, join
 * the threads and free everything. Call with no report running or to
 * come. NULL is a no-op. */
void hd_webhooks_destroy(hd_webhooks *wh);

/* Append the pool's Prometheus text (families herald_webhook_*, listed in
 * README.md) to out. NULL appends nothing. Any thread, lock-free. */
void hd_webhooks_metrics(const hd_webhooks *wh, hd_buf *out);

/* True when some endpoint of app wants `event` for `channel`: lets callers
 * skip building payloads nobody receives. */
bool hd_webhooks_wanted(const hd_webhooks *wh, const hd_app_config *app, const char *event, const char *channel);

void hd_webhooks_channel_occupied(hd_webhooks *wh, const hd_app_config *app, const char *channel);
void hd_webhooks_channel_vacated(hd_webhooks *wh, const hd_app_config *app, const char *channel);
void hd_webhooks_member_added(hd_webhooks *wh, const hd_app_config *app, const char *channel, const char *user_id);
void hd_webhooks_member_removed(hd_webhooks *wh, const hd_app_config *app, const char *channel,
                                const char *user_id);
/* data_json: the event's data as JSON text (an object stays an object);
 * user_id: presence channels only, else NULL. */
void hd_webhooks_client_event(hd_webhooks *wh, const hd_app_config *app, const char *channel, const char *event,
                              const char *data_json, const char *socket_id, const char *user_id);
void hd_webhooks_cache_miss(hd_webhooks *wh, const hd_app_config *app, const char *channel);
void hd_webhooks_subscription_count(hd_webhooks *wh, const hd_app_config *app, const char *channel,
                                    uint32_t count);

#endif /* HD_WEBHOOKS_H */
