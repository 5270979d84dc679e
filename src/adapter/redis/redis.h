/* redis.h - internals of the Redis adapter (docs/CLUSTER.md): the structs
 * and cross-file functions of src/adapter/redis. Other modules use only
 * hd_adapter_redis_create() (adapter.h).
 *
 * DESIGN
 * ------
 * One adapter thread runs its own libev loop with two hiredis async
 * connections: `cmd` (scripts, PUBLISH, reads: one connection, so one
 * per-node command order) and `sub` (SUBSCRIBE to this node's channel
 * P:n:<num> and to P:m:<A>:<c> for every channel with local subscribers).
 * Every op an io thread or a cleanup worker makes (ops.c, member.c) is
 * copied into an rd_op and pushed onto a byte-bounded queue (queue.c); the
 * adapter thread drains it (adapter.c), gates each channel's ops behind
 * its pub/sub subscription (pubsub.c) and sends them (conn.c). Replies and
 * pub/sub messages come back on the adapter thread and go to the node
 * through hd_adapter_host (deliver, complete, webhook, terminate).
 *
 * THREADING
 * ---------
 * Fields marked {q} are guarded by hd_rd.q_lock; fields marked {atomic}
 * may be read by any thread; everything else belongs to the adapter
 * thread (after start(); before it, to the main thread). No function here
 * blocks an io thread: the only lock they take is q_lock, held for a list
 * operation. Lock order: channel order lock -> q_lock (ops are enqueued
 * under the order lock); the adapter thread takes an order lock only with
 * no other lock held (resync.c).
 */
#ifndef HD_ADAPTER_REDIS_H
#define HD_ADAPTER_REDIS_H

#include <ev.h>
#include <hiredis/async.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "adapter/adapter.h"
#include "adapter/redis/scripts.h"
#include "common/map.h"

#define RD_MOD "redis"
#define RD_SOCKET_ID_MAX 48      /* "<num>.<seq>": 15 + 1 + 20 digits, NUL */
#define RD_SUBSCRIBE_BATCH 512   /* channels per SUBSCRIBE / UNSUBSCRIBE (CLUSTER.md 5.2) */
#define RD_TICK_MS 100           /* op timeouts, lingering channels, probe */
#define RD_REAP_MS 1000          /* expired-lease scan */
#define RD_HOLDS_MS 250          /* held webhooks poll */
#define RD_PROBE_MS 2000         /* pub/sub path probe */
#define RD_DIRTY_MIN_MS 5000     /* at most one resync of dropped ops per 5 s */
#define RD_HOLDS_BATCH 64
#define RD_EXPIRED_LIMIT 8

/* ---- states (CLUSTER.md 7.1) ---- */
enum rd_state {
    RD_ST_CONNECTING,  /* connections, AUTH, SELECT, SCRIPT LOAD, node channel */
    RD_ST_REGISTERING, /* register (lease) */
    RD_ST_RESYNCING,   /* re-asserting every local channel */
    RD_ST_UP,
    RD_ST_DOWN,        /* waiting to reconnect */
    RD_ST_LEAVING,     /* graceful leave: reaping itself */
    RD_ST_LEFT,
    RD_ST_COUNT
};
const char *rd_state_name(int st);

/* ---- counters (metrics.c renders them) ---- */
enum rd_drop { RD_DROP_QUEUE_FULL, RD_DROP_REDIS_DOWN, RD_DROP_TIMEOUT, RD_DROP_COUNT };
enum rd_resync_reason { RD_RS_RECONNECT, RD_RS_LEASE_LOST, RD_RS_REBUILD, RD_RS_DROPPED_OP, RD_RS_COUNT };
enum rd_rtt_kind { RD_RTT_SCRIPT, RD_RTT_PUBLISH, RD_RTT_LEASE, RD_RTT_COUNT };
#define RD_RTT_BUCKETS 12

