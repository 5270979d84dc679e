/* pubsub.c - this node's pub/sub subscriptions (CLUSTER.md 5.2): one Redis
 * channel P:m:<A>:<c> per channel with local subscribers, plus the node
 * channel P:n:<num>; and what arrives on them.
 *
 * Per channel: unsubscribed -> subscribing -> subscribed -> lingering ->
 * unsubscribing. The first op with node_count > 0 sends SUBSCRIBE and
 * parks this and every later op of the channel until the ack, so that the
 * node receives everything its member script publishes after the join
 * (D7). node_count back to 0 lingers unsubscribe_linger_ms before
 * UNSUBSCRIBE; an op wanting the channel while UNSUBSCRIBE is on its way
 * waits for its ack and subscribes again. SUBSCRIBE / UNSUBSCRIBE go out in
 * batches of up to 512 channels at the end of each drain (a resync of
 * 10 000 channels is 20 commands). Acks come back in order on `sub`, so one
 * FIFO of pending batches tells how long the oldest has waited.
 *
 * THREADING: adapter thread only.
 */
#include <string.h>

#include "adapter/redis/redis.h"

void rd_pubsub_name(hd_rd *rd, hd_buf *out, const hd_app *app, const char *channel, size_t len)
{
    const char *id = hd_app_cfg(app)->id;
    hd_buf_puts(out, rd->cfg->adapter.redis.prefix);
    hd_buf_puts(out, ":m:");
    hd_buf_puts(out, id);
    hd_buf_append(out, ":", 1);
    hd_buf_append(out, channel, len);
}

/* ---- channel entries ---- */

static rd_chan *chan_get(hd_rd *rd, const hd_app *app, const char *channel, size_t len)
{
    hd_buf *b = &rd->scratch;
    b->len = 0;
    rd_pubsub_name(rd, b, app, channel, len);
    return hd_map_get(&rd->chans, b->data, b->len);
}

static rd_chan *chan_new(hd_rd *rd, hd_app *app, const char *channel, size_t len)
{
    hd_buf *b = &rd->scratch;
    b->len = 0;
    rd_pubsub_name(rd, b, app, channel, len);
    rd_chan *c = hd_calloc(1, sizeof *c);
    c->app = app;
    c->entry = hd_map_insert(&rd->chans, b->data, b->len, c);
    c->channel = c->entry->key + (b->len - len);
    c->channel_len = len;
    c->state = RD_CH_UNSUBSCRIBED;
    return c;
}

static void linger_unlink(hd_rd *rd, rd_chan *c)
{
    if (c->lprev)
        c->lprev->lnext = c->lnext;
    else if (rd->linger_head == c)
        rd->linger_head = c->lnext;
    if (c->lnext)
        c->lnext->lprev = c->lprev;
    else if (rd->linger_tail == c)
        rd->linger_tail = c->lprev;
    c->lprev = c->lnext = NULL;
}

/* Linger for a constant time: the list stays in deadline order. */
static void linger_append(hd_rd *rd, rd_chan *c, uint64_t now_ms)
{
    c->linger_until_ms = now_ms + rd->cfg->adapter.redis.unsubscribe_linger_ms;
    c->lprev = rd->linger_tail;
    c->lnext = NULL;
    if (rd->linger_tail)
        rd->linger_tail->lnext = c;
    else
        rd->linger_head = c;
    rd->linger_tail = c;
}

static void chan_free(hd_rd *rd, rd_chan *c)
{
    hd_assert(!c->parked && !c->batched);
    linger_unlink(rd, c);
    hd_map_remove(&rd->chans, c->entry->key, c->entry->key_len);
    hd_free(c);
}

static void park(hd_rd *rd, rd_chan *c, rd_op *op)
{
    op->next = NULL;
    if (c->parked_tail)
        c->parked_tail->next = op;
    else
        c->parked = op;
    c->parked_tail = op;
    rd->parked_ops++;
}

static void batch_add(hd_rd *rd, rd_chan *c)
{
    if (c->batched)
        return;
    if (rd->n_batch == rd->cap_batch) {
        rd->cap_batch = rd->cap_batch ? 2 * rd->cap_batch : 64;
        rd->batch = hd_realloc(rd->batch, rd->cap_batch * sizeof *rd->batch);
    }
    rd->batch[rd->n_batch++] = c;
    c->batched = true;
}

/* ---- sending an op through its channel ---- */

static void send_op(hd_rd *rd, rd_chan *c, rd_op *op)
{
    bool drives = op->kind == RD_OP_MEMBER || op->kind == RD_OP_WATCH;
    if (c && drives) {
        c->node_count = op->node_count;
        if (op->node_count == 0 && c->state == RD_CH_SUBSCRIBED) {
            c->state = RD_CH_LINGERING;
            linger_append(rd, c, hd_mono_ms());
        }
    }
    if (drives)
        rd_member_send(rd, op);
    else
        rd_publish_send(rd, op);
}

