/* adapter_internal.h - structs and cross-file functions of the connection
 * layer (src/adapter). Not for other modules: they use adapter.h.
 *
 * THREADING
 * ---------
 * hd_io_thread fields are owned by that thread except the inbox, which any
 * thread may push to under inbox_lock. hd_session, hd_sub and the local
 * index are touched only by the owning io thread. hd_msg is immutable
 * after creation apart from its atomic refcount and the LWS_PRE header
 * room, which only the owning thread's lws_write() touches (each io
 * thread gets its own copy of a frame for that reason).
 */
#ifndef HD_ADAPTER_INTERNAL_H
#define HD_ADAPTER_INTERNAL_H

#include <ev.h>
#include <libwebsockets.h>
#include <pthread.h>
#include <stdatomic.h>

#include "adapter.h"
#include "common/map.h"
#include "metrics/series.h"

struct cJSON;
struct hd_cleanup;
struct hd_webhooks;
struct hd_metrics;

/* A serialised frame shared by reference among one thread's recipients. */
typedef struct hd_msg {
    atomic_uint refs;
    uint32_t len;
    unsigned char buf[]; /* LWS_PRE bytes of header room, then len bytes, then NUL */
} hd_msg;

hd_msg *hd_msg_new(const char *frame, size_t len);
void hd_msg_ref(hd_msg *m);
void hd_msg_unref(hd_msg *m);
static inline char *hd_msg_payload(hd_msg *m)
{
    return (char *)m->buf + LWS_PRE;
}

typedef struct hd_session hd_session;
typedef struct hd_local_channel hd_local_channel;

/* One subscription of one session; lives on the session's io thread. */
typedef struct hd_sub {
    struct hd_sub *prev, *next; /* in local->head */
    hd_local_channel *local;
    hd_session *session;
    hd_channel *ch;     /* registry reference held by this subscription */
    char *user_key;     /* presence: dedup key */
    char *user_id_json; /* presence: raw JSON of user_id */
    bool by_client;     /* the client subscribed (not only joined by signin) */
    /* != 0 while the cluster has not answered this join (a wait token,
     * host.c): frames that come through the cluster are not delivered to
     * it, since the join's answer, ordered among them, has not come yet
     * (docs/CLUSTER.md, "the window around a join"). */
    uint64_t wait_token;
} hd_sub;

struct hd_local_channel {
    hd_sub *head;
    uint32_t count;
    hd_map_entry *entry; /* key = channel name */
};

enum hd_conn_kind { HD_CONN_NONE = 0, HD_CONN_WS };

/* Per-connection data (lws per_session_data): a WebSocket session. (HTTP
 * API requests never reach lws: http_front.c answers them.) */
struct hd_session {
    uint8_t kind;
    bool established;  /* counted in app->connections */
    bool closing;      /* close frame queued: ignore further input */
    uint8_t young_slot; /* 1 + index in io->young while new (young.c), else 0 */
    bool ping_sent;    /* server ping out, waiting for any frame */
    bool cleaned;      /* disconnect cleanup has been handed off (once) */
    bool user_id_numeric; /* signed in with a numeric id ({"id":1}): presence echoes it as a number */
    uint16_t close_code;
    uint16_t wire_close_code; /* a close code herald did not choose: the client's or lws' (0 = none) */
    const char *close_reason;
    struct lws *wsi;
    struct hd_io_thread *io;
    hd_app *app;
    hd_session *prev, *next;           /* io->sessions, ordered by last_rx_ms (idle.c) */
    hd_session *auth_prev, *auth_next; /* io->auth_pending while auth_deadline_ms != 0 (idle.c) */
    char socket_id[HD_SOCKET_ID_MAX];
    uint64_t quota_wait; /* a wait token while the cluster decides the app's max_connections (host.c) */
    uint64_t watch_wait; /* a wait token while the cluster confirms the sign-in, then says who of the watchlist is online */
    bool quota_cluster;  /* holds a cluster-wide connection slot: given back on close */
    uint64_t last_rx_ms;
    uint64_t auth_deadline_ms; /* sign-in deadline, or once closing the teardown deadline; 0 = none */

    hd_sub **subs;
    uint32_t n_subs, cap_subs; /* bounded by max_subscriptions_per_connection (+ signin memberships) */
    char *user_id;        /* signed in as */
    char *user_info_json; /* from the signin user_data */

    hd_msg **outq; /* ring */
    uint32_t oq_head, oq_count, oq_cap;
    uint32_t dirty_slot; /* 1 + index in io->dirty while waiting for the end-of-turn flush, else 0 */
    size_t oq_bytes;