typedef struct rd_stats {
    atomic_uint_fast64_t publishes_out, publishes_in, unrouted;
    atomic_uint_fast64_t reconnects, reaped_nodes, reaped_channels;
    atomic_uint_fast64_t resyncs[RD_RS_COUNT];
    atomic_uint_fast64_t dropped[RD_DROP_COUNT];
    atomic_uint_fast64_t rtt[RD_RTT_COUNT][RD_RTT_BUCKETS + 1]; /* last = +Inf */
    atomic_uint_fast64_t rtt_sum_us[RD_RTT_COUNT];
    atomic_uint_fast64_t holds_vacated, holds_removed;
    atomic_uint_fast64_t degraded_joins;
    atomic_uint_fast64_t subscribed;      /* pub/sub channels subscribed (node channel excluded) */
} rd_stats;

/* ---- ops: what io threads and cleanup workers hand over ---- */
enum rd_op_kind {
    RD_OP_MEMBER,     /* member script: a channel's absolute node state (join, leave, resync) */
    RD_OP_WATCH,      /* #watch-<id>: only this node's pub/sub subscription */
    RD_OP_PUBLISH,    /* PUBLISH (or publish_cache) of a frame */
    RD_OP_TERMINATE,  /* T message on #server-to-user-<id> */
    RD_OP_QUOTA,
    RD_OP_READ,
    RD_OP_RESYNC_END, /* marker: every assertion of a resync is before it */
};

typedef struct rd_user {
    char *key;        /* u: the user's dedup key */
    uint32_t node_count;
    char *record;     /* user_id_json \x1f user_info_json */
    char *added;      /* member_added frame */
    char *removed;    /* member_removed frame */
} rd_user;

typedef struct rd_op {
    struct rd_op *next;
    uint8_t kind;
    bool full;         /* MEMBER: users are this node's complete list (resync) */
    bool cache;        /* PUBLISH: also the channel's cached event */
    bool refresh;      /* MEMBER (resync): send this node's subscribers a fresh presence snapshot */
    bool hooks_in_answer; /* MEMBER: its occupied / member_added webhooks come with the join's answer (J) */
    bool counted;      /* its bytes are in the queue total */
    size_t bytes;
    hd_app *app;
    char *channel;     /* NUL-terminated; TERMINATE: #server-to-user-<id> */
    size_t channel_len;
    hd_ad_caller reply_to;
    uint64_t born_ms;
    /* MEMBER / WATCH */
    uint32_t node_count, max_members;
    rd_user *users;
    size_t n_users, cap_users;
    char *online, *offline; /* watchlist frames of #server-to-user-<id> */
    /* MEMBER (except), PUBLISH */
    char except[RD_SOCKET_ID_MAX];
    char *payload;     /* PUBLISH: the frame */
    size_t payload_len;
    /* QUOTA */
    int delta;
    /* READ */
    int what;
    char *arg;
} rd_op;

/* ---- commands in flight on cmd ---- */
typedef struct hd_rd hd_rd;
typedef struct rd_cmd rd_cmd;
/* r is NULL when the connection went away before the reply. */
typedef void (*rd_done_fn)(hd_rd *rd, rd_cmd *c, redisReply *r);

struct rd_cmd {
    rd_cmd *prev, *next; /* rd->inflight, oldest first */
    int script;          /* enum hd_redis_script, or -1 */
    uint8_t rtt_kind;
    bool retried;        /* NOSCRIPT: reloaded and sent again once */
    uint32_t k;          /* incarnation it was sent under */
    uint64_t sent_us;
    char *wire;          /* the formatted command (kept for the NOSCRIPT retry) */
    size_t wire_len;
    rd_done_fn done;
    rd_op *op;           /* owned: freed with the command */
    uint64_t rid;        /* request id of a join / online read waiting on P:n:<num> */
    uint64_t u;          /* per-command extra */
};

