/* webhooks_internal.h - what the webhook pool's .c files share: the event,
 * the per-endpoint queue, the breaker, the per-channel state, the pool.
 *
 * DESIGN
 * ------
 * A report becomes an hd_wh_event: one event object serialised once as
 * compact JSON (payload.c), reference-counted and pushed onto the bounded
 * queue of every endpoint that wants it (queue.c). Occupancy and presence
 * reports first go through a per-(app, channel[, user]) state machine
 * (state.c) that makes the "up" and "down" events alternate and holds the
 * "down" ones back for vacate_delay_ms. Sender threads (sender.c) own a
 * share of the endpoints and of the state shards: they fire due timers,
 * cut batches, sign and post them with libcurl's multi interface, retry
 * with backoff and keep a circuit breaker per endpoint (breaker.c).
 * stats.c renders the counters kept here.
 *
 * Lock order: shard lock -> endpoint lock. The sender never holds either
 * while it calls libcurl or the server's probe. Nothing in this module
 * takes a server lock while holding one of its own.
 *
 * THREADING
 * ---------
 * Fields name their lock as {lock}; {sender} fields belong to the owning
 * sender thread; atomics may be read by any thread (the metrics thread).
 *
 * Reloads (hd_webhooks_app_set, main thread) never change or free what
 * another thread may hold: they build a new hd_wh_ep_conf / hd_wh_set,
 * fill it completely and publish it with a release store (readers load
 * with acquire); new endpoints are appended to append-only lists the same
 * way. Nothing published is freed before hd_webhooks_destroy().
 */
#ifndef HD_WEBHOOKS_INTERNAL_H
#define HD_WEBHOOKS_INTERNAL_H

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/common.h"
#include "common/map.h"
#include "webhooks.h"

/* ---- event types (PUSHER_PROTOCOL.md §10) ---- */

typedef enum hd_wh_type {
    HD_WH_CHANNEL_OCCUPIED,
    HD_WH_CHANNEL_VACATED,
    HD_WH_MEMBER_ADDED,
    HD_WH_MEMBER_REMOVED,
    HD_WH_CLIENT_EVENT,
    HD_WH_CACHE_MISS,
    HD_WH_SUBSCRIPTION_COUNT,
    HD_WH_NTYPES,
} hd_wh_type;

#define HD_WH_BIT(t) (1u << (t))

extern const char *const hd_webhooks__type_names[HD_WH_NTYPES];

/* The type named `name`, or -1. */
int hd_webhooks__type_of(const char *name);

/* ---- events and payloads (payload.c) ---- */

/* One event object, immutable once built; shared by every endpoint queue
 * that holds it (refs). */
typedef struct hd_wh_event {
    atomic_uint refs;
    uint64_t reported_ms; /* hd_mono_ms() when reported: retry expiry, latency */
    size_t len;
    char json[]; /* {"name":...}, NUL-terminated */
} hd_wh_event;

/* A new event holding a copy of json (refs = 1). */
hd_wh_event *hd_webhooks__event_new(const char *json, size_t len, uint64_t reported_ms);
void hd_webhooks__event_ref(hd_wh_event *ev);
void hd_webhooks__event_unref(hd_wh_event *ev); /* NULL-safe */

/* {"name":<type>,"channel":<channel>[,"user_id":<user_id>]} for the
 * occupancy, member and cache_miss types; user_id NULL leaves it out. */
void hd_webhooks__event_simple(hd_buf *b, hd_wh_type type, const char *channel, const char *user_id);
/* {"name":"client_event","channel":..,"event":..,"data":<data_json as is>,
 *  "socket_id":..[,"user_id":..]} */
void hd_webhooks__event_client(hd_buf *b, const char *channel, const char *event, const char *data_json,
                               const char *socket_id, const char *user_id);
/* {"name":"subscription_count","channel":..,"subscription_count":N} */
void hd_webhooks__event_count(hd_buf *b, const char *channel, uint32_t count);
/* Does an endpoint with this event mask and filter take (type, channel)? */
bool hd_webhooks__matches(uint32_t mask, const char *prefix, const char *suffix, hd_wh_type type,
                          const char *channel);

/* ---- bounded per-endpoint queue (queue.c) ---- */

/* FIFO ring of event references, at most `limit` entries; grows by
 * doubling up to the limit. The first `protect` entries of a push are the
 * batch in flight: they are never evicted. */
typedef struct hd_wh_queue {
    hd_wh_event **slots;
    uint32_t alloc; /* slots allocated (power of two) */
    uint32_t head;
    uint32_t count;
    uint32_t limit;
} hd_wh_queue;

