/* registry.c - channel table of one app: shards, per-channel locks,
 * presence members, cache slot. See channels.h for the design.
 *
 * THREADING: any thread. Lock order shard -> channel; never the reverse.
 */
#include <pthread.h>
#include <string.h>

#include "channels_internal.h"

#define HD_SHARDS 64 /* power of two */
#define HD_COUNT_THROTTLE_ABOVE 100
#define HD_COUNT_THROTTLE_MS 5000

typedef struct hd_shard {
    pthread_mutex_t lock;
    hd_map channels; /* {lock} name -> hd_channel */
} hd_shard;

struct hd_registry {
    unsigned n_threads;
    hd_shard shards[HD_SHARDS];
};

hd_registry *hd_registry_create(unsigned n_threads)
{
    hd_assert(n_threads >= 1 && n_threads <= HD_MAX_IO_THREADS);
    hd_registry *r = hd_calloc(1, sizeof *r);
    r->n_threads = n_threads;
    for (unsigned i = 0; i < HD_SHARDS; i++) {
        pthread_mutex_init(&r->shards[i].lock, NULL);
        hd_map_init(&r->shards[i].channels);
    }
    return r;
}

static void channel_free(hd_channel *ch)
{
    hd_map_iter it = {0};
    hd_map_entry *e;
    while ((e = hd_map_next(&ch->members, &it)))
        hd_channels__member_free(e->value);
    hd_map_deinit(&ch->members);
    hd_free(ch->cache_frame);
    pthread_mutex_destroy(&ch->lock);
    pthread_mutex_destroy(&ch->order);
    hd_free(ch);
}

void hd_registry_destroy(hd_registry *r)
{
    if (!r)
        return;
    for (unsigned i = 0; i < HD_SHARDS; i++) {
        hd_map_iter it = {0};
        hd_map_entry *e;
        while ((e = hd_map_next(&r->shards[i].channels, &it)))
            channel_free(e->value);
        hd_map_deinit(&r->shards[i].channels);
        pthread_mutex_destroy(&r->shards[i].lock);
    }
    hd_free(r);
}

static hd_channel *channel_new(const char *name, size_t len)
{
    hd_channel *ch = hd_calloc(1, sizeof *ch);
    pthread_mutex_init(&ch->lock, NULL);
    pthread_mutex_init(&ch->order, NULL);
    hd_map_init(&ch->members);
    if (hd_channel_classify(name, len, len, &ch->type) != 0) {
        /* internal names (#watch-...) are not client-valid: public, no cache */
        ch->type.kind = HD_CHANNEL_PUBLIC;
        ch->type.cache = false;
    }
    return ch;
}

hd_channel *hd_registry_acquire(hd_registry *r, const char *name, size_t len, bool create)
{
    unsigned s = hd_hash(name, len) & (HD_SHARDS - 1);
    hd_shard *sh = &r->shards[s];
    pthread_mutex_lock(&sh->lock);
    hd_map_entry *e = hd_map_find(&sh->channels, name, len);
    hd_channel *ch = e ? e->value : NULL;
    if (!ch && create) {
        ch = channel_new(name, len);
        ch->shard = s;
        ch->entry = hd_map_insert(&sh->channels, name, len, ch);
    }
    if (ch)
        ch->refs++;
    pthread_mutex_unlock(&sh->lock);
    return ch;
}

void hd_channel_ref(hd_registry *r, hd_channel *ch)
{
    hd_shard *sh = &r->shards[ch->shard];
    pthread_mutex_lock(&sh->lock);
    ch->refs++;
    pthread_mutex_unlock(&sh->lock);
}

/* Caller holds the shard lock. */
static bool channel_unused_locked(hd_channel *ch, uint64_t now_ms)
{
    if (ch->refs)
        return false;
    pthread_mutex_lock(&ch->lock);
    bool cache_live = ch->cache_frame && ch->cache_expires_ms > now_ms;
    pthread_mutex_unlock(&ch->lock);
    return !cache_live;
}

void hd_registry_release(hd_registry *r, hd_channel *ch)
{
    if (!ch)
        return;
    hd_shard *sh = &r->shards[ch->shard];
    pthread_mutex_lock(&sh->lock);
    hd_assert(ch->refs > 0);
    ch->refs--;
    bool drop = channel_unused_locked(ch, hd_mono_ms());
    if (drop)
        hd_map_remove(&sh->channels, ch->entry->key, ch->entry->key_len);
    pthread_mutex_unlock(&sh->lock);
    if (drop)
        channel_free(ch);
}