/* ---- channels known to pub/sub (pubsub.c) ---- */
enum rd_chan_state { RD_CH_UNSUBSCRIBED, RD_CH_SUBSCRIBING, RD_CH_SUBSCRIBED, RD_CH_LINGERING, RD_CH_UNSUBSCRIBING };

typedef struct rd_chan {
    hd_map_entry *entry;      /* in rd->chans; key = the pub/sub name P:m:<A>:<c> */
    hd_app *app;
    const char *channel;      /* points into the key */
    size_t channel_len;
    uint8_t state;
    bool batched;             /* in the pending SUBSCRIBE / UNSUBSCRIBE batch */
    uint32_t node_count;      /* from the last op forwarded */
    rd_op *parked, *parked_tail;
    struct rd_chan *lprev, *lnext; /* linger list */
    uint64_t linger_until_ms;
} rd_chan;

/* What waits for an answer on P:n:<num>. */
enum rd_wait_kind {
    RD_WAIT_JOIN,    /* a subscribe: J message -> host->complete */
    RD_WAIT_ONLINE,  /* a watchlist read: R message -> host->complete */
    RD_WAIT_REFRESH, /* presence refresh after a resync: J -> subscription_succeeded to local subscribers */
};

typedef struct rd_wait {
    struct rd_wait *prev, *next; /* rd->waits, by deadline */
    uint64_t rid;
    uint64_t deadline_ms;
    hd_app *app;
    char *channel;
    hd_ad_caller to;
    uint8_t kind;            /* enum rd_wait_kind */
    hd_map_entry *entry;     /* in rd->wait_map */
} rd_wait;

/* Pending SUBSCRIBE / UNSUBSCRIBE acks, in send order (sub replies come in order). */
typedef struct rd_ackq {
    struct rd_ackq *next;
    uint64_t sent_ms;
    uint32_t left;
} rd_ackq;

struct hd_rd {
    hd_adapter base; /* first: hd_adapter * <-> hd_rd * */
    const hd_adapter_host *host;
    const hd_config *cfg;
    uint64_t num;
    char num_str[24];
    char owner[40];          /* random, per process (register) */
    char host_name[64];
    uint64_t started_ms;
    uint32_t lease_ms;
    size_t queue_limit;      /* bytes */

    /* ---- the queue {q} ---- */
    pthread_mutex_t q_lock;
    rd_op *q_head, *q_tail;  /* {q} */
    hd_map dirty;            /* {q} "<app index>\x1f<channel>" -> hd_app *: dropped member ops */
    bool dirty_overflow;     /* {q} too many to list: resync everything */
    bool stop;               /* {q} destroy asked */
    bool leave_asked;        /* {q} leave_cluster asked */
    bool leave_done;         /* {q} */
    bool leave_started;      /* {q} the adapter thread took the request */
    pthread_cond_t leave_cond;
    atomic_size_t q_bytes;   /* {atomic} */

    /* ---- shared flags {atomic} ---- */
    atomic_bool accepting;   /* the link is usable: io-side ops are queued, not answered degraded */
    atomic_bool left;        /* leave_cluster ran: membership ops are ignored */
    atomic_int state;
    atomic_uint_fast64_t state_since_ms; /* wall ms of the last state change */
    atomic_uint_fast64_t lease_until_mono; /* mono ms the lease is known valid until, 0 = none */
    pthread_mutex_t why_lock;
    char why[160];           /* {why_lock} last connection error */
    rd_stats st;