    hd_buf rx; /* fragments of a message being assembled */

    uint64_t rate_refill_ms;  /* client-event token bucket (events.c) */
    uint32_t rate_milli_tokens;
    bool rate_started;
};

/* APP_REMOVED: a reload removed app: close its sessions with 4001 (ch NULL). */
/* REPLY: an adapter's answer to a request of this thread (host.c). */
enum hd_inbox_kind { HD_INBOX_PUBLISH, HD_INBOX_TERMINATE, HD_INBOX_APP_REMOVED, HD_INBOX_REPLY };

typedef struct hd_inbox_item {
    struct hd_inbox_item *next;
    uint8_t kind;
    hd_app *app;
    hd_channel *ch; /* reference owned by the item; NULL for APP_REMOVED */
    hd_msg *msg;    /* PUBLISH: reference owned by the item */
    bool via_cluster; /* PUBLISH: came through the cluster (skipped by subscriptions still waiting) */
    struct hd_ad_reply *reply; /* REPLY: owned by the item */
    char except[HD_SOCKET_ID_MAX];
} hd_inbox_item;

/* Counters of one io thread: written only by it (relaxed atomics so the
 * metrics thread may read them). */
typedef struct hd_io_stats {
    atomic_uint_fast64_t connections_opened;
    atomic_uint_fast64_t messages_received;
    atomic_uint_fast64_t frames_sent;
    atomic_uint_fast64_t bytes_sent;
    atomic_uint_fast64_t http_requests;
    atomic_uint_fast64_t slow_consumer_closes;
    atomic_uint_fast64_t coalesced_writes;
    atomic_uint_fast64_t http_refused;             /* answered with an error before the handler ran */
    atomic_uint_fast64_t http_timeouts;            /* request head or body past its deadline (408) */
    atomic_uint_fast64_t connections_rate_limited; /* handshakes refused 429 by admission.c */
    atomic_uint_fast64_t connections_over_limit;   /* closed 4100: limits.max_connections */
    atomic_uint_fast64_t close_timeouts;           /* closed sessions torn down at limits.close_timeout_ms */
    atomic_uint_fast64_t young_reads;              /* new sessions' input read ahead of a backlog (young.c) */
    /* Labelled series (metrics/series.h), summed over the io threads at
     * scrape time. Incremented once per message, close or HTTP request,
     * never per recipient of a fan-out. */
    atomic_uint_fast64_t bytes_received;                             /* WebSocket payload bytes from clients */
    atomic_uint_fast64_t messages_by_kind[HD_WS_KINDS];
    atomic_uint_fast64_t frames_queued[HD_FRAME_KINDS];              /* frames handed to outbound rings */
    atomic_uint_fast64_t bytes_queued[HD_FRAME_KINDS];
    atomic_uint_fast64_t closed_by_code[HD_SERIES_CLOSE_SLOTS];
    atomic_uint_fast64_t http_bytes_received;                        /* HTTP front end, after TLS */
    atomic_uint_fast64_t http_bytes_sent;
    atomic_uint_fast64_t http_by_route[HD_HTTP_ROUTES][HD_SERIES_STATUS_SLOTS];
    atomic_uint_fast64_t http_duration[HD_HTTP_ROUTES][HD_SERIES_HTTP_BUCKETS];
    atomic_uint_fast64_t http_duration_sum_us[HD_HTTP_ROUTES];
} hd_io_stats;

#define HD_STAT_ADD(io, field, n) atomic_fetch_add_explicit(&(io)->stats.field, (n), memory_order_relaxed)

#define HD_SCRATCH_SIZE (64 * 1024)
/* A session's queue may pass max_outbound_buffer_kb this many times over
 * while its socket still has room (outq.c). */
#define HD_OUTQ_BURST_FACTOR 4
/* lws' per-connection receive buffer (server.c). */
#define HD_RX_BUFFER_SIZE 256
/* Most bytes one send() to a WebSocket client is offered (server.c). */
#define HD_TX_PACKET_SIZE (1024 * 1024)

/* ---- host.c: the node side of the adapter seam ---- */

/* What an io thread waits an adapter's reply for. */
enum hd_wait_kind { HD_WAIT_JOIN, HD_WAIT_ONLINE, HD_WAIT_QUOTA, HD_WAIT_HTTP, HD_WAIT_SIGNIN };
typedef struct hd_wait {
    uint8_t kind;
    void *owner;  /* JOIN: hd_sub; ONLINE, QUOTA, SIGNIN: hd_session; HTTP: hd_front_conn */
    char *arg;    /* ONLINE: the watched ids, '\n'-separated; SIGNIN: user_data, NUL, watchlist JSON (owned) */
} hd_wait;