void hd_registry_sweep(hd_registry *r, uint64_t now_ms)
{
    for (unsigned i = 0; i < HD_SHARDS; i++) {
        hd_shard *sh = &r->shards[i];
        pthread_mutex_lock(&sh->lock);
        hd_map_iter it = {0};
        hd_map_entry *e;
        while ((e = hd_map_next(&sh->channels, &it))) {
            hd_channel *ch = e->value;
            if (channel_unused_locked(ch, now_ms)) {
                hd_map_remove(&sh->channels, e->key, e->key_len);
                channel_free(ch);
            }
        }
        pthread_mutex_unlock(&sh->lock);
    }
}

size_t hd_registry_channel_count(hd_registry *r)
{
    size_t n = 0;
    for (unsigned i = 0; i < HD_SHARDS; i++) {
        pthread_mutex_lock(&r->shards[i].lock);
        n += r->shards[i].channels.count;
        pthread_mutex_unlock(&r->shards[i].lock);
    }
    return n;
}

hd_census_type hd_census_type_of(const char *name, hd_channel_type type)
{
    /* #watch-U is stored as public (channel_new): the name decides */
    if (name[0] == '#' || type.kind == HD_CHANNEL_SERVER_TO_USER)
        return HD_CENSUS_INTERNAL;
    if (type.cache)
        return HD_CENSUS_CACHE;
    switch (type.kind) {
    case HD_CHANNEL_PRIVATE: return HD_CENSUS_PRIVATE;
    case HD_CHANNEL_PRIVATE_ENCRYPTED: return HD_CENSUS_ENCRYPTED;
    case HD_CHANNEL_PRESENCE: return HD_CENSUS_PRESENCE;
    default: return HD_CENSUS_PUBLIC;
    }
}

const char *hd_census_type_label(hd_census_type t)
{
    static const char *const labels[HD_CENSUS_TYPES] = {"public", "private", "encrypted",
                                                        "presence", "cache", "internal"};
    return t < HD_CENSUS_TYPES ? labels[t] : "public";
}

void hd_registry_census(hd_registry *r, hd_census *out)
{
    *out = (hd_census){0};
    for (unsigned i = 0; i < HD_SHARDS; i++) {
        hd_shard *sh = &r->shards[i];
        pthread_mutex_lock(&sh->lock);
        hd_map_iter it = {0};
        hd_map_entry *e;
        while ((e = hd_map_next(&sh->channels, &it))) {
            hd_channel *ch = e->value;
            out->channels[hd_census_type_of(e->key, ch->type)]++;
            if (ch->type.kind != HD_CHANNEL_PRESENCE)
                continue;
            pthread_mutex_lock(&ch->lock); /* shard -> channel: the documented order */
            out->presence_members += ch->members.count;
            pthread_mutex_unlock(&ch->lock);
        }
        pthread_mutex_unlock(&sh->lock);
    }
}

/* Collect referenced occupied channels of one shard, then visit them with
 * no lock held, so fn may take channel locks or publish. */
static size_t shard_collect(hd_shard *sh, const char *prefix, size_t plen, hd_channel ***out, size_t *cap)
{
    size_t n = 0;
    pthread_mutex_lock(&sh->lock);
    hd_map_iter it = {0};
    hd_map_entry *e;
    while ((e = hd_map_next(&sh->channels, &it))) {
        hd_channel *ch = e->value;
        if (prefix && (e->key_len < plen || memcmp(e->key, prefix, plen) != 0))
            continue;
        pthread_mutex_lock(&ch->lock);
        bool occupied = ch->subscribers > 0;
        pthread_mutex_unlock(&ch->lock);
        if (!occupied)
            continue;
        if (n == *cap) {
            *cap = *cap ? *cap * 2 : 16;
            *out = hd_realloc(*out, *cap * sizeof **out);
        }
        ch->refs++;
        (*out)[n++] = ch;
    }
    pthread_mutex_unlock(&sh->lock);
    return n;
}

void hd_registry_foreach_occupied(hd_registry *r, const char *prefix, void (*fn)(hd_channel *ch, void *arg),
                                  void *arg)
{
    hd_channel **list = NULL;
    size_t cap = 0, plen = prefix ? strlen(prefix) : 0;
    for (unsigned i = 0; i < HD_SHARDS; i++) {
        size_t n = shard_collect(&r->shards[i], prefix, plen, &list, &cap);
        for (size_t k = 0; k < n; k++) {
            fn(list[k], arg);
            hd_registry_release(r, list[k]);
        }
    }
    hd_free(list);
}

const char *hd_channel_name(const hd_channel *ch)
{
    return ch->entry->key;
}

size_t hd_channel_name_len(const hd_channel *ch)
{
    return ch->entry->key_len;
}

hd_channel_type hd_channel_get_type(const hd_channel *ch)
{
    return ch->type;
}
