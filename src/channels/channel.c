/* channel.c - one channel's state under its own short lock: subscriber
 * counts, presence members, cache slot, subscription_count throttle.
 *
 * THREADING: any thread; each function takes only ch->lock, briefly, and
 * builds its output under it so every result is one consistent snapshot.
 */
#include <string.h>

#include "channels_internal.h"

#define HD_COUNT_THROTTLE_ABOVE 100
#define HD_COUNT_THROTTLE_MS 5000

void hd_channels__member_free(hd_presence_member *m)
{
    hd_free(m->user_id_json);
    hd_free(m->user_info_json);
    hd_free(m);
}

/* {"presence":{"ids":[...],"hash":{...},"count":N}} - caller holds ch->lock. */
static void presence_json_locked(hd_channel *ch, hd_buf *out)
{
    hd_buf_puts(out, "{\"presence\":{\"ids\":[");
    hd_map_iter it = {0};
    hd_map_entry *e;
    bool first = true;
    while ((e = hd_map_next(&ch->members, &it))) {
        if (!first)
            hd_buf_append(out, ",", 1);
        hd_buf_json_string(out, e->key, e->key_len);
        first = false;
    }
    hd_buf_puts(out, "],\"hash\":{");
    memset(&it, 0, sizeof it);
    first = true;
    while ((e = hd_map_next(&ch->members, &it))) {
        hd_presence_member *m = e->value;
        if (!first)
            hd_buf_append(out, ",", 1);
        hd_buf_json_string(out, e->key, e->key_len);
        hd_buf_append(out, ":", 1);
        hd_buf_puts(out, m->user_info_json ? m->user_info_json : "null");
        first = false;
    }
    hd_buf_printf(out, "},\"count\":%zu}}", ch->members.count);
}

/* Returns HD_ELIMIT when a new user would exceed max_members. Caller holds ch->lock. */
static int member_add_locked(hd_channel *ch, const hd_member *mb, uint32_t max_members, bool *first)
{
    hd_presence_member *m = hd_map_get(&ch->members, mb->user_key, mb->user_key_len);
    if (m) {
        m->sockets++;
        *first = false;
        return 0;
    }
    if (max_members && ch->members.count >= max_members)
        return HD_ELIMIT;
    m = hd_calloc(1, sizeof *m);
    m->sockets = 1;
    m->user_id_json = hd_strndup(mb->user_id_json, mb->user_id_json_len);
    if (mb->user_info_json)
        m->user_info_json = hd_strndup(mb->user_info_json, mb->user_info_json_len);
    hd_map_insert(&ch->members, mb->user_key, mb->user_key_len, m);
    *first = true;
    return 0;
}

int hd_channel_join(hd_channel *ch, unsigned thread, const hd_member *member, uint32_t max_members,
                    hd_buf *presence_json, hd_join_result *out)
{
    hd_assert(thread < HD_MAX_IO_THREADS);
    memset(out, 0, sizeof *out);
    bool presence = ch->type.kind == HD_CHANNEL_PRESENCE;
    hd_assert(!presence || member);
    pthread_mutex_lock(&ch->lock);
    if (presence) {
        int rc = member_add_locked(ch, member, max_members, &out->member_added);
        if (rc) {
            pthread_mutex_unlock(&ch->lock);
            return rc;
        }
    }
    ch->subscribers++;
    ch->per_thread[thread]++;
    out->subscribers = ch->subscribers;
    out->occupied = ch->subscribers == 1;
    if (presence && presence_json)
        presence_json_locked(ch, presence_json);
    pthread_mutex_unlock(&ch->lock);
    return 0;
}

/* One leave under ch->lock. */
static void leave_locked(hd_channel *ch, const hd_leave_req *req, hd_leave_result *out)
{
    memset(out, 0, sizeof *out);
    hd_assert(ch->subscribers > 0 && ch->per_thread[req->thread] > 0);
    ch->subscribers--;
    ch->per_thread[req->thread]--;
    if (req->user_key && ch->type.kind == HD_CHANNEL_PRESENCE) {
        hd_presence_member *m = hd_map_get(&ch->members, req->user_key, req->user_key_len);
        hd_assert(m && m->sockets > 0);
        if (--m->sockets == 0) {
            hd_map_remove(&ch->members, req->user_key, req->user_key_len);
            hd_channels__member_free(m);
            out->member_removed = true;
        }
    }
    out->subscribers = ch->subscribers;
    out->vacated = ch->subscribers == 0;
}

void hd_channel_leave(hd_channel *ch, unsigned thread, const char *user_key, size_t user_key_len,
                      hd_leave_result *out)
{
    hd_leave_req req = {thread, user_key, user_key_len};
    hd_channel_leave_many(ch, &req, 1, out);
}

void hd_channel_leave_many(hd_channel *ch, const hd_leave_req *reqs, size_t n, hd_leave_result *out)
{
    pthread_mutex_lock(&ch->lock);
    for (size_t i = 0; i < n; i++)
        leave_locked(ch, &reqs[i], &out[i]);
    pthread_mutex_unlock(&ch->lock);
}

void hd_channel_counts(hd_channel *ch, uint32_t *subscribers, uint32_t *users)
{
    pthread_mutex_lock(&ch->lock);
    if (subscribers)
        *subscribers = ch->subscribers;
    if (users)
        *users = (uint32_t)ch->members.count;
    pthread_mutex_unlock(&ch->lock);
}

void hd_channel_thread_counts(hd_channel *ch, uint32_t *counts, unsigned n)
{
    hd_assert(n <= HD_MAX_IO_THREADS);
    pthread_mutex_lock(&ch->lock);
    memcpy(counts, ch->per_thread, n * sizeof *counts);
    pthread_mutex_unlock(&ch->lock);
}

