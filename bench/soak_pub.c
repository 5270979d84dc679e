/* soak_pub.c - the soak's HTTP API load: signed triggers to the steady
 * channels (--rate) and to the busy channel (--busy-rate, --busy-payload),
 * and signed GETs (--api-rate), each stream paced on its own keep-alive
 * connections.
 *
 * DESIGN
 * ------
 * A stream issues request k when k / rate seconds have passed. With every
 * connection of the stream waiting on an answer the request stays due and
 * goes out when one frees up, but never more than a second's worth: the
 * excess is dropped and counted as backlog, so a stalled server does not
 * get a burst afterwards and the offered rate stays steady. A request
 * unanswered after 15 s is aborted and counted as failed.
 * Triggers carry data {"seq":<per channel>,"ts":<mono us>[,"pad":...]};
 * seqs go out in order per channel, and each 2xx answer is counted per
 * channel for the subscribers' loss figure.
 *
 * THREADING
 * ---------
 * Single-threaded worker process.
 */
#include <stdio.h>
#include <string.h>

#include "soak.h"

#define PUB_TIMEOUT_US (15 * 1000000ull)
#define PUB_BUSY_CONNS 2

typedef struct soak_pub soak_pub;
typedef struct pub_stream pub_stream;

typedef struct pub_slot {
    bench_http h;       /* first */
    pub_stream *st;
    uint32_t ch;        /* channel index of the trigger in flight */
    uint64_t sent_us;
} pub_slot;

struct pub_stream {
    soak_pub *p;
    const char *name;
    double rate;
    pub_slot *slots;
    uint32_t n;
    uint64_t issued, dropped;
    int sx_sent, sx_ok, sx_fail, sx_backlog;
    void (*build)(soak_pub *p, pub_slot *s, uint64_t now);
};

enum { ST_STEADY, ST_BUSY, ST_API, ST__COUNT };

struct soak_pub {
    bench_loop *loop;
    bench_child *c;
    const bench_opts *o;
    bench_result res;
    uint64_t *x;
    pub_stream st[ST__COUNT];
    uint64_t *seq;          /* per channel index */
    uint64_t t0, last_scan;
    bool running, done;
    hd_buf body, req;
    uint32_t fail_logged;
};

static void pub_trigger(soak_pub *p, pub_slot *s, uint32_t k, uint32_t pad, uint64_t now)
{
    char name[96];
    soak_channel_name(p->o, k, name, sizeof name);
    p->body.len = 0;
    hd_buf_printf(&p->body,
                  "{\"name\":\"" SOAK_FAN_EVENT "\",\"channels\":[\"%s\"],\"data\":\"{\\\"seq\\\":%llu,"
                  "\\\"ts\\\":%llu",
                  name, (unsigned long long)p->seq[k]++, (unsigned long long)now);
    if (pad) {
        hd_buf_puts(&p->body, ",\\\"pad\\\":\\\"");
        hd_buf_reserve(&p->body, pad);
        memset(p->body.data + p->body.len, 'x', pad);
        p->body.len += pad;
        p->body.data[p->body.len] = '\0';
        hd_buf_puts(&p->body, "\\\"");
    }
    hd_buf_puts(&p->body, "}\"}");
    bench_api_events(&p->req, &p->o->t, p->body.data, p->body.len);
    s->ch = k;
}

static void build_steady(soak_pub *p, pub_slot *s, uint64_t now)
{
    pub_trigger(p, s, (uint32_t)(p->st[ST_STEADY].issued % p->o->channels), 0, now);
}

static void build_busy(soak_pub *p, pub_slot *s, uint64_t now)
{
    pub_trigger(p, s, p->o->channels, p->o->soak.busy_payload, now);
}

/* Rotates over the channel list, one public channel, one presence
 * channel's users. */
static void build_api(soak_pub *p, pub_slot *s, uint64_t now)
{
    uint64_t i = p->st[ST_API].issued;
    uint32_t groups = p->o->channels / 3;
    char path[300], name[96];
    s->ch = UINT32_MAX;
    if (i % 3 == 0 || groups == 0) {
        snprintf(path, sizeof path, "/apps/%s/channels", p->o->t.app_id);
    } else {
        uint32_t k = 3 * (uint32_t)((i / 3) % groups) + (i % 3 == 1 ? SK_PUBLIC : SK_PRESENCE);
        soak_channel_name(p->o, k, name, sizeof name);
        snprintf(path, sizeof path, "/apps/%s/channels/%s%s", p->o->t.app_id, name, i % 3 == 2 ? "/users" : "");
    }
    bench_api_get(&p->req, &p->o->t, path);
    (void)now;
}

static void pub_on_response(bench_http *h, int status, const char *body, size_t len, uint64_t now)
{
    pub_slot *s = (pub_slot *)h;
    pub_stream *st = s->st;
    soak_pub *p = st->p;
    bool ok = status >= 200 && status < 300 && !(body && memmem(body, len, "\"error\"", 7));
    if (ok) {
        p->x[st->sx_ok]++;
        if (s->ch != UINT32_MAX)
            soak_ch(p->x, s->ch)[SC_PUB_OK]++;
    } else {
        p->x[st->sx_fail]++;
        if (p->fail_logged++ < 5)
            fprintf(stderr, "soak: %s request failed: status %d %.*s\n", st->name, status,
                    (int)(len > 200 ? 200 : len), body ? body : "");
    }
    if (st == &p->st[ST_STEADY])
        bench_hist_record(&p->res.h[BH_REQUEST], now - s->sent_us);
}