void hd_webhooks__queue_init(hd_wh_queue *q, uint32_t limit);
/* Unrefs whatever is left. */
void hd_webhooks__queue_deinit(hd_wh_queue *q);
/* Append ev (the queue takes the caller's reference). When the queue is
 * full the oldest entry at index >= protect is evicted to make room and
 * returned; when every entry is protected, ev itself is refused and
 * returned. NULL: nothing dropped. The caller unrefs what is returned. */
hd_wh_event *hd_webhooks__queue_push(hd_wh_queue *q, hd_wh_event *ev, uint32_t protect);
hd_wh_event *hd_webhooks__queue_at(const hd_wh_queue *q, uint32_t i);
/* Remove and return entry i (0 = oldest); O(i). */
hd_wh_event *hd_webhooks__queue_remove(hd_wh_queue *q, uint32_t i);

/* Append {"time_ms":T,"events":[e0,...]} built from the first n events of
 * q, their JSON pasted as is (payload.c). */
void hd_webhooks__body(hd_buf *b, uint64_t time_ms, const hd_wh_queue *q, uint32_t n);

/* ---- breaker, backoff, outcome (breaker.c) ---- */

typedef enum hd_wh_breaker_state {
    HD_WH_CLOSED = 0,
    HD_WH_HALF_OPEN = 1,
    HD_WH_OPEN = 2,
} hd_wh_breaker_state;

typedef struct hd_wh_breaker {
    hd_wh_breaker_state state;
    uint32_t failures; /* consecutive */
    uint32_t threshold;
    uint32_t cooldown_ms;
    uint64_t opened_ms;
} hd_wh_breaker;

extern const char *const hd_webhooks__breaker_names[3];

void hd_webhooks__breaker_init(hd_wh_breaker *br, uint32_t threshold, uint32_t cooldown_ms);
/* May a request start at now? An open breaker whose cool-down is over
 * turns half-open and allows one (the probe). When not, *retry_at is when
 * to ask again. */
bool hd_webhooks__breaker_allow(hd_wh_breaker *br, uint64_t now, uint64_t *retry_at);
/* Record a request's result: success closes, a failure counts and opens
 * at threshold (a half-open probe that fails reopens at once). */
void hd_webhooks__breaker_record(hd_wh_breaker *br, bool failure, uint64_t now);

/* Delay before retry number `attempt` (1 = first retry): the exponential
 * step min(initial * 2^(attempt-1), cap) with "equal jitter": half of the
 * step plus rnd spread over the other half. */
uint64_t hd_webhooks__backoff_ms(uint32_t attempt, uint32_t initial_ms, uint32_t cap_ms, uint32_t rnd);

typedef enum hd_wh_outcome {
    HD_WH_DELIVERED, /* 2xx */
    HD_WH_RETRY,     /* network error, timeout, 5xx, 429, 408, anything else odd */
    HD_WH_REJECTED,  /* other 4xx: the endpoint refuses this body for good */
} hd_wh_outcome;

hd_wh_outcome hd_webhooks__classify(CURLcode cc, long status);

/* ---- per-channel alternation (state.c) ---- */

/* One (app, channel) for occupied/vacated, or (app, channel, user) for
 * member_added/removed. balance = ups reported - downs reported: reports
 * of one key may arrive out of order (an io thread and a cleanup worker
 * race to report), so the truth is "balance > 0", not the last report. */
typedef struct hd_wh_flip {
    int32_t balance;
    bool told;    /* the receivers were last sent "up" */
    bool pending; /* a "down" is held back (vacate delay) */
    uint32_t gen; /* changes at every arm / cancel: stale timers see it */
} hd_wh_flip;

typedef enum hd_wh_flip_act {
    HD_WH_FLIP_NONE,
    HD_WH_FLIP_EMIT,   /* send the event now */
    HD_WH_FLIP_ARM,    /* hold a "down" back: (re)start its timer */
    HD_WH_FLIP_CANCEL, /* an "up" cancelled a held-back "down": send neither */
} hd_wh_flip_act;

hd_wh_flip_act hd_webhooks__flip_up(hd_wh_flip *f);
hd_wh_flip_act hd_webhooks__flip_down(hd_wh_flip *f);
/* The timer armed at generation gen is due and the probe says whether the
 * channel is still occupied / the user still present: EMIT the "down",
 * ARM again (an "up" report is on its way) or NONE (stale timer). */
hd_wh_flip_act hd_webhooks__flip_fire(hd_wh_flip *f, uint32_t gen, bool still_up);
bool hd_webhooks__flip_idle(const hd_wh_flip *f);

#define HD_WH_SHARDS 16u
#define HD_WH_RECHECK_MS 50u /* probe said "still there": look again after */
#define HD_WH_ORPHAN_MS 5000u /* a negative balance older than this is an orphan "down" (state.c) */

typedef struct hd_wh_key hd_wh_key; /* state.c */

typedef struct hd_wh_timer {
    uint64_t due_ms;
    uint64_t seq; /* FIFO among equal dues: member_removed before channel_vacated */
    hd_wh_key *key;
} hd_wh_timer;