    /* ---- adapter thread ---- */
    pthread_t thread;
    bool thread_started;
    struct ev_loop *loop;
    atomic_bool stopping;    /* {atomic} destroy: tear down silently, answer nothing */
    bool in_link_down;
    uint64_t rng;
    ev_async wake;
    ev_timer tick, reap_timer, holds_timer, renew_timer, reconnect_timer, connect_timer;
    redisAsyncContext *cmd, *sub;
    bool cmd_connected, sub_connected;
    unsigned handshake_left; /* replies the connect sequence still waits for */
    uint32_t attempt;        /* reconnects since the last success */
    atomic_uint_fast64_t down_since_ms; /* {atomic} wall ms the outage began, 0 = none */
    char script_sha[HD_RS_COUNT][41];
    uint32_t k;              /* incarnation counter: inc = "<num>-<k>" */
    char inc[48];
    uint64_t epoch;
    bool fresh;              /* the inc was new at register (no sweep) */
    int resync_reason;
    bool resync_end_seen;    /* the RESYNC_END marker was drained */
    bool sweeping;
    uint64_t last_renew_ok_mono;
    rd_cmd *inflight, *inflight_tail;
    size_t inflight_bytes;
    uint64_t next_rid;
    hd_map chans;            /* pub/sub name -> rd_chan */
    rd_chan *linger_head, *linger_tail;
    rd_chan **batch;         /* channels waiting for the next SUBSCRIBE / UNSUBSCRIBE */
    size_t n_batch, cap_batch;
    rd_ackq *acks, *acks_tail;
    size_t parked_ops;       /* ops parked behind subscriptions, all channels */
    rd_op *after_subs, *after_subs_tail; /* online reads waiting for every pending subscribe */
    hd_map wait_map;         /* rid (decimal) -> rd_wait */
    rd_wait *waits, *waits_tail;
    uint64_t probe_seq, probe_sent_ms; /* 0 = no probe outstanding */
    uint64_t last_probe_ms;
    bool reaping, holds_busy;
    uint64_t last_dirty_ms;
    bool refresh_presence;   /* this resync refreshes local presence subscribers (missed frames) */
    bool sweep_after;        /* this resync ends with a sweep (same inc after a reconnect) */
    unsigned resync_gen;
    uint64_t resync_started_ms;
    size_t resync_channels;
    bool lost_lease;         /* the next registration follows a lost lease */
    bool ever_registered;
    char **reap_list;        /* expired incs being reaped, one after the other */
    size_t reap_n, reap_i;
    uint64_t reap_channels;
    uint64_t script_errors;
    hd_buf node_chan;        /* P:n:<num> */
    hd_buf scratch;          /* short-lived: never held across a call that may use it */
};

static inline hd_rd *rd_of(hd_adapter *a)
{
    return (hd_rd *)a;
}

/* ---- adapter.c ---- */
void rd_set_state(hd_rd *rd, int st);
bool rd_state_is(const hd_rd *rd, int st);
uint64_t rd_random(hd_rd *rd);
/* The op cannot reach Redis (reason: enum rd_drop): answer or count it, free it. */
void rd_op_fail(hd_rd *rd, rd_op *op, int reason);
void rd_drain(hd_rd *rd);                     /* process the queue as the state allows */
void rd_leave_finished(hd_rd *rd);            /* wake leave_cluster */

/* ---- queue.c ---- */
rd_op *rd_op_new(int kind, hd_app *app, const char *channel, size_t channel_len);
void rd_op_free(rd_op *op);
/* Its bytes leave the queue total (it was sent, or is dropped); idempotent. */
void rd_op_uncount(hd_rd *rd, rd_op *op);
void rd_op_discard(hd_rd *rd, rd_op *op);      /* uncount + free */
char *rd_op_strdup(rd_op *op, const char *s, size_t n); /* counts the bytes */
/* Push op; false (op freed, drop counted) when over the queue limit and
 * !force. Wakes the adapter thread. */
bool rd_queue_push(hd_rd *rd, rd_op *op, bool force);
rd_op *rd_queue_take_all(hd_rd *rd);          /* the whole list, in order */
void rd_queue_put_back(hd_rd *rd, rd_op *list); /* at the head, in order (not drained yet) */
void rd_count_drop(hd_rd *rd, int reason, const char *what);
void rd_dirty_mark(hd_rd *rd, hd_app *app, const char *channel, size_t len);
/* The dirty set, emptied; *overflow says the set was too big to keep. */
void rd_dirty_take(hd_rd *rd, hd_map *out, bool *overflow);