typedef struct hd_front_conn hd_front_conn; /* http_front.c */
typedef struct hd_tls hd_tls;               /* tls.c */
typedef struct hd_admission hd_admission;   /* admission.c */

/* young.c: how many new sessions, and for how long, are served ahead of an epoll backlog */
#define HD_YOUNG_MAX 64
#define HD_YOUNG_MS 1000

typedef struct hd_io_thread {
    hd_server *srv;
    unsigned index;
    struct lws_context *ctx;
    pthread_t thread;
    pthread_mutex_t inbox_lock;
    hd_inbox_item *inbox_head, *inbox_tail; /* {inbox_lock} */
    /* items waiting, and the most ever: written under inbox_lock, atomic
     * so that the metrics thread may read them without it */
    atomic_uint_fast32_t inbox_depth, inbox_high_water;
    hd_map *local;        /* per app slot (srv->max_apps): name -> hd_local_channel (this thread only) */
    hd_session *sessions, *sessions_tail; /* WebSocket sessions, least recently active first */
    hd_session *auth_pending;             /* sessions with a deadline: sign-in or teardown (idle.c) */
    struct ev_loop *loop; /* epoll-backed libev loop this thread runs; lws is attached to it */
    ev_timer idle_timer;
    int listen_fd;            /* listener.c; -1 when closed */
    struct lws_vhost *vhost;  /* where accepted sockets are adopted */
    ev_io listen_watcher;
    ev_prepare accept_turn;
    ev_timer accept_resume; /* out of descriptors: accepting pauses briefly */
    uint64_t accept_pause_logged_ms;
    hd_session **dirty; /* sessions with frames to write (outq.c), [dirty_head, n_dirty); NULL = closed since */
    uint32_t dirty_head, n_dirty, cap_dirty;
    ev_prepare flush_turn;
    hd_session *young[HD_YOUNG_MAX]; /* the sessions established last, served ahead of a backlog (young.c) */
    uint64_t young_since_ms[HD_YOUNG_MAX];
    uint32_t young_next;
    ev_idle flush_more; /* active while the dirty list is not empty: the loop must not block */
    hd_front_conn *front; /* sockets the HTTP front end owns (http_front.c) */
    unsigned n_front;
    atomic_bool alive;
    ev_timer sweep_timer;
    hd_io_stats stats;
    hd_map waits;         /* wait token (decimal) -> hd_wait: requests an adapter has not answered (host.c) */
    uint64_t next_wait;
    unsigned char *scratch; /* LWS_PRE + HD_SCRATCH_SIZE: gathered frames (outq.c) */
} hd_io_thread;

struct hd_server {
    const hd_config *cfg; /* the start-up configuration: every key but the apps keeps its value */
    /* max_apps slots, allocated once (never moves). Slots [0, n_apps) are in
     * use: a reload fills slot n completely, then publishes n_apps = n + 1
     * (release); readers load n_apps with acquire (hd_server_n_apps). */
    hd_app *apps;
    atomic_size_t n_apps;
    size_t max_apps;
    hd_config **reloads; /* main thread: configurations applied by reloads, freed by destroy */
    size_t n_reloads;
    unsigned n_threads;
    hd_io_thread *threads;
    hd_adapter *adapter;
    struct hd_cleanup *cleanup;
    struct hd_webhooks *webhooks;
    struct hd_metrics *metrics;
    atomic_bool stopping;
    atomic_bool exiting;
    atomic_uint_fast64_t next_socket;
    uint64_t node_num;  /* socket-id prefix: 15 random digits per start (hd_server_node_num) */
    hd_adapter_host host; /* what adapters may ask of this node (host.c) */
    atomic_uint connections;   /* WebSocket connections of all apps (limits.max_connections) */
    atomic_size_t front_bytes; /* memory the HTTP front ends hold, all threads (limits.http_buffers_mb) */
    hd_admission *admission;
    hd_tls *tls; /* NULL unless ssl.enabled */
};

static inline size_t hd_server_n_apps(const hd_server *srv)
{
    return atomic_load_explicit(&srv->n_apps, memory_order_acquire);
}
/* Fill slot i for cfg (main thread; before publishing n_apps > i). */
void hd_app_slot_init(hd_server *srv, size_t i, const hd_app_config *cfg);
/* The parts of hd_server_create that need no socket (server.c), shared with
 * the fuzz harness's socket-less server: the app array (configured apps +
 * HD_APP_HEADROOM, never moved) and one io thread's state before its lws
 * context. */
