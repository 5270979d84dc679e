/* state.c - occupied/vacated and member_added/removed per channel and
 * user: alternation, the vacate delay and the send-time check.
 *
 * DESIGN
 * ------
 * The server reports each boundary crossing exactly once, from whichever
 * thread crossed it (membership.c), but two threads may report crossings
 * of the same channel in the opposite order of the crossings themselves
 * (a cleanup worker's vacated can arrive after an io thread's next
 * occupied). So each key keeps a balance, ups minus downs reported, whose
 * sign is the truth once every report is in, and what the receivers were
 * last told (hd_wh_flip):
 *
 *   up report, balance 0 -> 1:  a held-back "down" is cancelled (nothing is
 *                               sent at all), else "up" is sent unless the
 *                               receivers already think "up".
 *   down report, 1 -> 0:        if the receivers think "up", the "down" is
 *                               held back (armed) for vacate_delay_ms.
 *   timer due:                  the server is asked (hd_webhooks_probe,
 *                               without any of our locks held) whether the
 *                               channel is still empty / the user still
 *                               gone; if so, and nothing changed meanwhile
 *                               (gen), "down" is sent; if not, an "up"
 *                               report is on its way: look again later.
 *
 * Sent events therefore alternate per key and start with "up", whatever
 * the interleaving, and a leave/rejoin inside the delay sends nothing.
 * member_added is never delayed, like channel_occupied.
 *
 * Orphans: a reload can start tracking a channel (or member) that is
 * already up; its "down" then comes without an "up" ever reported and
 * leaves the balance at -1, which would swallow every later "up". Out of
 * order partners arrive within microseconds, so an "up" that finds the
 * balance negative for longer than wh->orphan_ms (HD_WH_ORPHAN_MS) is a
 * new crossing: the orphan "down" is forgotten first.
 *
 * Keys live in HD_WH_SHARDS shards by hash(app, channel), each a mutex, a
 * map and a min-heap of timers; a channel and its members share a shard,
 * so their held-back events fire in the order they were armed. A key has
 * at most one heap entry (in_heap); re-arming only moves its due time,
 * checked when the entry pops. A key is freed when it is idle (balance 0,
 * nothing told, nothing pending) and no heap entry points at it, so memory
 * follows the number of occupied channels and present members.
 *
 * Events are pushed to the endpoints while the shard lock is held, so the
 * events of one channel reach each endpoint queue in the order decided
 * here (lock order: shard -> endpoint).
 *
 * THREADING
 * ---------
 * state_report: any thread. timers_run: the sender that owns the shard
 * (shard % sender count). Everything under the shard's lock.
 */
#include <string.h>

#include "webhooks_internal.h"

struct hd_wh_key {
    hd_wh_flip flip;
    uint64_t due_ms; /* when the held-back "down" is due */
    bool in_heap;    /* a heap entry, or a probe in progress, refers to the key */
    uint64_t negative_ms; /* when the balance went below 0 (valid while it is) */
    unsigned app;        /* the server's app slot: the key outlives reloads of its settings */
    const char *user_id; /* NULL: channel key; else points into names */
    char *map_key;       /* the key's bytes in the shard map */
    size_t map_len;
    char names[]; /* channel \0 [user_id \0] */
};

/* ---- the state machine (pure) ---- */

hd_wh_flip_act hd_webhooks__flip_up(hd_wh_flip *f)
{
    if (++f->balance != 1)
        return HD_WH_FLIP_NONE;
    if (f->pending) {
        f->pending = false;
        f->gen++;
        return HD_WH_FLIP_CANCEL;
    }
    if (f->told)
        return HD_WH_FLIP_NONE;
    f->told = true;
    return HD_WH_FLIP_EMIT;
}

hd_wh_flip_act hd_webhooks__flip_down(hd_wh_flip *f)
{
    if (--f->balance != 0 || !f->told || f->pending)
        return HD_WH_FLIP_NONE;
    f->pending = true;
    f->gen++;
    return HD_WH_FLIP_ARM;
}

hd_wh_flip_act hd_webhooks__flip_fire(hd_wh_flip *f, uint32_t gen, bool still_up)
{
    if (!f->pending || f->gen != gen)
        return HD_WH_FLIP_NONE;
    if (still_up)
        return HD_WH_FLIP_ARM;
    f->pending = false;
    f->told = false;
    return HD_WH_FLIP_EMIT;
}

bool hd_webhooks__flip_idle(const hd_wh_flip *f)
{
    return f->balance == 0 && !f->told && !f->pending;
}

/* ---- shards, keys, heap ---- */

unsigned hd_webhooks__shard_of(size_t app_index, const char *channel)
{
    return (hd_hash(channel, strlen(channel)) ^ (uint32_t)(app_index * 2654435761u)) % HD_WH_SHARDS;
}

void hd_webhooks__shards_init(hd_webhooks *wh)
{
    for (unsigned s = 0; s < HD_WH_SHARDS; s++) {
        pthread_mutex_init(&wh->shards[s].lock, NULL);
        hd_map_init(&wh->shards[s].keys);
    }
}