typedef struct hd_wh_shard {
    pthread_mutex_t lock;
    hd_map keys;       /* {lock} map key -> hd_wh_key */
    hd_wh_timer *heap; /* {lock} min-heap by (due_ms, seq) */
    size_t n_heap, cap_heap;
    uint64_t seq; /* {lock} */
} hd_wh_shard;

/* ---- endpoints and senders ---- */

typedef enum hd_wh_drop {
    HD_WH_DROP_QUEUE_FULL,
    HD_WH_DROP_REJECTED,
    HD_WH_DROP_RETRY_EXPIRED,
    HD_WH_DROP_SHUTDOWN,
    HD_WH_NDROPS,
} hd_wh_drop;

extern const char *const hd_webhooks__drop_names[HD_WH_NDROPS];

#define HD_WH_BATCH_BUCKETS 11 /* 10 bounds + +Inf */
#define HD_WH_LAT_BUCKETS 15   /* 14 bounds + +Inf */
extern const uint32_t hd_webhooks__batch_le[HD_WH_BATCH_BUCKETS - 1];
extern const uint32_t hd_webhooks__lat_le_ms[HD_WH_LAT_BUCKETS - 1];

typedef struct hd_wh_counters {
    atomic_uint_fast64_t queued, sent, retried;
    atomic_uint_fast64_t requests[3]; /* by hd_wh_outcome */
    atomic_uint_fast64_t dropped[HD_WH_NDROPS];
    atomic_uint_fast64_t batch_bucket[HD_WH_BATCH_BUCKETS]; /* events per delivered request */
    atomic_uint_fast64_t batch_events;
} hd_wh_counters;

typedef struct hd_webhooks hd_webhooks;

/* What an endpoint sends with, for one version of its app's settings:
 * immutable once published in hd_wh_endpoint.cur. A reload publishes a
 * new one; the old ones stay (chained by older) until the pool is freed,
 * so a thread that loaded one may keep using it. */
typedef struct hd_wh_ep_conf {
    const hd_app_config *app;      /* key (X-Pusher-Key), secret (signature) */
    const hd_webhook_config *conf; /* filter, event types, headers */
    uint32_t mask;                 /* HD_WH_BIT(type) of event_types */
    struct curl_slist *headers;    /* fixed request headers */
    struct hd_wh_ep_conf *older;
} hd_wh_ep_conf;

typedef struct hd_wh_endpoint {
    /* immutable after create */
    hd_webhooks *wh;
    unsigned app;       /* the server's app slot */
    const char *app_id; /* logs; the slot's id never changes */
    const char *url;
    unsigned sender;
    char *labels; /* app="..",url=".." (escaped) */
    uint32_t capacity; /* q.limit, for the metrics (q itself is {lock}) */

    _Atomic(const hd_wh_ep_conf *) cur; /* acquire: reporters and the sender */
    _Atomic(struct hd_wh_endpoint *) next_owned; /* the owning sender's list (append-only) */
    _Atomic(struct hd_wh_endpoint *) next_all;   /* the pool's list, for the metrics (append-only) */
    struct hd_wh_endpoint *app_next;             /* main thread: the slot's endpoints, ever */

    pthread_mutex_t lock;
    hd_wh_queue q;      /* {lock} oldest first; the batch in flight is its head */
    uint32_t batch_len; /* {lock} head entries in flight (0 = none) */
    bool in_flight;     /* {lock} */

    /* {sender} */
    CURL *easy;
    hd_buf body;
    struct curl_slist *req_headers;
    uint32_t attempts; /* failed attempts of the head since the last success */
    uint64_t retry_at;
    uint64_t started_ms;
    hd_wh_breaker br;

    atomic_uint depth;       /* mirror of q.count for the metrics */
    atomic_uint high_water;  /* most q.count has been; written under lock */
    atomic_int breaker_pub;  /* mirror of br.state */
    hd_wh_counters ctr;
} hd_wh_endpoint;

typedef struct hd_wh_sender {
    hd_webhooks *wh;
    unsigned index;
    pthread_t thread;
    bool started;
    CURLM *multi;
    _Atomic(hd_wh_endpoint *) eps; /* owned endpoints: appended by the main thread, walked by this sender */
    hd_wh_endpoint *eps_tail;      /* main thread */
    uint64_t rng; /* {sender} xorshift state for jitter */
    bool timers_flushed;
} hd_wh_sender;

/* The endpoints of one app slot for one version of its settings:
 * immutable once published in hd_wh_app.set. */
typedef struct hd_wh_set {
    uint32_t mask; /* union of the endpoints' masks */
    size_t n;
    struct hd_wh_set *older; /* freed with the pool */
    hd_wh_endpoint *eps[];
} hd_wh_set;

