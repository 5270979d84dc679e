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

/* This node's counts of a channel: subscribers (connections) and distinct
 * presence users; both 0 when the channel is unknown here. (The webhook
 * pool's hold check in single-node mode; cluster-wide answers are reads
 * through the adapter.) */
void hd_server_channel_counts(hd_server *srv, hd_app *app, const char *channel, uint32_t *subscribers,
                              uint32_t *users);

/* True while user_id has a socket in the presence channel on this node. */
bool hd_server_member_present(hd_server *srv, hd_app *app, const char *channel, const char *user_id);

/* The adapter this node runs (adapter.driver). */
typedef struct hd_adapter hd_adapter;
hd_adapter *hd_server_adapter(hd_server *srv);

/* This process's node number, the prefix of its socket ids: 15 random
 * decimal digits drawn at start-up (unique across a cluster and across
 * restarts with overwhelming odds; the Redis adapter also claims it). */
uint64_t hd_server_node_num(const hd_server *srv);

/* ---- the adapter seam ---- */

#define HD_ADAPTER_ABI 2

typedef struct hd_adapter hd_adapter;

/* Outcome of an adapter operation (hd_ad_reply.status). */
enum {
    HD_AD_OK = 0,
    HD_AD_LIMIT = 1,       /* join: the presence channel is full cluster-wide */
    HD_AD_QUOTA = 2,       /* quota: the app's max_connections is reached cluster-wide */
    HD_AD_UNAVAILABLE = 3, /* the cluster cannot answer now (Redis away, timeout) */
};

/* What a read asks for (hd_adapter_ops.read). */
enum hd_ad_read {
    HD_AD_READ_CHANNELS, /* arg = prefix ("" = all): body = one "name\tsubscribers\tusers\n" per occupied
                          * client-visible channel, sorted by name */
    HD_AD_READ_CHANNEL,  /* arg = channel: subscribers, users, cache (+ cache_ttl_s) */
    HD_AD_READ_USERS,    /* arg = presence channel: body = {"users":[{"id":"1"},...]} */
    HD_AD_READ_ONLINE,   /* arg = user ids joined by '\n': body = one '0' or '1' per id, in order */
};

/* Where a reply goes: the io thread that asked, and its token for the
 * request (token 0 = no reply wanted). Tokens are the caller's: the host
 * matches them against what is still waiting (a session or HTTP request
 * that went away in between simply drops its reply). */
typedef struct hd_ad_caller {
    unsigned thread;
    uint64_t token;
} hd_ad_caller;

/* A reply, built by the adapter, handed to hd_adapter_host.complete and
 * freed by the host (hd_ad_reply_free) after its io thread used it. */
typedef struct hd_ad_reply {
    hd_ad_caller to;
    int status;
    bool degraded;            /* answered from this node's registry alone (Redis away) */
    uint32_t subscribers;     /* join: cluster-wide after it; READ_CHANNEL: of the channel */
    uint32_t users;           /* distinct presence users, likewise */
    hd_buf presence;          /* join on a presence channel: {"presence":{"ids":...,"hash":...,"count":N}} */
    hd_buf cache;             /* join / READ_CHANNEL on a cache channel: the cached frame, empty = none */
    uint32_t cache_ttl_s;     /* seconds the cached frame has left */
    bool cache_first_miss;    /* join: the first miss of this empty spell (cache_miss webhook, once per cluster) */
    hd_buf body;              /* READ_CHANNELS / USERS / ONLINE, as described there */
} hd_ad_reply;

hd_ad_reply *hd_ad_reply_new(hd_ad_caller to);
void hd_ad_reply_free(hd_ad_reply *r);

