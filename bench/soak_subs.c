/* soak_subs.c - the soak's steady population: -n well-behaved clients
 * that stay subscribed for the whole run, count what reaches them, and
 * (on private channels) send client events at a steady rate; plus the
 * channel layout every soak role shares.
 *
 * DESIGN
 * ------
 * Built on bench_pool: client g subscribes to channel index g % (C + 1)
 * (soak.h), presence members as user "p<g>". HTTP deliveries carry a
 * per-channel seq (soak_pub.c) and land in the client's bit set; client
 * events carry {seq per sender, ts, from = sender's g} and land in the bit
 * set of the sender's slot g / (C + 1) in the channel. Loss needs an exact
 * expectation, so a client the server drops or refuses even once is marked
 * interrupted and left out of it (it is reconnected, after a second, to
 * keep the population steady, and still counts duplicates). At 'q' each
 * worker adds up per channel what the parent needs:
 *   HTTP:   expected = uninterrupted subscribers x triggers answered 2xx
 *   client: expected = uninterrupted members x events sent in the channel
 *           - events those members sent themselves (no echo to a sender).
 *
 * THREADING
 * ---------
 * Single-threaded worker process.
 */
#include <stdio.h>
#include <string.h>

#include "soak.h"

#define SUBS_RECONNECT_US 1000000u
#define SUBS_SCAN_US 250000u
#define SUBS_QUIET_US 500000u
#define SUBS_FINISH_MAX_US (20 * 1000000ull)

/* ---- channel layout ---- */

int soak_channel_kind(const bench_opts *o, uint32_t k)
{
    return k >= o->channels ? SK_BUSY : (int)(k % 3);
}

void soak_channel_name(const bench_opts *o, uint32_t k, char *buf, size_t cap)
{
    static const char *const prefix[] = {"", "private-", "presence-"};
    int kind = soak_channel_kind(o, k);
    if (kind == SK_BUSY)
        snprintf(buf, cap, "%s-soak-busy", o->tag);
    else
        snprintf(buf, cap, "%s%s-soak-%u", prefix[kind], o->tag, k);
}

uint32_t soak_channel_members(const bench_opts *o, uint32_t k)
{
    uint32_t n = o->channels + 1;
    return o->conns / n + (k < o->conns % n ? 1 : 0);
}

void soak_presence_data(char *buf, size_t cap, const char *user)
{
    snprintf(buf, cap, "{\"user_id\":\"%s\",\"user_info\":{\"name\":\"soak\"}}", user);
}

void soak_post(bench_child *c, const bench_result *r, const uint64_t *x)
{
    bench_child_post_result(c, r, x, soak_extra_len(c->o));
}

/* ---- the population ---- */

typedef struct soak_sub {
    uint32_t ch;
    bool interrupted;
    uint64_t retry_us;     /* 0: connected; else when to reconnect */
    bench_bitset seen;     /* HTTP seqs */
    bench_bitset *from;    /* private channels: per sender slot */
    uint64_t ce_seq;       /* client events sent (minus those refused) */
    char chan[96];
} soak_sub;

typedef struct subs_worker {
    bench_loop *loop;
    bench_child *c;
    const bench_opts *o;
    bench_result res;
    uint64_t *x;
    bench_pool pool;
    soak_sub *ss;
    uint32_t *senders, n_senders; /* local clients on private channels */
    uint32_t nslots;
    hd_buf msg;
    uint64_t t0, sent_due, last_scan, last_rx, finish_us;
    bool running, finishing, done;
} subs_worker;

static int subs_subscribe(bench_pool *p, bench_client *cl)
{
    subs_worker *w = p->user;
    soak_sub *s = &w->ss[cl - p->cl];
    char data[128], user[24];
    snprintf(user, sizeof user, "p%u", cl->gidx);
    soak_presence_data(data, sizeof data, user);
    bench_pusher_subscribe(&w->msg, &p->o->t, cl->socket_id, s->chan,
                           soak_channel_kind(p->o, s->ch) == SK_PRESENCE ? data : NULL);
    bench_ws_send_text(&cl->ws, w->msg.data, w->msg.len);
    return 1;
}

static bool ev_is(const bench_pev *ev, const char *name)
{
    return ev->event && ev->event_len == strlen(name) && memcmp(ev->event, name, ev->event_len) == 0;
}