void rd_pubsub_dispatch(hd_rd *rd, rd_op *op)
{
    bool drives = op->kind == RD_OP_MEMBER || op->kind == RD_OP_WATCH;
    rd_chan *c = chan_get(rd, op->app, op->channel, op->channel_len);
    if (!c && drives && op->node_count > 0)
        c = chan_new(rd, op->app, op->channel, op->channel_len);
    if (c) {
        /* behind a subscription on its way, every op of the channel waits,
         * so the channel's commands keep their order */
        if (c->parked || c->state == RD_CH_SUBSCRIBING) {
            park(rd, c, op);
            return;
        }
        if (drives && op->node_count > 0) {
            switch (c->state) {
            case RD_CH_UNSUBSCRIBED:
                c->state = RD_CH_SUBSCRIBING;
                batch_add(rd, c);
                park(rd, c, op);
                return;
            case RD_CH_UNSUBSCRIBING: /* subscribed again after its ack */
                park(rd, c, op);
                return;
            case RD_CH_LINGERING:
                linger_unlink(rd, c);
                c->state = RD_CH_SUBSCRIBED;
                break;
            default:
                break;
            }
        }
    }
    send_op(rd, c, op);
}

static void unpark_all(hd_rd *rd, rd_chan *c)
{
    rd_op *list = c->parked;
    c->parked = c->parked_tail = NULL;
    while (list) {
        rd_op *op = list;
        list = op->next;
        op->next = NULL;
        rd->parked_ops--;
        rd_pubsub_dispatch(rd, op);
    }
    if (rd->parked_ops == 0)
        rd_resync_maybe_finish(rd);
}

/* ---- SUBSCRIBE / UNSUBSCRIBE ---- */

static void sub_cb(redisAsyncContext *ac, void *reply, void *privdata);

static void ack_push(hd_rd *rd, uint32_t n)
{
    rd_ackq *a = hd_calloc(1, sizeof *a);
    a->sent_ms = hd_mono_ms();
    a->left = n;
    if (rd->acks_tail)
        rd->acks_tail->next = a;
    else
        rd->acks = a;
    rd->acks_tail = a;
}

static void run_after_subs(hd_rd *rd)
{
    rd_op *list = rd->after_subs;
    rd->after_subs = rd->after_subs_tail = NULL;
    while (list) {
        rd_op *op = list;
        list = op->next;
        op->next = NULL;
        rd_read_send(rd, op);
    }
}

static void ack_pop(hd_rd *rd)
{
    rd_ackq *a = rd->acks;
    if (!a)
        return;
    if (--a->left > 0)
        return;
    rd->acks = a->next;
    if (!rd->acks)
        rd->acks_tail = NULL;
    hd_free(a);
    if (!rd->acks && rd->n_batch == 0)
        run_after_subs(rd);
}

static void send_batch(hd_rd *rd, const char *verb, rd_chan **list, size_t n)
{
    const char **argv = hd_malloc((n + 1) * sizeof *argv);
    size_t *lens = hd_malloc((n + 1) * sizeof *lens);
    argv[0] = verb;
    lens[0] = strlen(verb);
    for (size_t i = 0; i < n; i++) {
        argv[i + 1] = list[i]->entry->key;
        lens[i + 1] = list[i]->entry->key_len;
    }
    if (redisAsyncCommandArgv(rd->sub, sub_cb, rd, (int)n + 1, argv, lens) == REDIS_OK)
        ack_push(rd, (uint32_t)n);
    hd_free(argv);
    hd_free(lens);
}

void rd_pubsub_flush(hd_rd *rd)
{
    if (!rd->n_batch || !rd->sub)
        return;
    rd_chan *subs[RD_SUBSCRIBE_BATCH], *unsubs[RD_SUBSCRIBE_BATCH];
    size_t ns = 0, nu = 0;
    for (size_t i = 0; i < rd->n_batch; i++) {
        rd_chan *c = rd->batch[i];
        c->batched = false;
        if (c->state == RD_CH_SUBSCRIBING)
            subs[ns++] = c;
        else if (c->state == RD_CH_UNSUBSCRIBING)
            unsubs[nu++] = c;
        if (ns == RD_SUBSCRIBE_BATCH)
            send_batch(rd, "SUBSCRIBE", subs, ns), ns = 0;
        if (nu == RD_SUBSCRIBE_BATCH)
            send_batch(rd, "UNSUBSCRIBE", unsubs, nu), nu = 0;
    }
    if (ns)
        send_batch(rd, "SUBSCRIBE", subs, ns);
    if (nu)
        send_batch(rd, "UNSUBSCRIBE", unsubs, nu);
    rd->n_batch = 0;
}

void rd_pubsub_node_subscribe(hd_rd *rd)
{
    const char *argv[2] = {"SUBSCRIBE", rd->node_chan.data};
    size_t lens[2] = {9, rd->node_chan.len};
    if (redisAsyncCommandArgv(rd->sub, sub_cb, rd, 2, argv, lens) == REDIS_OK)
        ack_push(rd, 1);
}