typedef struct hd_adapter_ops {
    unsigned abi; /* HD_ADAPTER_ABI */
    const char *name;
    /* false (local): the registry is the whole cluster, every reply is
     * given before the call returns; true: replies may come later, on
     * the caller's io thread, through hd_adapter_host.complete. */
    bool cluster;
    /* Main thread, once the io threads run. 0, or an error (logged). */
    int (*start)(hd_adapter *a);

    /* ---- membership: who decides the crossings ----
     * A join or leave of this node's registry (subscribe, signin, unsubscribe,
     * a cleanup batch) has happened; ch's order lock is held by the caller.
     * The local adapter announces what the registry result crossed (channel
     * 0 <-> 1, a user's first / last socket, a signed-in user's first / last
     * connection): member_added / removed, watchlist online / offline,
     * subscription_count, the webhooks. The Redis adapter asserts this node's
     * absolute state of the channel (and of the users named) to the cluster,
     * where one atomic script decides the crossings for every node.
     * joined: member is the presence member (NULL elsewhere), socket_id the
     * joining socket (excluded from member_added); reply_to.token != 0 asks
     * for a reply (presence snapshot, cache, limit) for the subscribe. */
    void (*joined)(hd_adapter *a, hd_app *app, hd_channel *ch, const hd_join_result *jr, const hd_member *member,
                   const char *socket_id, hd_ad_caller reply_to);
    /* n leaves of ch: results and who left (user_key, user_id_json per leave). */
    void (*left)(hd_adapter *a, hd_app *app, hd_channel *ch, const hd_leave_result *res,
                 const char *const *user_keys, const char *const *user_id_jsons, size_t n);

    /* ---- connections (limits per app: max_connections) ----
     * +1 asks for a connection slot (reply OK or QUOTA), -1 gives one back
     * (no reply). Only called for apps with a max_connections limit. */
    void (*quota)(hd_adapter *a, hd_app *app, int delta, hd_ad_caller reply_to);

    /* ---- fan-out ----
     * A complete frame to every subscriber of channel on every node, except
     * except_socket_id (NULL = none). cache: also keep it as the channel's
     * cached event (cache channels). */
    void (*publish)(hd_adapter *a, hd_app *app, const char *channel, const char *frame, size_t frame_len,
                    const char *except_socket_id, bool cache);
    /* Close every connection signed in as user_id, on every node (4009). */
    void (*terminate_user)(hd_adapter *a, hd_app *app, const char *user_id);

    /* ---- reads (HTTP API, signin watchlists) ---- the reply goes to reply_to. */
    void (*read)(hd_adapter *a, hd_app *app, enum hd_ad_read what, const char *arg, hd_ad_caller reply_to);
    /* The same answered at once (caller frees it), for adapters that can
     * (local); NULL in the others, which answer through read. */
    hd_ad_reply *(*read_now)(hd_adapter *a, hd_app *app, enum hd_ad_read what, const char *arg);

    /* ---- lifecycle ---- */
    bool (*ready)(hd_adapter *a, hd_buf *why);                     /* /ready; why gets a short reason */
    void (*leave_cluster)(hd_adapter *a, uint32_t deadline_ms);    /* graceful shutdown: remove this node's state */
    void (*metrics)(hd_adapter *a, hd_buf *out);                   /* Prometheus text, herald_adapter_* */
    void (*destroy)(hd_adapter *a);
} hd_adapter_ops;

struct hd_adapter {
    const hd_adapter_ops *ops;
    hd_server *srv;
};

/* The reverse interface: what an adapter may ask of its node, from any
 * thread, so that no adapter reaches into io-thread internals. */
typedef struct hd_adapter_host {
    /* A frame from the cluster to this node's local subscribers of channel. */
    void (*deliver)(hd_server *srv, hd_app *app, const char *channel, size_t channel_len, const char *frame,
                    size_t len, const char *except_socket_id);
    /* A frame published on this node to its local subscribers (the local
     * adapter's fan-out; no subscription is waiting for a cluster reply). */
    void (*publish_local)(hd_server *srv, hd_app *app, const char *channel, size_t channel_len, const char *frame,
                          size_t len, const char *except_socket_id);
    /* Close this node's connections signed in as user_id (4009). */
    void (*terminate)(hd_server *srv, hd_app *app, const char *user_id);
    /* Hand a reply to its io thread (takes ownership of r). */
    void (*complete)(hd_server *srv, hd_ad_reply *r);
    /* The cluster decided a webhook event: send it (no hold, no local check:
     * the cluster already held and confirmed it). event: "channel_occupied",
     * "channel_vacated", "member_added", "member_removed", "cache_miss";
     * user_id only for member events. */
    void (*webhook)(hd_server *srv, hd_app *app, const char *event, const char *channel, const char *user_id);
    /* The app with this id (NULL when unknown or removed). */
    hd_app *(*app_by_id)(hd_server *srv, const char *app_id);
    /* Every app slot in use: fn(arg, app) (resync). */
    void (*for_each_app)(hd_server *srv, void (*fn)(void *arg, hd_app *app), void *arg);
    /* The app's current number of open connections on this node (resync of the quota). */
    uint32_t (*local_connections)(hd_server *srv, hd_app *app);
} hd_adapter_host;

/* The single-node adapter: registry + io-thread inboxes. */
hd_adapter *hd_adapter_local_create(hd_server *srv);
/* The Redis adapter (src/adapter/redis); NULL, logged, when it cannot start. */
hd_adapter *hd_adapter_redis_create(hd_server *srv, const hd_adapter_host *host);

#endif /* HD_ADAPTER_H */
