/* channels.h - the channel and presence registry of one app.
 *
 * DESIGN
 * ------
 * A registry maps channel name -> hd_channel. The table is split into
 * shards, each with its own mutex, so lookups of different channels do not
 * contend; each channel has its own short lock guarding its counts,
 * presence members and cache slot. No global lock exists on any hot path.
 *
 * Lifetime: hd_registry_acquire() returns a referenced channel (creating
 * it if asked); every subscription holds one reference, and so does any
 * thread while it uses a channel. hd_registry_release() drops it; a
 * channel with no references and no live cache entry is freed at once.
 *
 * Per channel the registry keeps: the subscriber count (connections), the
 * count per io thread (so a publish only wakes threads that have local
 * subscribers), presence members deduplicated by user id (user_key, the
 * string form) with a socket refcount and the first user_info received,
 * and the last cached event for cache channels.
 *
 * Lock order: order lock -> shard lock -> channel lock. A channel lock is
 * never held while taking a shard lock, and no callback runs under a
 * channel lock.
 *
 * THREADING
 * ---------
 * Every function is safe from any thread.
 */
#ifndef HD_CHANNELS_H
#define HD_CHANNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/common.h"
#include "protocol/protocol.h"

#define HD_MAX_IO_THREADS 64

typedef struct hd_registry hd_registry;
typedef struct hd_channel hd_channel;

/* n_threads: io threads whose per-thread counts are kept (1..HD_MAX_IO_THREADS). */
hd_registry *hd_registry_create(unsigned n_threads);
/* Frees every channel; no other thread may use r any more. NULL is a no-op. */
void hd_registry_destroy(hd_registry *r);

/* Referenced channel named name, created (with type from the name) when
 * create is true and it does not exist; NULL when absent and !create. */
hd_channel *hd_registry_acquire(hd_registry *r, const char *name, size_t len, bool create);
/* Take one more reference on a channel the caller already references. */
void hd_channel_ref(hd_registry *r, hd_channel *ch);
/* Drop a reference; ch may be freed. NULL is a no-op. */
void hd_registry_release(hd_registry *r, hd_channel *ch);

/* Call fn for every channel with at least one subscriber whose name starts
 * with prefix (NULL = all), with a reference held; fn must not keep ch. */
void hd_registry_foreach_occupied(hd_registry *r, const char *prefix, void (*fn)(hd_channel *ch, void *arg),
                                  void *arg);
/* Drop channels that are unreferenced and whose cache has expired. */
void hd_registry_sweep(hd_registry *r, uint64_t now_ms);
/* Channels present in the table (for leak checks in tests and metrics). */
size_t hd_registry_channel_count(hd_registry *r);

/* Channel types as the metrics count them (herald_channels_by_type): the
 * client prefixes, every cache- variant as cache, and herald's own '#'
 * channels (#server-to-user-U, #watch-U) as internal. */
typedef enum hd_census_type {
    HD_CENSUS_PUBLIC,
    HD_CENSUS_PRIVATE,
    HD_CENSUS_ENCRYPTED,
    HD_CENSUS_PRESENCE,
    HD_CENSUS_CACHE,
    HD_CENSUS_INTERNAL,
    HD_CENSUS_TYPES
} hd_census_type;

hd_census_type hd_census_type_of(const char *name, hd_channel_type type);
const char *hd_census_type_label(hd_census_type t);

typedef struct hd_census {
    size_t channels[HD_CENSUS_TYPES]; /* every channel in the table, by type */
    size_t presence_members;          /* distinct users, summed over presence(-cache) channels */
} hd_census;

/* Count the table for a scrape: each shard lock is held while its
 * channels are counted, and each presence channel's lock just long enough
 * to read its member count. Nothing is kept on subscribe or unsubscribe. */
void hd_registry_census(hd_registry *r, hd_census *out);

const char *hd_channel_name(const hd_channel *ch);
size_t hd_channel_name_len(const hd_channel *ch);
hd_channel_type hd_channel_get_type(const hd_channel *ch);

/* A presence member as sent in channel_data. user_key is the string form
 * of user_id (dedup key); user_id_json and user_info_json are raw JSON
 * texts (user_info_json may be NULL: shown as null). */
typedef struct hd_member {
    const char *user_key;
    size_t user_key_len;
    const char *user_id_json;
    size_t user_id_json_len;
    const char *user_info_json;
    size_t user_info_json_len;
} hd_member;

typedef struct hd_join_result {
    uint32_t subscribers; /* after the join */
    bool occupied;        /* this join took the channel from 0 to 1 subscribers */
    bool member_added;    /* presence: the user's first socket in the channel */
} hd_join_result;

