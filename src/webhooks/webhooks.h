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
 * Apps are named by the server's app slot (hd_app.index): a slot keeps
 * its number for the server's life, whatever its settings become, so the
 * per-channel alternation state survives a reload. The server tells the
 * pool each slot's current settings (hd_webhooks_app_set); reports look
 * the slot's current endpoints up at once.
 *
 * THREADING
 * ---------
 * hd_webhooks_create/destroy/app_set: main thread. Every report function:
 * any thread (io threads, cleanup workers); a report never waits for I/O,
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
    bool (*channel_occupied)(void *ctx, unsigned app, const char *channel);
    bool (*member_present)(void *ctx, unsigned app, const char *channel, const char *user_id);
} hd_webhooks_probe;

/* Create the pool for app slots 0 .. max_apps-1 (at least cfg->n_apps):
 * slot i starts with cfg->apps[i]'s endpoints, one per `webhooks` entry.
 * libcurl and the webhooks.sender_threads sender threads start with the
 * first endpoint (at once, or when a reload adds one); if they cannot,
 * that is logged and webhooks stay off. cfg (its global webhooks.* keys
 * and shutdown_grace_period) is borrowed and must outlive the pool; probe
 * is copied, and its callbacks are called from the sender threads until
 * hd_webhooks_destroy() returns. */
hd_webhooks *hd_webhooks_create(const hd_config *cfg, const hd_webhooks_probe *probe, size_t max_apps);
/* Slot app's settings are now *app (a reload): its endpoints become one
 * per entry of app->webhooks. An endpoint is identified by its URL (the
 * n-th entry with a URL takes the n-th endpoint made for it): it keeps its
 * queue, breaker, connection and counters, and its filter, event types,
 * headers, key and secret become the new ones (queued events are signed
 * with the new secret when sent). An endpoint whose URL is gone takes no
 * new events and delivers what it holds. app must outlive the pool. Main
 * thread; NULL pool or app >= max_apps: no-op. */
void hd_webhooks_app_set(hd_webhooks *wh, unsigned app, const hd_app_config *cfg);
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
bool hd_webhooks_wanted(const hd_webhooks *wh, unsigned app, const char *event, const char *channel);

/* app: the server's app slot (hd_app.index). */
void hd_webhooks_channel_occupied(hd_webhooks *wh, unsigned app, const char *channel);
void hd_webhooks_channel_vacated(hd_webhooks *wh, unsigned app, const char *channel);
void hd_webhooks_member_added(hd_webhooks *wh, unsigned app, const char *channel, const char *user_id);
void hd_webhooks_member_removed(hd_webhooks *wh, unsigned app, const char *channel, const char *user_id);
/* data_json: the event's data as JSON text (an object stays an object);
 * user_id: presence channels only, else NULL. */
void hd_webhooks_client_event(hd_webhooks *wh, unsigned app, const char *channel, const char *event,
                              const char *data_json, const char *socket_id, const char *user_id);
void hd_webhooks_cache_miss(hd_webhooks *wh, unsigned app, const char *channel);
/* A transition the cluster decided, held and confirmed (Redis adapter):
 * sent as is. event: channel_occupied, channel_vacated, member_added,
 * member_removed (user_id required) or cache_miss. */
void hd_webhooks_decided(hd_webhooks *wh, unsigned app, const char *event, const char *channel, const char *user_id);
void hd_webhooks_subscription_count(hd_webhooks *wh, unsigned app, const char *channel, uint32_t count);

#endif /* HD_WEBHOOKS_H */
