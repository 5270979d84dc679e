/* adapter.h - the connection layer (libwebsockets, WebSocket + HTTP API on
 * one port) and the scaling-adapter seam through which all cluster-visible
 * state and every publish go.
 *
 * DESIGN
 * ------
 * N io threads each run their own lws_context, all listening on the same
 * port (SO_REUSEPORT). A thread owns every struct lws it accepted, their
 * sessions and its local index channel -> local subscriptions.
 *
 * Publishing: the event is serialised once into a frame; for every io
 * thread with local subscribers (the registry keeps per-thread counts) a
 * reference-counted copy is pushed onto that thread's inbox and the thread
 * is woken with lws_cancel_service(); it fans the frame out to its local
 * subscribers by reference (no per-recipient copy).
 *
 * Cluster-visible operations (publish, terminate a user, channel counts
 * and member lists) go through hd_adapter_ops; the local adapter serves a
 * single node. A Redis adapter plugs in behind the same table.
 *
 * THREADING
 * ---------
 * The lws service thread owns every struct lws and all per-session data.
 * Other threads may only push to inboxes (which call lws_cancel_service()).
 * Everything declared here is safe from any thread unless it says so.
 */
#ifndef HD_ADAPTER_H
#define HD_ADAPTER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "channels/channels.h"
#include "common/common.h"
#include "config/config.h"

typedef struct hd_server hd_server;

/* Runtime state of one app, matched by id across reloads (reload.c): the
 * slot, its registry and counters live as long as the server; a reload
 * swaps only its settings. */
typedef struct hd_app {
    /* Current settings: a reload publishes a new pointer (release); read it
     * with hd_app_cfg() once per operation, so that fields read together
     * (key and secret) come from one version. Every version stays valid
     * until the server is destroyed. */
    _Atomic(const hd_app_config *) cfg;
    unsigned index;          /* slot in the server's app array; never changes */
    hd_registry *registry;
    atomic_bool removed;     /* gone from the config file: lookups skip it (reload.c) */
    atomic_uint connections; /* open WebSocket connections, all io threads */
    _Atomic uint64_t http_tat_ns; /* HTTP API rate limit (http/http_limits.c); zeroed = full bucket */
} hd_app;

static inline const hd_app_config *hd_app_cfg(const hd_app *app)
{
    return atomic_load_explicit(&app->cfg, memory_order_acquire);
}

/* Room for apps added by reloads: the app array is allocated once with
 * the configured apps plus this many slots, so it never moves under the
 * threads reading it; a reload that needs more is refused (logged). A
 * removed app keeps its slot (it comes back there if re-added). */
#define HD_APP_HEADROOM 256

/* ---- server lifetime (main thread) ---- */

/* Build apps, registries, io threads and lws contexts; listen. Returns 0 or
 * HD_EIO (could not listen) with a log line saying why. cfg must outlive srv. */
int hd_server_create(hd_server **out, const hd_config *cfg);
/* Start the io threads (and the pools); returns at once. */
int hd_server_start(hd_server *srv);
/* Graceful stop: every client is closed with 4200, then, within the
 * shutdown grace period, the io threads exit and the cleanup queues drain.
 * Returns when every thread has been joined. */
void hd_server_shutdown(hd_server *srv);
/* Free everything; the server must be shut down (or never started). */
void hd_server_destroy(hd_server *srv);

const hd_config *hd_server_config(const hd_server *srv);
/* True when every io thread (and cleanup worker) is serving; otherwise
 * false with a short reason appended to why (may be NULL). */
bool hd_server_ready(hd_server *srv, hd_buf *why);
/* The app with this id / key, skipping removed ones; NULL when none. */
hd_app *hd_server_app_by_id(hd_server *srv, const char *id);
hd_app *hd_server_app_by_key(hd_server *srv, const char *key);

/* ---- reload (reload.c; main thread, while the server runs) ---- */

