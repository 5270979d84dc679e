/* queue.c - the hand-over from io threads and cleanup workers to the
 * adapter thread: ops, the byte-bounded queue, drop accounting and the set
 * of channels whose membership op was dropped (re-asserted later).
 *
 * THREADING: push, drop and dirty functions run on any thread and take
 * q_lock for a list operation only; the queue is never waited on. Taking
 * ops off the queue is the adapter thread's. An op belongs to whoever
 * holds it: the queue, then the adapter thread, then its command.
 */
#include <inttypes.h>
#include <string.h>

#include "adapter/redis/redis.h"

#define RD_DIRTY_MAX 65536 /* channels remembered one by one; more = resync everything */

rd_op *rd_op_new(int kind, hd_app *app, const char *channel, size_t channel_len)
{
    rd_op *op = hd_calloc(1, sizeof *op);
    op->kind = (uint8_t)kind;
    op->app = app;
    op->born_ms = hd_mono_ms();
    op->bytes = sizeof *op;
    if (channel)
        op->channel = rd_op_strdup(op, channel, channel_len), op->channel_len = channel_len;
    return op;
}

char *rd_op_strdup(rd_op *op, const char *s, size_t n)
{
    op->bytes += n + 1;
    return hd_strndup(s, n);
}

void rd_op_free(rd_op *op)
{
    if (!op)
        return;
    for (size_t i = 0; i < op->n_users; i++) {
        hd_free(op->users[i].key);
        hd_free(op->users[i].record);
        hd_free(op->users[i].added);
        hd_free(op->users[i].removed);
    }
    hd_free(op->users);
    hd_free(op->channel);
    hd_free(op->online);
    hd_free(op->offline);
    hd_free(op->payload);
    hd_free(op->arg);
    hd_free(op);
}

void rd_op_uncount(hd_rd *rd, rd_op *op)
{
    if (!op || !op->counted)
        return;
    op->counted = false;
    atomic_fetch_sub_explicit(&rd->q_bytes, op->bytes, memory_order_relaxed);
}

void rd_op_discard(hd_rd *rd, rd_op *op)
{
    rd_op_uncount(rd, op);
    rd_op_free(op);
}

/* Is there a power of two in (before, after]? The first drop of a reason
 * is logged at once, then each doubling, so a flood stays a few lines. */
static bool crosses_power_of_two(uint64_t before, uint64_t after)
{
    return before == 0 || __builtin_clzll(after) < __builtin_clzll(before);
}

static const char *const drop_names[RD_DROP_COUNT] = {"queue_full", "redis_down", "timeout"};

void rd_count_drop(hd_rd *rd, int reason, const char *what)
{
    uint64_t before = atomic_fetch_add_explicit(&rd->st.dropped[reason], 1, memory_order_relaxed);
    if (crosses_power_of_two(before, before + 1))
        hd_log(HD_LOG_WARN, RD_MOD, "dropped %s, reason %s (%" PRIu64 " so far for this reason)", what,
               drop_names[reason], before + 1);
}

bool rd_queue_push(hd_rd *rd, rd_op *op, bool force)
{
    pthread_mutex_lock(&rd->q_lock);
    size_t bytes = atomic_load_explicit(&rd->q_bytes, memory_order_relaxed);
    if (!force && bytes + op->bytes > rd->queue_limit) {
        pthread_mutex_unlock(&rd->q_lock);
        return false;
    }
    bool was_empty = rd->q_head == NULL;
    op->next = NULL;
    if (rd->q_tail)
        rd->q_tail->next = op;
    else
        rd->q_head = op;
    rd->q_tail = op;
    op->counted = true;
    atomic_store_explicit(&rd->q_bytes, bytes + op->bytes, memory_order_relaxed);
    pthread_mutex_unlock(&rd->q_lock);
    /* ev_async_send coalesces; waking only on empty -> non-empty keeps the
     * cost per op to a list append while the thread is busy */
    if (was_empty)
        ev_async_send(rd->loop, &rd->wake);
    return true;
}

rd_op *rd_queue_take_all(hd_rd *rd)
{
    pthread_mutex_lock(&rd->q_lock);
    rd_op *list = rd->q_head;
    rd->q_head = rd->q_tail = NULL;
    pthread_mutex_unlock(&rd->q_lock);
    /* the bytes stay counted until each op is sent or dropped: the bound is
     * on what waits for Redis, not only on what waits in the list */
    return list;
}

void rd_queue_put_back(hd_rd *rd, rd_op *list)
{
    if (!list)
        return;
    rd_op *last = list;
    while (last->next)
        last = last->next;
    pthread_mutex_lock(&rd->q_lock);
    last->next = rd->q_head;
    rd->q_head = list;
    if (!rd->q_tail)
        rd->q_tail = last;
    pthread_mutex_unlock(&rd->q_lock);
}

void rd_dirty_mark(hd_rd *rd, hd_app *app, const char *channel, size_t len)
{
    char head[24];
    int hl = snprintf(head, sizeof head, "%u\x1f", app->index);
    char *key = hd_malloc((size_t)hl + len + 1);
    memcpy(key, head, (size_t)hl);
    memcpy(key + hl, channel, len);
    key[hl + len] = '\0';
    pthread_mutex_lock(&rd->q_lock);
    if (!hd_map_get(&rd->dirty, key, (size_t)hl + len)) {
        if (rd->dirty.count < RD_DIRTY_MAX)
            hd_map_insert(&rd->dirty, key, (size_t)hl + len, app);
        else
            rd->dirty_overflow = true;
    }
    pthread_mutex_unlock(&rd->q_lock);
    hd_free(key);
}

void rd_dirty_take(hd_rd *rd, hd_map *out, bool *overflow)
{
    pthread_mutex_lock(&rd->q_lock);
    *out = rd->dirty;
    hd_map_init(&rd->dirty);
    *overflow = rd->dirty_overflow;
    rd->dirty_overflow = false;
    pthread_mutex_unlock(&rd->q_lock);
}