void hd_server__apps_create(hd_server *srv);
void hd_server__io_init(hd_server *srv, hd_io_thread *io, unsigned index);

/* ---- host.c ---- */
/* The hd_adapter_host of this node (srv->host). */
void hd_host_init(hd_server *srv);
/* Register what owner waits for on io; returns its token (never 0). */
uint64_t hd_wait_add(hd_io_thread *io, uint8_t kind, void *owner, char *arg);
/* Forget a wait (its reply, if it comes, is dropped). 0 is a no-op. */
void hd_wait_cancel(hd_io_thread *io, uint64_t token);
/* An inbox REPLY item: dispatch it to what waits for it (io thread). */
void hd_host_reply(hd_io_thread *io, struct hd_ad_reply *r);
/* Forget every wait of io (its thread is stopping). */
void hd_waits_clear(hd_io_thread *io);
/* Where each kind of reply goes (subscribe.c, signin.c, session.c, http_front.c). */
void hd_subscribe_on_reply(hd_sub *sub, const struct hd_ad_reply *r);
void hd_signin_on_online(hd_session *s, const char *ids, const struct hd_ad_reply *r);
void hd_signin_on_joined(hd_session *s, const char *arg, const struct hd_ad_reply *r);
void hd_session_on_quota(hd_session *s, const struct hd_ad_reply *r);
typedef struct hd_front_conn hd_front_conn;
void hd_front_on_reply(hd_front_conn *c, const struct hd_ad_reply *r);
/* The adapter of srv is a cluster (replies come later, through the inbox). */
static inline bool hd_server_clustered(const hd_server *srv)
{
    return srv->adapter->ops->cluster;
}

/* ---- fanout.c ---- */
void hd_io_inbox_push(hd_io_thread *io, hd_inbox_item *item);
void hd_io_inbox_drain(hd_io_thread *io);
/* Fan a frame out on this node to local subscribers of channel, via inboxes. */
void hd_fanout_local(hd_server *srv, hd_app *app, const char *channel, size_t channel_len, const char *frame,
                     size_t len, const char *except_socket_id);
/* The same for a frame that came through the cluster (host.c). */
void hd_fanout_from_cluster(hd_server *srv, hd_app *app, const char *channel, size_t channel_len, const char *frame,
                            size_t len, const char *except_socket_id);
void hd_terminate_local(hd_server *srv, hd_app *app, const char *channel, size_t channel_len);

/* ---- session.c ---- */
void hd_session_send(hd_session *s, hd_msg *m);            /* takes a reference */
void hd_session_send_text(hd_session *s, const char *frame, size_t len);
void hd_session_send_error(hd_session *s, int code, const char *message); /* code 0 = null */
/* Closes and their log line (a refusal, rate-limited per code: log.h):
 * reason is sent later by lws, so it must outlive the session (a string
 * literal) and fit a close frame (123 bytes); detail, may be NULL, is for
 * the log line only. */