/* Apply a freshly loaded configuration's app list (SIGHUP): apps matched
 * by id keep their registry, channels, connections and counters and take
 * the new settings; new apps become usable at once; removed apps refuse
 * new connections (4001) and HTTP API requests (404), and their open
 * connections are closed with pusher:error + close 4001. Every other key
 * keeps its start-up value: each one that differs is logged as needing a
 * restart. Takes ownership of cfg (heap-allocated, loaded by
 * hd_config_load_file): it is kept until hd_server_destroy, or freed at
 * once when the reload is refused. Returns 0, or HD_EINVAL (logged) when
 * the new apps would not fit in the app array, with nothing changed. */
int hd_server_reload(hd_server *srv, hd_config *cfg);
/* SIGHUP (main thread): reload the TLS certificate and key from the same
 * files (ssl.*); a failure keeps the previous ones (logged). No-op without TLS. */
void hd_server_reload_tls(hd_server *srv);

/* ---- operations (any thread) ---- */

/* Deliver event `name` with string data on channel to every subscriber
 * (every socket signed in as the user, for #server-to-user-{id}), except
 * the connection except_socket_id (NULL = none). Updates the cache of
 * cache channels. Arguments are validated by the caller. */
void hd_server_publish(hd_server *srv, hd_app *app, const char *channel, const char *name, const char *data,
                       size_t data_len, const char *except_socket_id);

/* Deliver an already serialised frame on channel (same routing as above,
 * no cache update). Used for presence, client and internal events. */
void hd_server_publish_frame(hd_server *srv, hd_app *app, const char *channel, const char *frame, size_t len,
                             const char *except_socket_id);

/* Close every connection signed in as user_id with pusher:error + close 4009. */
void hd_server_terminate_user(hd_server *srv, hd_app *app, const char *user_id);

/* Channel counts across the cluster: subscribers (connections) and
 * distinct presence users; both 0 when the channel is unknown. */
void hd_server_channel_counts(hd_server *srv, hd_app *app, const char *channel, uint32_t *subscribers,
                              uint32_t *users);

/* True while user_id has a socket in the presence channel (cluster-wide). */
bool hd_server_member_present(hd_server *srv, hd_app *app, const char *channel, const char *user_id);

/* Append {"users":[...]} for a presence channel ({"users":[]} when empty). */
void hd_server_channel_users(hd_server *srv, hd_app *app, const char *channel, hd_buf *out);

/* Call fn for each occupied client-visible channel whose name starts with
 * prefix (NULL = all); fn gets the counts. */
typedef void (*hd_channel_visit_fn)(const char *name, uint32_t subscribers, uint32_t users, void *arg);
void hd_server_foreach_channel(hd_server *srv, hd_app *app, const char *prefix, hd_channel_visit_fn fn, void *arg);

/* Cached event of a cache channel: appends the cached `data` string (not
 * the whole frame) to out and returns true with the seconds left. */
bool hd_server_channel_cache(hd_server *srv, hd_app *app, const char *channel, hd_buf *out, uint32_t *ttl_s);

/* ---- the adapter seam ---- */

#define HD_ADAPTER_ABI 1

typedef struct hd_adapter hd_adapter;

typedef struct hd_adapter_ops {
    unsigned abi; /* HD_ADAPTER_ABI */
    const char *name;
    /* Fan a complete frame out on channel to every node's subscribers. */
    void (*publish)(hd_adapter *a, hd_app *app, const char *channel, const char *frame, size_t frame_len,
                    const char *except_socket_id);
    /* Close every connection signed in as user_id, on every node. */
    void (*terminate_user)(hd_adapter *a, hd_app *app, const char *user_id);
    /* Cluster-wide counts of a channel. */
    void (*channel_counts)(hd_adapter *a, hd_app *app, const char *channel, uint32_t *subscribers,
                           uint32_t *users);
    void (*channel_users)(hd_adapter *a, hd_app *app, const char *channel, hd_buf *out);
    bool (*member_present)(hd_adapter *a, hd_app *app, const char *channel, const char *user_id);
    void (*foreach_channel)(hd_adapter *a, hd_app *app, const char *prefix, hd_channel_visit_fn fn, void *arg);
    void (*destroy)(hd_adapter *a);
} hd_adapter_ops;

struct hd_adapter {
    const hd_adapter_ops *ops;
    hd_server *srv;
};

/* The single-node adapter: registry + io-thread inboxes. */
hd_adapter *hd_adapter_local_create(hd_server *srv);

#endif /* HD_ADAPTER_H */