void hd_webhooks__shards_deinit(hd_webhooks *wh)
{
    for (unsigned s = 0; s < HD_WH_SHARDS; s++) {
        hd_wh_shard *sh = &wh->shards[s];
        hd_map_iter it = {0};
        for (hd_map_entry *e; (e = hd_map_next(&sh->keys, &it)) != NULL;)
            hd_free(e->value);
        hd_map_deinit(&sh->keys);
        hd_free(sh->heap);
        pthread_mutex_destroy(&sh->lock);
    }
}

static bool timer_less(const hd_wh_timer *a, const hd_wh_timer *b)
{
    return a->due_ms < b->due_ms || (a->due_ms == b->due_ms && a->seq < b->seq);
}

static void heap_swap(hd_wh_timer *h, size_t i, size_t j)
{
    hd_wh_timer t = h[i];
    h[i] = h[j];
    h[j] = t;
}

/* Push key at key->due_ms; true when it became the earliest timer. */
static bool heap_push(hd_wh_shard *sh, hd_wh_key *key)
{
    if (sh->n_heap == sh->cap_heap) {
        sh->cap_heap = sh->cap_heap ? sh->cap_heap * 2 : 16;
        sh->heap = hd_realloc(sh->heap, sh->cap_heap * sizeof *sh->heap);
    }
    size_t i = sh->n_heap++;
    sh->heap[i] = (hd_wh_timer){key->due_ms, sh->seq++, key};
    while (i && timer_less(&sh->heap[i], &sh->heap[(i - 1) / 2])) {
        heap_swap(sh->heap, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
    key->in_heap = true;
    return i == 0;
}

static hd_wh_key *heap_pop(hd_wh_shard *sh)
{
    hd_wh_key *key = sh->heap[0].key;
    sh->heap[0] = sh->heap[--sh->n_heap];
    for (size_t i = 0;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < sh->n_heap && timer_less(&sh->heap[l], &sh->heap[m]))
            m = l;
        if (r < sh->n_heap && timer_less(&sh->heap[r], &sh->heap[m]))
            m = r;
        if (m == i)
            break;
        heap_swap(sh->heap, i, m);
        i = m;
    }
    return key;
}

/* The key's bytes: kind, app index, channel, NUL, user id. */
static void map_key(hd_buf *b, size_t app_index, const char *channel, const char *user_id)
{
    hd_buf_printf(b, "%c%zu:%s", user_id ? 'm' : 'c', app_index, channel);
    if (user_id) {
        hd_buf_append(b, "", 1); /* keep the NUL: separates channel and user */
        hd_buf_puts(b, user_id);
    }
}

static hd_wh_key *key_get(hd_wh_shard *sh, unsigned app, const char *channel, const char *user_id)
{
    hd_buf mk;
    hd_buf_init(&mk);
    map_key(&mk, app, channel, user_id);
    hd_wh_key *key = hd_map_get(&sh->keys, mk.data, mk.len);
    if (!key) {
        size_t cl = strlen(channel) + 1, ul = user_id ? strlen(user_id) + 1 : 0;
        key = hd_calloc(1, sizeof *key + cl + ul);
        key->app = app;
        memcpy(key->names, channel, cl);
        if (user_id) {
            memcpy(key->names + cl, user_id, ul);
            key->user_id = key->names + cl;
        }
        hd_map_entry *e = hd_map_insert(&sh->keys, mk.data, mk.len, key);
        key->map_key = e->key;
        key->map_len = mk.len;
    }
    hd_buf_deinit(&mk);
    return key;
}

static void key_release_if_idle(hd_wh_shard *sh, hd_wh_key *key)
{
    if (key->in_heap || !hd_webhooks__flip_idle(&key->flip))
        return;
    hd_map_remove(&sh->keys, key->map_key, key->map_len);
    hd_free(key);
}

/* Build and push the key's event: `up` or its "down". Shard lock held. */
static void key_emit(hd_webhooks *wh, const hd_wh_key *key, bool up)
{
    hd_wh_type t = key->user_id ? (up ? HD_WH_MEMBER_ADDED : HD_WH_MEMBER_REMOVED)
                                : (up ? HD_WH_CHANNEL_OCCUPIED : HD_WH_CHANNEL_VACATED);
    hd_buf b;
    hd_buf_init(&b);
    hd_webhooks__event_simple(&b, t, key->names, key->user_id);
    hd_webhooks__emit(wh, key->app, t, key->names, &b);
    hd_buf_deinit(&b);
}

static bool key_tracked(const hd_webhooks *wh, unsigned app, const char *channel, bool member)
{
    const hd_wh_set *set = hd_webhooks__set(wh, app);
    hd_wh_type up = member ? HD_WH_MEMBER_ADDED : HD_WH_CHANNEL_OCCUPIED;
    for (size_t i = 0; set && i < set->n; i++) {
        const hd_wh_ep_conf *ec = hd_webhooks__ep_conf(set->eps[i]);
        const hd_webhook_config *c = ec->conf;
        if (hd_webhooks__matches(ec->mask, c->filter_channel_prefix, c->filter_channel_suffix, up, channel) ||
            hd_webhooks__matches(ec->mask, c->filter_channel_prefix, c->filter_channel_suffix, up + 1, channel))
            return true;
    }
    return false;
}

/* Apply one report to key; true when a timer became the shard's earliest
 * (its sender must wake). Shard lock held. */
static bool key_apply(hd_webhooks *wh, hd_wh_shard *sh, hd_wh_key *key, bool up)
{
    uint64_t now = hd_mono_ms();
    if (up && key->flip.balance < 0 && now - key->negative_ms >= wh->orphan_ms)
        key->flip.balance = 0; /* an orphan "down" (see Orphans above) */
    hd_wh_flip_act act = up ? hd_webhooks__flip_up(&key->flip) : hd_webhooks__flip_down(&key->flip);
    if (!up && key->flip.balance == -1)
        key->negative_ms = now;
    switch (act) {
    case HD_WH_FLIP_EMIT:
        key_emit(wh, key, true);
        return false;
    case HD_WH_FLIP_ARM:
        key->due_ms = hd_mono_ms() + wh->cfg->webhooks.vacate_delay_ms;
        atomic_fetch_add_explicit(&wh->delayed_pending, 1, memory_order_relaxed);
        return !key->in_heap && heap_push(sh, key);
    case HD_WH_FLIP_CANCEL:
        atomic_fetch_sub_explicit(&wh->delayed_pending, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&wh->cancelled_rejoin, 1, memory_order_relaxed);
        return false;
    default:
        return false;
    }
}

void hd_webhooks__state_report(hd_webhooks *wh, unsigned app, const char *channel, const char *user_id, bool up)
{
    if (!key_tracked(wh, app, channel, user_id != NULL))
        return;
    unsigned s = hd_webhooks__shard_of(app, channel);
    hd_wh_shard *sh = &wh->shards[s];
    pthread_mutex_lock(&sh->lock); /* --------- shard lock { */
    hd_wh_key *key = key_get(sh, app, channel, user_id);
    bool wake = key_apply(wh, sh, key, up);
    key_release_if_idle(sh, key);
    pthread_mutex_unlock(&sh->lock); /* } shard lock --------- */
    if (wake)
        hd_webhooks__wake(wh, s % wh->n_senders);
}

/* ---- timers ---- */

static bool probe(hd_webhooks *wh, const hd_wh_key *key)
{
    const hd_webhooks_probe *p = &wh->probe;
    if (key->user_id)
        return p->member_present && p->member_present(p->ctx, key->app, key->names, key->user_id);
    return p->channel_occupied && p->channel_occupied(p->ctx, key->app, key->names);
}

/* The probe answered for gen; shard lock held again. Returns true when
 * the key went back into the heap. */
static bool after_probe(hd_webhooks *wh, hd_wh_shard *sh, hd_wh_key *key, uint32_t gen, bool still_up,
                        uint64_t now, bool flush)
{
    switch (hd_webhooks__flip_fire(&key->flip, gen, still_up)) {
    case HD_WH_FLIP_EMIT:
        atomic_fetch_sub_explicit(&wh->delayed_pending, 1, memory_order_relaxed);
        key_emit(wh, key, false);
        return false;
    case HD_WH_FLIP_ARM:
        if (flush) { /* shutting down: it is occupied, so nothing to send */
            key->flip.pending = false;
            key->flip.gen++;
            atomic_fetch_sub_explicit(&wh->delayed_pending, 1, memory_order_relaxed);
            atomic_fetch_add_explicit(&wh->cancelled_probe, 1, memory_order_relaxed);
            return false;
        }
        key->due_ms = now + HD_WH_RECHECK_MS;
        break;
    default:
        if (!key->flip.pending)
            return false; /* cancelled meanwhile */
        break;            /* re-armed meanwhile: due_ms is set */
    }
    heap_push(sh, key);
    return true;
}

uint64_t hd_webhooks__timers_run(hd_webhooks *wh, unsigned s, uint64_t now, bool flush)
{
    hd_wh_shard *sh = &wh->shards[s];
    pthread_mutex_lock(&sh->lock); /* --------- shard lock { */
    while (sh->n_heap && (flush || sh->heap[0].due_ms <= now)) {
        hd_wh_key *key = heap_pop(sh);
        bool again = false;
        if (key->flip.pending && key->due_ms > now && !flush) {
            again = true; /* re-armed since this entry was pushed */
            heap_push(sh, key);
        } else if (key->flip.pending) {
            uint32_t gen = key->flip.gen;
            pthread_mutex_unlock(&sh->lock); /* in_heap keeps key alive */
            bool still_up = probe(wh, key);
            pthread_mutex_lock(&sh->lock);
            again = after_probe(wh, sh, key, gen, still_up, now, flush);
        }
        if (!again) {
            key->in_heap = false;
            key_release_if_idle(sh, key);
        }
    }
    uint64_t next = sh->n_heap ? sh->heap[0].due_ms : UINT64_MAX;
    pthread_mutex_unlock(&sh->lock); /* } shard lock --------- */
    return next;
}