static void subs_on_fanout(subs_worker *w, soak_sub *s, const char *msg, size_t len, uint64_t now)
{
    uint64_t seq, ts;
    if (!bench_pusher_int(msg, len, "seq", &seq) || !bench_pusher_int(msg, len, "ts", &ts)) {
        w->res.c[BC_ERRORS]++;
        return;
    }
    w->res.c[BC_MSGS]++;
    if (bench_bitset_set(&s->seen, seq))
        w->res.c[BC_DUPS]++;
    bench_hist_record(&w->res.h[BH_LATENCY], now > ts ? now - ts : 0);
}

static void subs_on_relay(subs_worker *w, soak_sub *s, const char *msg, size_t len, uint64_t now)
{
    uint64_t seq, ts, from;
    if (!s->from || !bench_pusher_int(msg, len, "seq", &seq) || !bench_pusher_int(msg, len, "ts", &ts) ||
        !bench_pusher_int(msg, len, "from", &from) || from / (w->o->channels + 1) >= w->nslots) {
        w->res.c[BC_ERRORS]++;
        return;
    }
    w->x[SX_CE_RELAYS]++;
    if (bench_bitset_set(&s->from[from / (w->o->channels + 1)], seq))
        w->x[SX_CE_DUPS]++;
    bench_hist_record(&w->res.h[BH_RELAY], now > ts ? now - ts : 0);
}

static void subs_on_event(bench_pool *p, bench_client *cl, const bench_pev *ev, const char *msg, size_t len,
                          uint64_t now)
{
    subs_worker *w = p->user;
    soak_sub *s = &w->ss[cl - p->cl];
    if (ev->kind == BP_ERROR && ev->code == 4301) {
        w->x[SX_CE_REFUSED]++;
        if (s->ce_seq > 0)
            s->ce_seq--; /* that event was not relayed: expect one fewer */
        return;
    }
    if (ev->kind != BP_OTHER)
        return;
    bool fan = ev_is(ev, SOAK_FAN_EVENT), relay = ev_is(ev, SOAK_CE_EVENT);
    if (!fan && !relay)
        return;
    if (!ev->channel || ev->channel_len != strlen(s->chan) || memcmp(ev->channel, s->chan, ev->channel_len)) {
        w->res.c[BC_ERRORS]++;
        return;
    }
    w->last_rx = now;
    if (fan)
        subs_on_fanout(w, s, msg, len, now);
    else
        subs_on_relay(w, s, msg, len, now);
}

static const bench_pool_ops subs_pool_ops = {.subscribe = subs_subscribe, .on_event = subs_on_event};

/* Client events: this worker's share of --ce-rate, round robin over its
 * private-channel clients; a client that is not subscribed skips its turn. */
static void subs_send_events(subs_worker *w, uint64_t now)
{
    if (!w->n_senders || w->o->soak.ce_rate <= 0)
        return;
    double rate = w->o->soak.ce_rate / w->c->nprocs;
    uint64_t due = (uint64_t)((double)(now - w->t0) * rate / 1e6);
    for (; w->sent_due < due; w->sent_due++) {
        uint32_t i = w->senders[w->sent_due % w->n_senders];
        bench_client *cl = &w->pool.cl[i];
        soak_sub *s = &w->ss[i];
        if (cl->subs_ok == 0 || cl->ws.state != BWS_OPEN)
            continue;
        w->msg.len = 0;
        hd_buf_printf(&w->msg,
                      "{\"event\":\"" SOAK_CE_EVENT "\",\"channel\":\"%s\",\"data\":{\"seq\":%llu,\"ts\":%llu,"
                      "\"from\":%u}}",
                      s->chan, (unsigned long long)s->ce_seq, (unsigned long long)now, cl->gidx);
        if (bench_ws_send_text(&cl->ws, w->msg.data, w->msg.len) == 0) {
            s->ce_seq++;
            w->x[SX_CE_SENT]++;
        }
    }
}

/* A client closed, refused or timed out is marked and reconnected. */
static void subs_scan(subs_worker *w, uint64_t now)
{
    for (uint32_t i = 0; i < w->pool.n; i++) {
        bench_client *cl = &w->pool.cl[i];
        soak_sub *s = &w->ss[i];
        bool down = cl->ws.io.fd < 0 || (cl->settled && cl->subs_ok < cl->subs_wanted);
        if (down && s->retry_us == 0) {
            if (!s->interrupted)
                w->x[SX_INTERRUPTED]++;
            s->interrupted = true;
            s->retry_us = now + SUBS_RECONNECT_US;
            bench_ws_close(&cl->ws, true);
        } else if (s->retry_us && now >= s->retry_us) {
            s->retry_us = 0;
            w->x[SX_RECONNECTS]++;
            bench_pool_reopen(&w->pool, cl);
        }
    }
}