typedef struct hd_wh_app {
    _Atomic(const hd_wh_set *) set; /* acquire; NULL = no endpoint */
    hd_wh_set *history;             /* main thread: every set published, newest first */
    hd_wh_endpoint *eps;            /* main thread: every endpoint made for the slot (app_next) */
} hd_wh_app;

struct hd_webhooks {
    const hd_config *cfg;
    hd_webhooks_probe probe;
    hd_wh_app *apps; /* max_apps slots, allocated once: never moves */
    size_t max_apps;
    _Atomic(hd_wh_endpoint *) all; /* every endpoint ever made (next_all) */
    hd_wh_endpoint *all_tail;      /* main thread */
    size_t n_made;                 /* main thread: endpoints made (spreads them over senders) */
    atomic_size_t n_configured;    /* endpoints in the current sets (metrics) */
    bool started;                  /* main thread: libcurl and the senders run */
    bool failed;                   /* main thread: they could not start: webhooks are off */
    uint32_t orphan_ms;            /* HD_WH_ORPHAN_MS (tests shorten it before any report) */
    hd_wh_shard shards[HD_WH_SHARDS];
    hd_wh_sender *senders;
    unsigned n_senders;

    atomic_bool closing;  /* reports are ignored */
    atomic_bool stopping; /* senders flush and leave */
    uint64_t deadline_ms; /* flush until (set before stopping) */
    atomic_uint timer_senders_left;

    atomic_uint_fast64_t in_flight;
    atomic_uint_fast64_t delayed_pending;
    atomic_uint_fast64_t cancelled_rejoin, cancelled_probe;
    atomic_uint_fast64_t lat_bucket[HD_WH_LAT_BUCKETS];
    atomic_uint_fast64_t lat_sum_ms;
};

/* Walk an append-only endpoint list (acquire loads: an endpoint appended
 * by the main thread is seen complete). */
#define HD_WH_EACH(ep, head, link) \
    for (hd_wh_endpoint *ep = atomic_load_explicit(&(head), memory_order_acquire); ep; \
         ep = atomic_load_explicit(&ep->link, memory_order_acquire))

static inline const hd_wh_ep_conf *hd_webhooks__ep_conf(const hd_wh_endpoint *ep)
{
    return atomic_load_explicit(&ep->cur, memory_order_acquire);
}

/* webhooks.c: push a built event to every endpoint of app that wants
 * (type, channel). Takes no lock of the caller's. */
void hd_webhooks__emit(hd_webhooks *wh, unsigned app, hd_wh_type type, const char *channel, const hd_buf *json);
/* Slot app's current endpoints, or NULL (none, or app out of range). */
const hd_wh_set *hd_webhooks__set(const hd_webhooks *wh, unsigned app);
/* Drop n events of ep for reason: counted, and logged when the total for
 * the reason reaches a power of two (never silent, never a flood). */
void hd_webhooks__count_drop(hd_wh_endpoint *ep, hd_wh_drop reason, uint64_t n, const char *detail);
/* endpoints.c: free every endpoint, conf and set (senders joined). */
void hd_webhooks__endpoints_free(hd_webhooks *wh);
/* Events per request: webhooks.max_batch_size, or 1 with batching off
 * (Pusher sends one event per request then). */
uint32_t hd_webhooks__batch_max(const hd_webhooks *wh);

/* state.c */
void hd_webhooks__shards_init(hd_webhooks *wh);
void hd_webhooks__shards_deinit(hd_webhooks *wh);
/* An up (occupied / member_added) or down report for a key. */
void hd_webhooks__state_report(hd_webhooks *wh, unsigned app, const char *channel, const char *user_id, bool up);
/* Fire shard s's due timers (all of them when flush): probes, emits.
 * Returns the next due time, or UINT64_MAX. */
uint64_t hd_webhooks__timers_run(hd_webhooks *wh, unsigned s, uint64_t now, bool flush);
unsigned hd_webhooks__shard_of(size_t app_index, const char *channel);

/* sender.c */
int hd_webhooks__senders_start(hd_webhooks *wh);
void hd_webhooks__senders_join(hd_webhooks *wh);
void hd_webhooks__wake(hd_webhooks *wh, unsigned sender);
/* Endpoint request setup / teardown (main thread, before the endpoint is
 * published / after the senders are joined). */
int hd_webhooks__endpoint_init(hd_wh_endpoint *ep);
void hd_webhooks__endpoint_deinit(hd_wh_endpoint *ep);
/* The fixed request headers for app's endpoint conf (X-Pusher-Key, the
 * configured ones); logs and skips reserved or malformed ones. */
struct curl_slist *hd_webhooks__fixed_headers(const hd_app_config *app, const hd_webhook_config *conf);

#endif /* HD_WEBHOOKS_INTERNAL_H */