/* ---- conn.c ---- */
void rd_conn_init(hd_rd *rd);                 /* timers, before the loop runs */
void rd_handshake_ack(hd_rd *rd);             /* the node channel's SUBSCRIBE was acknowledged */
void rd_probe_received(hd_rd *rd, const char *body, size_t len);
void rd_conn_start(hd_rd *rd);                /* connect both contexts */
void rd_link_down(hd_rd *rd, const char *why);/* tear down both, schedule the reconnect */
void rd_conn_close(hd_rd *rd);                /* destroy: free both, no reconnect */
void rd_scripts_prepare(hd_rd *rd);           /* SHA1 of every script */
/* EVALSHA script 0 argv... (argc values) on cmd. op and rid are owned by
 * the command from here; done runs once (r NULL when the link went). */
rd_cmd *rd_script(hd_rd *rd, int script, int argc, const char **argv, const size_t *lens, rd_done_fn done,
                  rd_op *op);
/* The same for a command whose answer a waiting join / read (rid) needs. */
rd_cmd *rd_script_rid(hd_rd *rd, int script, int argc, const char **argv, const size_t *lens, rd_done_fn done,
                      rd_op *op, uint64_t rid);
/* A plain command (PUBLISH ...). */
rd_cmd *rd_command(hd_rd *rd, int rtt_kind, int argc, const char **argv, const size_t *lens, rd_done_fn done,
                   rd_op *op);
void rd_cmd_tick(hd_rd *rd, uint64_t now_ms); /* op timeout, probe */
bool rd_reply_is_error(const redisReply *r, const char *prefix); /* error reply starting with prefix */
bool rd_link_ready(const hd_rd *rd);          /* both contexts connected and usable */

/* ---- pubsub.c ---- */
/* Route op through its channel's subscription: send it now, or park it
 * until the SUBSCRIBE ack. Takes ownership. */
void rd_pubsub_dispatch(hd_rd *rd, rd_op *op);
void rd_pubsub_flush(hd_rd *rd);              /* send the pending SUBSCRIBE / UNSUBSCRIBE batch */
void rd_pubsub_tick(hd_rd *rd, uint64_t now_ms); /* lingering channels */
void rd_pubsub_reset(hd_rd *rd);              /* link gone: forget every subscription, fail parked ops */
void rd_pubsub_node_subscribe(hd_rd *rd);     /* P:n:<num>, first on every connect */
void rd_pubsub_after_subs(hd_rd *rd, rd_op *op); /* run op once every pending subscribe is acked */
void rd_pubsub_free(hd_rd *rd);
void rd_pubsub_name(hd_rd *rd, hd_buf *out, const hd_app *app, const char *channel, size_t len);
/* A message on a pub/sub channel without an entry: the node channel, or unrouted. */
void rd_node_or_unrouted(hd_rd *rd, const char *name, size_t len, const char *body, size_t body_len);

/* ---- member.c ---- */
void rd_op_joined(hd_adapter *a, hd_app *app, hd_channel *ch, const hd_join_result *jr, const hd_member *member,
                  const char *socket_id, hd_ad_caller reply_to);
void rd_op_left(hd_adapter *a, hd_app *app, hd_channel *ch, const hd_leave_result *res,
                const char *const *user_keys, const char *const *user_id_jsons, size_t n);
/* This node's state of ch as one MEMBER (or WATCH) op, read under the
 * caller's order lock; full = every user listed. */