void hd_channel_users_json(hd_channel *ch, hd_buf *out)
{
    hd_buf_puts(out, "{\"users\":[");
    pthread_mutex_lock(&ch->lock);
    hd_map_iter it = {0};
    hd_map_entry *e;
    bool first = true;
    while ((e = hd_map_next(&ch->members, &it))) {
        hd_buf_puts(out, first ? "{\"id\":" : ",{\"id\":");
        hd_buf_json_string(out, e->key, e->key_len);
        hd_buf_append(out, "}", 1);
        first = false;
    }
    pthread_mutex_unlock(&ch->lock);
    hd_buf_puts(out, "]}");
}

bool hd_channel_has_member(hd_channel *ch, const char *user_key, size_t len)
{
    pthread_mutex_lock(&ch->lock);
    bool present = hd_map_get(&ch->members, user_key, len) != NULL;
    pthread_mutex_unlock(&ch->lock);
    return present;
}

bool hd_channel_member_sockets(hd_channel *ch, const char *user_key, size_t len, uint32_t *sockets,
                               hd_buf *user_id_json, hd_buf *user_info_json)
{
    pthread_mutex_lock(&ch->lock);
    hd_presence_member *m = hd_map_get(&ch->members, user_key, len);
    *sockets = m ? m->sockets : 0;
    if (m && user_id_json)
        hd_buf_puts(user_id_json, m->user_id_json);
    if (m && user_info_json && m->user_info_json)
        hd_buf_puts(user_info_json, m->user_info_json);
    pthread_mutex_unlock(&ch->lock);
    return m != NULL;
}

/* One member copied out of the channel: the three strings in one block. */
typedef struct member_copy {
    hd_member m;
    uint32_t sockets;
} member_copy;

void hd_channel_foreach_member(hd_channel *ch, hd_member_visit_fn fn, void *arg)
{
    pthread_mutex_lock(&ch->lock);
    size_t n = ch->members.count;
    member_copy *copies = n ? hd_calloc(n, sizeof *copies) : NULL;
    hd_map_iter it = {0};
    hd_map_entry *e;
    size_t i = 0;
    while (i < n && (e = hd_map_next(&ch->members, &it))) {
        hd_presence_member *pm = e->value;
        size_t id_len = strlen(pm->user_id_json);
        size_t info_len = pm->user_info_json ? strlen(pm->user_info_json) : 0;
        char *block = hd_malloc(e->key_len + 1 + id_len + 1 + info_len + 1);
        member_copy *c = &copies[i++];
        c->sockets = pm->sockets;
        c->m.user_key = memcpy(block, e->key, e->key_len + 1);
        c->m.user_key_len = e->key_len;
        c->m.user_id_json = memcpy(block + e->key_len + 1, pm->user_id_json, id_len + 1);
        c->m.user_id_json_len = id_len;
        if (pm->user_info_json) {
            c->m.user_info_json = memcpy(block + e->key_len + 1 + id_len + 1, pm->user_info_json, info_len + 1);
            c->m.user_info_json_len = info_len;
        }
    }
    pthread_mutex_unlock(&ch->lock);
    for (size_t k = 0; k < i; k++) {
        fn(&copies[k].m, copies[k].sockets, arg);
        hd_free((char *)copies[k].m.user_key);
    }
    hd_free(copies);
}

void hd_channel_presence_json(hd_channel *ch, hd_buf *out)
{
    pthread_mutex_lock(&ch->lock);
    presence_json_locked(ch, out);
    pthread_mutex_unlock(&ch->lock);
}

void hd_channel_cache_store(hd_channel *ch, const char *frame, size_t len, uint64_t expires_ms)
{
    char *copy = hd_strndup(frame, len);
    pthread_mutex_lock(&ch->lock);
    char *old = ch->cache_frame;
    ch->cache_frame = copy;
    ch->cache_len = len;
    ch->cache_expires_ms = expires_ms;
    ch->cache_miss_reported = false;
    pthread_mutex_unlock(&ch->lock);
    hd_free(old);
}

bool hd_channel_cache_load(hd_channel *ch, uint64_t now_ms, hd_buf *out, uint64_t *ttl_left_ms)
{
    pthread_mutex_lock(&ch->lock);
    bool live = ch->cache_frame && ch->cache_expires_ms > now_ms;
    if (live) {
        hd_buf_append(out, ch->cache_frame, ch->cache_len);
        if (ttl_left_ms)
            *ttl_left_ms = ch->cache_expires_ms - now_ms;
    }
    pthread_mutex_unlock(&ch->lock);
    return live;
}

bool hd_channel_cache_miss_first(hd_channel *ch)
{
    pthread_mutex_lock(&ch->lock);
    bool first = !ch->cache_miss_reported;
    ch->cache_miss_reported = true;
    pthread_mutex_unlock(&ch->lock);
    return first;
}

void hd_channel_order_lock(hd_channel *ch)
{
    pthread_mutex_lock(&ch->order);
}

void hd_channel_order_unlock(hd_channel *ch)
{
    pthread_mutex_unlock(&ch->order);
}

bool hd_channel_count_update_due(hd_channel *ch, uint32_t subscribers, uint64_t now_ms)
{
    if (subscribers <= HD_COUNT_THROTTLE_ABOVE)
        return true;
    pthread_mutex_lock(&ch->lock);
    bool due = now_ms - ch->count_sent_ms >= HD_COUNT_THROTTLE_MS;
    if (due)
        ch->count_sent_ms = now_ms;
    pthread_mutex_unlock(&ch->lock);
    return due;
}