void rd_pubsub_after_subs(hd_rd *rd, rd_op *op)
{
    rd_pubsub_flush(rd);
    if (!rd->acks) {
        rd_read_send(rd, op);
        return;
    }
    op->next = NULL;
    if (rd->after_subs_tail)
        rd->after_subs_tail->next = op;
    else
        rd->after_subs = op;
    rd->after_subs_tail = op;
}

void rd_pubsub_tick(hd_rd *rd, uint64_t now_ms)
{
    bool any = false;
    while (rd->linger_head && rd->linger_head->linger_until_ms <= now_ms) {
        rd_chan *c = rd->linger_head;
        linger_unlink(rd, c);
        if (!rd->sub) /* reset on reconnect anyway */
            continue;
        c->state = RD_CH_UNSUBSCRIBING;
        batch_add(rd, c);
        any = true;
    }
    if (any)
        rd_pubsub_flush(rd);
}

static void on_subscribed(hd_rd *rd, const char *name, size_t len)
{
    bool node = rd->node_chan.len == len && memcmp(rd->node_chan.data, name, len) == 0;
    ack_pop(rd);
    if (node) {
        rd_handshake_ack(rd);
        return;
    }
    rd_chan *c = hd_map_get(&rd->chans, name, len);
    if (!c || c->state != RD_CH_SUBSCRIBING)
        return;
    c->state = RD_CH_SUBSCRIBED;
    atomic_fetch_add_explicit(&rd->st.subscribed, 1, memory_order_relaxed);
    unpark_all(rd, c);
    rd_pubsub_flush(rd);
}

static void on_unsubscribed(hd_rd *rd, const char *name, size_t len)
{
    ack_pop(rd);
    rd_chan *c = hd_map_get(&rd->chans, name, len);
    if (!c || c->state != RD_CH_UNSUBSCRIBING)
        return;
    atomic_fetch_sub_explicit(&rd->st.subscribed, 1, memory_order_relaxed);
    if (!c->parked) {
        chan_free(rd, c);
        return;
    }
    c->state = RD_CH_SUBSCRIBING; /* an op wanted it back meanwhile */
    batch_add(rd, c);
    rd_pubsub_flush(rd);
}

static void sub_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
    hd_rd *rd = privdata;
    redisReply *r = reply;
    if (!r || rd->sub != ac || r->type != REDIS_REPLY_ARRAY || r->elements < 3)
        return;
    const redisReply *kind = r->element[0], *name = r->element[1], *body = r->element[2];
    if (kind->type != REDIS_REPLY_STRING || name->type != REDIS_REPLY_STRING)
        return;
    if (strcmp(kind->str, "message") == 0 && body->type == REDIS_REPLY_STRING) {
        rd_chan *c = hd_map_get(&rd->chans, name->str, name->len);
        if (c)
            rd_channel_message(rd, c, body->str, body->len);
        else
            rd_node_or_unrouted(rd, name->str, name->len, body->str, body->len);
    } else if (strcmp(kind->str, "subscribe") == 0) {
        on_subscribed(rd, name->str, name->len);
    } else if (strcmp(kind->str, "unsubscribe") == 0) {
        on_unsubscribed(rd, name->str, name->len);
    }
}

void rd_node_or_unrouted(hd_rd *rd, const char *name, size_t len, const char *body, size_t body_len)
{
    if (rd->node_chan.len == len && memcmp(rd->node_chan.data, name, len) == 0)
        rd_node_message(rd, body, body_len);
    else
        atomic_fetch_add_explicit(&rd->st.unrouted, 1, memory_order_relaxed);
}

/* ---- teardown ---- */

static void fail_list(hd_rd *rd, rd_op *list)
{
    while (list) {
        rd_op *op = list;
        list = op->next;
        op->next = NULL;
        if (rd->stopping)
            rd_op_discard(rd, op);
        else
            rd_op_fail(rd, op, RD_DROP_REDIS_DOWN);
    }
}

void rd_pubsub_reset(hd_rd *rd)
{
    hd_map_iter it = {0};
    hd_map_entry *e;
    while ((e = hd_map_next(&rd->chans, &it))) {
        rd_chan *c = e->value;
        rd_op *parked = c->parked;
        c->parked = c->parked_tail = NULL;
        c->batched = false;
        chan_free(rd, c);
        fail_list(rd, parked);
    }
    rd->parked_ops = 0;
    rd->n_batch = 0;
    rd->linger_head = rd->linger_tail = NULL;
    while (rd->acks) {
        rd_ackq *a = rd->acks;
        rd->acks = a->next;
        hd_free(a);
    }
    rd->acks_tail = NULL;
    rd_op *after = rd->after_subs;
    rd->after_subs = rd->after_subs_tail = NULL;
    fail_list(rd, after);
    atomic_store_explicit(&rd->st.subscribed, 0, memory_order_relaxed);
}

void rd_pubsub_free(hd_rd *rd)
{
    bool was = rd->stopping;
    rd->stopping = true;
    rd_pubsub_reset(rd);
    rd->stopping = was;
    hd_map_deinit(&rd->chans);
}