rd_op *rd_member_snapshot(hd_rd *rd, hd_app *app, hd_channel *ch);
void rd_member_send(hd_rd *rd, rd_op *op);    /* the member script (or the WATCH completion) */
/* Answer a join from this node's registry (Redis away / failed). */
void rd_join_degraded(hd_rd *rd, hd_app *app, const char *channel, size_t len, hd_ad_caller to);
void rd_node_message(hd_rd *rd, const char *payload, size_t len); /* P:n:<num> */
void rd_waits_tick(hd_rd *rd, uint64_t now_ms);  /* joins / reads past op_timeout_ms */
void rd_waits_fail_all(hd_rd *rd);            /* link gone */
uint64_t rd_wait_add(hd_rd *rd, hd_app *app, const char *channel, hd_ad_caller to, int kind);
void rd_wait_fail(hd_rd *rd, uint64_t rid);   /* the command failed: answer it now */
void rd_script_error(hd_rd *rd, int script, const redisReply *r); /* logged, rate-limited */

/* ---- ops.c: publish, terminate, quota ---- */
void rd_op_publish(hd_adapter *a, hd_app *app, const char *channel, const char *frame, size_t frame_len,
                   const char *except_socket_id, bool cache);
void rd_op_terminate_user(hd_adapter *a, hd_app *app, const char *user_id);
void rd_op_quota(hd_adapter *a, hd_app *app, int delta, hd_ad_caller reply_to);
void rd_publish_send(hd_rd *rd, rd_op *op);
void rd_quota_send(hd_rd *rd, rd_op *op);
void rd_quota_degraded(hd_rd *rd, hd_app *app, hd_ad_caller to);
/* quota script: what = "take" | "release" | "set" (n = this node's connections); op owned. */
void rd_quota_call(hd_rd *rd, hd_app *app, const char *what, uint32_t n, rd_op *op);
void rd_channel_message(hd_rd *rd, rd_chan *c, const char *payload, size_t len); /* P:m:<A>:<c> */

/* ---- reads.c ---- */
void rd_op_read(hd_adapter *a, hd_app *app, enum hd_ad_read what, const char *arg, hd_ad_caller reply_to);
void rd_read_send(hd_rd *rd, rd_op *op);
void rd_reply_status(hd_rd *rd, hd_ad_caller to, int status); /* a bodyless reply */

/* ---- lease.c ---- */
void rd_lease_init(hd_rd *rd);
void rd_lease_tick(hd_rd *rd, uint64_t now_ms); /* the lease ran out locally: stop writing, re-register */
void rd_lease_register(hd_rd *rd);            /* the handshake is done: register the lease */
void rd_lease_renew_timer(hd_rd *rd, bool on);
void rd_lease_lost(hd_rd *rd, uint32_t k);    /* a fenced reply said LEASE_LOST (k: sent under) */
void rd_reap_scan(hd_rd *rd);
void rd_holds_poll(hd_rd *rd);
void rd_leave_start(hd_rd *rd);               /* graceful leave: reap itself */
void rd_leave_done_now(hd_rd *rd);            /* leaving -> left, wake leave_cluster */
/* Report a member / reap reply's webhooks (hooks and subscription counts). */
void rd_report_counts(hd_rd *rd, const redisReply *triples);

/* ---- resync.c ---- */
void rd_resync_start(hd_rd *rd, int reason);  /* after register: re-assert everything */
void rd_resync_end_marker(hd_rd *rd, unsigned gen); /* RESYNC_END of resync gen drained */
void rd_resync_maybe_finish(hd_rd *rd);       /* every assertion sent: quota set, sweep, up */
void rd_dirty_tick(hd_rd *rd, uint64_t now_ms);

/* ---- metrics.c ---- */
void rd_rtt_observe(hd_rd *rd, int kind, uint64_t us);
void rd_metrics(hd_adapter *a, hd_buf *out);
bool rd_ready(hd_adapter *a, hd_buf *why);

/* ---- small helpers ---- */
/* Reply element i as an integer (integer or numeric string); dflt when absent. */
long long rd_int(const redisReply *r, size_t i, long long dflt);
void rd_set_why(hd_rd *rd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif /* HD_ADAPTER_REDIS_H */