/* Add one subscription made on io thread `thread`. member is required on
 * presence channels and ignored elsewhere. With max_members > 0 a new user
 * beyond that many is refused with HD_ELIMIT and nothing changes. When
 * presence_json is non-NULL on a presence channel it receives, built under
 * the same lock, {"presence":{"ids":[...],"hash":{...},"count":N}}. */
int hd_channel_join(hd_channel *ch, unsigned thread, const hd_member *member, uint32_t max_members,
                    hd_buf *presence_json, hd_join_result *out);

typedef struct hd_leave_result {
    uint32_t subscribers; /* after the leave */
    bool vacated;         /* this leave took the channel to 0 subscribers */
    bool member_removed;  /* presence: the user's last socket left */
} hd_leave_result;

/* Remove one subscription made on io thread `thread`; user_key is the
 * presence dedup key (NULL elsewhere). */
void hd_channel_leave(hd_channel *ch, unsigned thread, const char *user_key, size_t user_key_len,
                      hd_leave_result *out);

/* One subscription leaving: the io thread it was made on and, on presence
 * channels, its user's dedup key. */
typedef struct hd_leave_req {
    unsigned thread;
    const char *user_key;
    size_t user_key_len;
} hd_leave_req;

/* hd_channel_leave for n subscriptions under one hold of the channel's
 * lock (cleanup batches); out[i] is what reqs[i] did, in order. */
void hd_channel_leave_many(hd_channel *ch, const hd_leave_req *reqs, size_t n, hd_leave_result *out);

/* Counts: connections, and distinct presence users (0 elsewhere). */
void hd_channel_counts(hd_channel *ch, uint32_t *subscribers, uint32_t *users);
/* Copy the per-io-thread subscriber counts into counts[0..n). */
void hd_channel_thread_counts(hd_channel *ch, uint32_t *counts, unsigned n);
/* Append {"users":[{"id":"1"},...]} (distinct ids, as strings). */
void hd_channel_users_json(hd_channel *ch, hd_buf *out);
/* True while the user has at least one socket in the presence channel. */
bool hd_channel_has_member(hd_channel *ch, const char *user_key, size_t len);

/* This node's state of one presence user (the Redis adapter asserts it to
 * the cluster): true while the user has a socket in ch, with *sockets its
 * socket count (0 and false when absent); user_id_json / user_info_json
 * (each may be NULL) get the member's raw JSON texts appended (nothing for
 * a member without user_info). One consistent read under the channel lock. */
bool hd_channel_member_sockets(hd_channel *ch, const char *user_key, size_t len, uint32_t *sockets,
                               hd_buf *user_id_json, hd_buf *user_info_json);
/* Every presence member with its socket count: copied under the channel
 * lock, then fn runs for each copy with no lock held (fn may take locks;
 * m's strings are NUL-terminated and valid during the call only). */
typedef void (*hd_member_visit_fn)(const hd_member *m, uint32_t sockets, void *arg);
void hd_channel_foreach_member(hd_channel *ch, hd_member_visit_fn fn, void *arg);
/* Append {"presence":{"ids":[...],"hash":{...},"count":N}} as hd_channel_join
 * builds it (an empty snapshot on a channel without members). */
void hd_channel_presence_json(hd_channel *ch, hd_buf *out);

/* Keep frame (a complete JSON event) as the channel's cached event until expires_ms. */
void hd_channel_cache_store(hd_channel *ch, const char *frame, size_t len, uint64_t expires_ms);
/* Append the cached frame to out and return true, or false when empty/expired. */
bool hd_channel_cache_load(hd_channel *ch, uint64_t now_ms, hd_buf *out, uint64_t *ttl_left_ms);

/* The order lock serialises a channel's transitions together with their
 * announcements: hold it around join/leave and the publishing of what they
 * crossed (member_added, member_removed, watchlist online/offline), so
 * every io thread's inbox receives those events in the order they happened
 * (a user leaving on one thread and rejoining on another can otherwise be
 * announced added-then-removed). It may be held while publishing (which
 * takes shard and channel locks), never the other way round. The caller
 * must hold a reference for as long as it holds the lock. */
void hd_channel_order_lock(hd_channel *ch);
void hd_channel_order_unlock(hd_channel *ch);

/* True for the first cache miss since the cache was last filled (or the
 * channel created): the cache_miss webhook is sent once per empty spell (§5). */
bool hd_channel_cache_miss_first(hd_channel *ch);

/* subscription_count throttle (§4.5): true when an update with this count
 * should go out now (always at <= 100 subscribers, else at most every 5 s). */
bool hd_channel_count_update_due(hd_channel *ch, uint32_t subscribers, uint64_t now_ms);

#endif /* HD_CHANNELS_H */