static void subs_tick(void *arg, uint64_t now)
{
    subs_worker *w = arg;
    bench_pool_tick(&w->pool, now);
    if (w->running)
        subs_send_events(w, now);
    if (w->pool.ready_posted && !w->finishing && now - w->last_scan >= SUBS_SCAN_US) {
        w->last_scan = now;
        subs_scan(w, now);
    }
    if (!w->finishing || w->done)
        return;
    uint64_t last = w->last_rx > w->finish_us ? w->last_rx : w->finish_us;
    if (now - last >= SUBS_QUIET_US || now - w->finish_us >= SUBS_FINISH_MAX_US) {
        w->done = true;
        bench_child_post_u64(w->c, BM_DONE, now);
    }
}

static void subs_account(subs_worker *w)
{
    for (uint32_t i = 0; i < w->pool.n; i++) {
        soak_sub *s = &w->ss[i];
        uint64_t *ch = soak_ch(w->x, s->ch);
        ch[SC_CE_SENT] += s->ce_seq;
        if (s->interrupted)
            continue;
        ch[SC_FAN_SUBS]++;
        ch[SC_FAN_DISTINCT] += s->seen.count;
        ch[SC_CE_SENT_KEPT] += s->ce_seq;
        for (uint32_t k = 0; s->from && k < w->nslots; k++)
            ch[SC_CE_DISTINCT] += s->from[k].count;
    }
}

static void subs_on_cmd(void *arg, char cmd)
{
    subs_worker *w = arg;
    uint64_t now = bench_now_us();
    if (cmd == 'g' && !w->t0) {
        w->t0 = now;
        w->running = true;
    } else if (cmd == 's') {
        w->running = false;
    } else if (cmd == 'f' && !w->finishing) {
        w->running = false;
        w->finishing = true;
        w->finish_us = now;
    } else if (cmd == 'q') {
        subs_account(w);
        bench_pool_drop(&w->pool, true);
        soak_post(w->c, &w->res, w->x);
        bench_loop_stop(w->loop);
    }
}

static void subs_init_clients(subs_worker *w)
{
    const bench_opts *o = w->o;
    w->nslots = (o->conns + o->channels) / (o->channels + 1);
    w->ss = hd_calloc(w->pool.n + 1, sizeof *w->ss);
    w->senders = hd_calloc(w->pool.n + 1, sizeof *w->senders);
    for (uint32_t i = 0; i < w->pool.n; i++) {
        soak_sub *s = &w->ss[i];
        s->ch = w->pool.cl[i].gidx % (o->channels + 1);
        soak_channel_name(o, s->ch, s->chan, sizeof s->chan);
        if (soak_channel_kind(o, s->ch) != SK_PRIVATE)
            continue;
        s->from = hd_calloc(w->nslots, sizeof *s->from);
        w->senders[w->n_senders++] = i;
    }
}

static void subs_free_clients(subs_worker *w)
{
    for (uint32_t i = 0; i < w->pool.n; i++) {
        bench_bitset_free(&w->ss[i].seen);
        for (uint32_t k = 0; w->ss[i].from && k < w->nslots; k++)
            bench_bitset_free(&w->ss[i].from[k]);
        hd_free(w->ss[i].from);
    }
    hd_free(w->ss);
    hd_free(w->senders);
}

int soak_subs_main(bench_child *c)
{
    static subs_worker w;
    w.loop = bench_loop_create();
    w.c = c;
    w.o = c->o;
    w.x = hd_calloc(soak_extra_len(c->o), sizeof *w.x);
    hd_buf_init(&w.msg);
    bench_pool_init(&w.pool, w.loop, c, &w.res, &subs_pool_ops, &w);
    subs_init_clients(&w);
    bench_child_watch(c, w.loop, subs_on_cmd, &w);
    bench_pool_start(&w.pool, bench_now_us());
    bench_loop_run(w.loop, subs_tick, &w);
    bench_pool_deinit(&w.pool);
    subs_free_clients(&w);
    hd_buf_deinit(&w.msg);
    hd_free(w.x);
    bench_loop_destroy(w.loop);
    return 0;
}