void hd_session_close(hd_session *s, uint16_t code, const char *reason);
void hd_session_close_why(hd_session *s, uint16_t code, const char *reason, const char *detail);
/* pusher:error {code, why} then close with code and why; once per session. */
void hd_session_fail(hd_session *s, uint16_t code, const char *why);
/* The same with a pusher:error message longer than the close reason. */
void hd_session_fail_full(hd_session *s, uint16_t code, const char *message, const char *reason, const char *detail);
/* The session's log context (app, socket_id, user, remote address via *fd). */
void hd_session_log_ctx(const hd_session *s, hd_log_ctx *ctx, const char *channel, int *fd);
/* A refusal of something s asked for, logged with its context (log.h). */
void hd_session_log_refusal(hd_session *s, const char *reason, const char *channel, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
hd_sub *hd_session_find_sub(hd_session *s, const char *channel, size_t len);
/* lws callback steps, one per reason */
void hd_session_established(hd_session *s, struct lws *wsi, struct hd_io_thread *io);
void hd_session_receive(hd_session *s, const char *in, size_t len);
int hd_session_writable(hd_session *s);
void hd_session_touch(hd_session *s); /* something arrived: activity (idle.c) */
void hd_session_closed(hd_session *s);
void hd_session_wire_close(hd_session *s, const unsigned char *payload, size_t len);
void hd_session_outq_clear(hd_session *s);
/* End of a loop turn: write up to HD_FLUSH_PER_TURN sessions' queued
 * frames (outq.c); true while more are waiting. */
#define HD_FLUSH_PER_TURN 128
bool hd_io_flush_dirty(hd_io_thread *io);

/* ---- local index (fanout.c) ---- */
hd_sub *hd_local_add(hd_session *s, hd_channel *ch);
void hd_local_remove(hd_sub *sub); /* unlinks and frees sub; does not touch the registry */

/* ---- membership.c: joins and leaves shared by subscribe, signin, unsubscribe and cleanup ---- */
/* After s joined ch in the registry (order lock held): the adapter's joined.
 * member: the presence member (NULL elsewhere), strings NUL-terminated;
 * wait_token != 0 asks a cluster adapter for a reply (hd_subscribe_on_reply). */
void hd_membership_joined(hd_session *s, hd_channel *ch, const hd_join_result *jr, const hd_member *member,
                          uint64_t wait_token);
void hd_membership_leave(hd_server *srv, hd_app *app, unsigned thread, hd_channel *ch, const char *user_key,
                         const char *user_id_json);
/* The same for n sockets leaving ch (a cleanup batch): one hold of the
 * channel lock; releases n references to ch. */
struct hd_cleanup_leave;
void hd_membership_leave_many(hd_server *srv, hd_app *app, hd_channel *ch, const struct hd_cleanup_leave *leaves,
                              size_t n);

/* ---- protocol handlers (events.c, subscribe.c, signin.c) ---- */
void hd_session_on_message(hd_session *s, const char *text, size_t len);
void hd_handle_subscribe(hd_session *s, struct cJSON *data);
void hd_handle_unsubscribe(hd_session *s, struct cJSON *data);
void hd_handle_signin(hd_session *s, struct cJSON *data);
void hd_handle_client_event(hd_session *s, const char *event, struct cJSON *root);

/* ---- disconnect (disconnect.c) ---- */
void hd_session_disconnect(hd_session *s);

/* ---- idle.c ---- */
#define HD_IDLE_TICK_MS 250
void hd_idle_link(hd_session *s);
void hd_idle_unlink(hd_session *s);
void hd_idle_auth_deadline(hd_session *s, uint64_t deadline_ms);
void hd_idle_close_deadline(hd_session *s); /* closed by herald: torn down by limits.close_timeout_ms */
void hd_idle_tick(hd_io_thread *io);

/* ---- young.c ---- */
/* Set by each io thread's epoll_wait (loop_batch.c): the wait came back
 * full, so ready sockets are still queued behind those it returned. */
extern _Thread_local bool hd_loop_backlog;
void hd_young_add(hd_session *s);    /* just established */
void hd_young_remove(hd_session *s); /* closed */
/* Each loop turn (prepare): with a backlog, serve the young sessions' input now. */
void hd_young_serve(hd_io_thread *io);
/* Write s's queued frames now instead of at the end of the turn (outq.c). */
void hd_session_flush_now(hd_session *s);

/* ---- listener.c ---- */
void hd_listener_start(hd_io_thread *io, int fd); /* io thread's loop; fd from hd_net_listen() */
void hd_listener_stop(hd_io_thread *io);

/* ---- stats.c ---- */
void hd_server_metrics_render(void *srv, hd_buf *out);
bool hd_server_metrics_ready(void *srv, hd_buf *why);

/* ---- http_front.c: herald's own HTTP/1.1 server for everything but WebSocket handshakes ---- */
/* Take over a freshly accepted fd, with the first bytes already read from it. */
void hd_front_accept(hd_io_thread *io, int fd, uint32_t peer, const char *data, size_t len);
void hd_front_tick(hd_io_thread *io, uint64_t now); /* deadlines */
void hd_front_close_all(hd_io_thread *io);

/* ---- tls.c: TLS on the main port ---- */
/* NULL in *out (and 0) when ssl.enabled is false; HD_EINVAL, logged, when
 * the certificate or key cannot be loaded. */
int hd_tls_create(hd_tls **out, const hd_config *cfg);
void hd_tls_destroy(hd_tls *t);
int hd_tls_reload(hd_tls *t); /* SIGHUP: same files, new context; the old one stays on failure */
struct ssl_st;
struct ssl_st *hd_tls_session(hd_tls *t, int fd); /* server-side SSL for an accepted fd, or NULL */

/* ---- admission.c: rate limits on new WebSocket connections ---- */
hd_admission *hd_admission_create(void);
void hd_admission_destroy(hd_admission *a);
/* True when a new connection from peer may proceed (takes a token). */
bool hd_admission_take(hd_server *srv, uint32_t peer);
struct sockaddr_storage;
uint32_t hd_admission_peer_hash(const struct sockaddr_storage *ss);

#endif /* HD_ADAPTER_INTERNAL_H */