static pub_slot *stream_idle(pub_stream *st)
{
    for (uint32_t i = 0; i < st->n; i++)
        if (!st->slots[i].h.busy)
            return &st->slots[i];
    return NULL;
}

static void stream_send(pub_stream *st, pub_slot *s, uint64_t now)
{
    soak_pub *p = st->p;
    st->build(p, s, now);
    st->issued++;
    s->sent_us = now;
    p->x[st->sx_sent]++;
    if (bench_http_send(&s->h, p->req.data, p->req.len) < 0)
        pub_on_response(&s->h, -1, NULL, 0, now);
}

static void stream_pace(pub_stream *st, uint64_t now)
{
    if (st->rate <= 0)
        return;
    uint64_t due = (uint64_t)((double)(now - st->p->t0) * st->rate / 1e6) + 1;
    uint64_t done = st->issued + st->dropped, cap = (uint64_t)st->rate + 1;
    if (due > done + cap) { /* more than a second behind */
        st->dropped += due - done - cap;
        st->p->x[st->sx_backlog] += due - done - cap;
    }
    pub_slot *s;
    while (st->issued + st->dropped < due && (s = stream_idle(st)))
        stream_send(st, s, now);
}

static void stream_timeouts(pub_stream *st, uint64_t now)
{
    for (uint32_t i = 0; i < st->n; i++)
        if (st->slots[i].h.busy && now - st->slots[i].sent_us > PUB_TIMEOUT_US)
            bench_http_abort(&st->slots[i].h);
}

static bool pub_idle(soak_pub *p)
{
    for (int k = 0; k < ST__COUNT; k++)
        for (uint32_t i = 0; i < p->st[k].n; i++)
            if (p->st[k].slots[i].h.busy)
                return false;
    return true;
}

static void pub_tick(void *arg, uint64_t now)
{
    soak_pub *p = arg;
    if (!p->t0 || p->done)
        return;
    for (int k = 0; p->running && k < ST__COUNT; k++)
        stream_pace(&p->st[k], now);
    if (now - p->last_scan >= 100000u) {
        p->last_scan = now;
        for (int k = 0; k < ST__COUNT; k++)
            stream_timeouts(&p->st[k], now);
    }
    if (!p->running && pub_idle(p)) {
        p->done = true;
        bench_child_post_u64(p->c, BM_DONE, now);
    }
}

static void pub_on_cmd(void *arg, char cmd)
{
    soak_pub *p = arg;
    if (cmd == 'g' && !p->t0) {
        p->t0 = p->last_scan = bench_now_us();
        p->running = true;
    } else if (cmd == 's') {
        p->running = false;
    } else if (cmd == 'q') {
        soak_post(p->c, &p->res, p->x);
        bench_loop_stop(p->loop);
    }
}

static void stream_init(soak_pub *p, int k, const char *name, double rate, uint32_t n,
                        void (*build)(soak_pub *, pub_slot *, uint64_t), int sx_sent)
{
    pub_stream *st = &p->st[k];
    st->p = p;
    st->name = name;
    st->rate = rate;
    st->n = rate > 0 ? n : 0;
    st->build = build;
    st->sx_sent = sx_sent;
    st->sx_ok = sx_sent + 1;
    st->sx_fail = sx_sent + 2;
    st->sx_backlog = sx_sent + 3;
    st->slots = hd_calloc(st->n + 1, sizeof *st->slots);
    for (uint32_t i = 0; i < st->n; i++) {
        bench_http_init(&st->slots[i].h, p->loop, &p->o->t, pub_on_response, NULL);
        st->slots[i].st = st;
    }
}

int soak_pub_main(bench_child *c)
{
    static soak_pub p;
    const bench_soak_opts *k = &c->o->soak;
    p.loop = bench_loop_create();
    p.c = c;
    p.o = c->o;
    p.x = hd_calloc(soak_extra_len(c->o), sizeof *p.x);
    p.seq = hd_calloc(c->o->channels + 1, sizeof *p.seq);
    hd_buf_init(&p.body);
    hd_buf_init(&p.req);
    stream_init(&p, ST_STEADY, "trigger", c->o->rate, c->o->publishers, build_steady, SX_PUB_SENT);
    stream_init(&p, ST_BUSY, "busy trigger", k->busy_rate, PUB_BUSY_CONNS, build_busy, SX_BUSY_SENT);
    stream_init(&p, ST_API, "API GET", k->api_rate, 1, build_api, SX_API_SENT);
    bench_child_watch(c, p.loop, pub_on_cmd, &p);
    bench_loop_run(p.loop, pub_tick, &p);
    for (int i = 0; i < ST__COUNT; i++) {
        for (uint32_t j = 0; j < p.st[i].n; j++)
            bench_http_deinit(&p.st[i].slots[j].h);
        hd_free(p.st[i].slots);
    }
    hd_buf_deinit(&p.body);
    hd_buf_deinit(&p.req);
    hd_free(p.seq);
    hd_free(p.x);
    bench_loop_destroy(p.loop);
    return 0;
}
