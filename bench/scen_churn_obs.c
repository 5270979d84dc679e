/* scen_churn_obs.c - the presence observers of a cluster churn run (churn
 * with --targets): do joins and leaves on one node reach the members on
 * the other?
 *
 * DESIGN
 * ------
 * One observer per presence channel per target (C x count clients, one
 * process): observer i joins presence-<tag>-churn-<i % C> on target
 * (i / C) % count as user "obs-<i>", before the loops start, and stays
 * for the whole run. Each member_added / member_removed it receives is
 * about a loop's user "u<g>" (or "u<g>c<n>") and is counted as local (g's loop connects to
 * the observer's node) or remote (another node: the event crossed). Per
 * observer and user it keeps added - removed; once every loop has ended
 * and --settle s have passed, a user whose count is not 0 at some observer
 * is "unbalanced" (an added without its removed or the reverse: must be 0).
 * A cycle normally shows as one added and one removed at every observer
 * of its channel; fewer when a loop's next join reaches the server before
 * its previous leave did (the user never left, so nothing is announced),
 * which --unique-users rules out: then the counts must match exactly.
 * Member events about the other observers of the channel are ignored.
 *
 * THREADING
 * ---------
 * One single-threaded process, driven by the churn parent.
 */
#include <stdio.h>
#include <string.h>

#include "bench.h"

typedef struct churn_obs {
    bench_loop *loop;
    bench_child *c;
    const bench_opts *o;   /* the scenario's options */
    bench_opts oo;         /* the observers' own: C x count clients */
    bench_result res;
    bench_pool pool;
    hd_buf msg;
    uint64_t x[BENCH_CHURN_OBS__COUNT];
    int32_t *net;          /* [observer * concurrency + loop]: added - removed */
} churn_obs;

static int obs_subscribe(bench_pool *p, bench_client *cl)
{
    churn_obs *w = p->user;
    char ch[96], data[96];
    snprintf(ch, sizeof ch, "presence-%s-churn-%u", w->o->tag, cl->gidx % w->o->channels);
    snprintf(data, sizeof data, "{\"user_id\":\"obs-%u\",\"user_info\":{\"name\":\"observer\"}}", cl->gidx);
    bench_pusher_subscribe(&w->msg, &p->o->t, cl->socket_id, ch, data);
    bench_ws_send_text(&cl->ws, w->msg.data, w->msg.len);
    return 1;
}

/* The loop number g of user "u<g>" in a member event; false otherwise. */
static bool loop_user(const char *msg, size_t len, uint32_t *g)
{
    const char *k = memmem(msg, len, "user_id", 7), *end = msg + len;
    if (!k)
        return false;
    const char *p = k + 7;
    while (p < end && (*p == '\\' || *p == '"' || *p == ':' || *p == ' '))
        p++;
    if (p + 1 >= end || *p != 'u' || p[1] < '0' || p[1] > '9')
        return false;
    uint32_t n = 0;
    for (p++; p < end && *p >= '0' && *p <= '9'; p++)
        n = n * 10 + (uint32_t)(*p - '0');
    *g = n;
    return true;
}

static void obs_on_event(bench_pool *p, bench_client *cl, const bench_pev *ev, const char *msg, size_t len,
                         uint64_t now_us)
{
    static const char added[] = "pusher_internal:member_added", removed[] = "pusher_internal:member_removed";
    churn_obs *w = p->user;
    (void)now_us;
    bool is_add = ev->event_len == sizeof added - 1 && memcmp(ev->event, added, ev->event_len) == 0;
    bool is_rm = ev->event_len == sizeof removed - 1 && memcmp(ev->event, removed, ev->event_len) == 0;
    uint32_t g;
    if (!is_add && !is_rm)
        return;
    if (memmem(msg, len, "obs-", 4))
        return; /* another observer joining */
    if (!loop_user(msg, len, &g) || g >= w->o->concurrency || g % w->o->channels != cl->gidx % w->o->channels) {
        w->res.c[BC_ERRORS]++;
        return;
    }
    /* the loops' placement is by the scenario's options, the observer's by its own */
    bool remote = bench_target_index(w->o, g) != bench_target_index(&w->oo, cl->gidx);
    int k = is_add ? (remote ? BENCH_CHURN_OBS_ADDED_REMOTE : BENCH_CHURN_OBS_ADDED_LOCAL)
                   : (remote ? BENCH_CHURN_OBS_REMOVED_REMOTE : BENCH_CHURN_OBS_REMOVED_LOCAL);
    w->x[k]++;
    w->net[(size_t)cl->gidx * w->o->concurrency + g] += is_add ? 1 : -1;
}

static const bench_pool_ops obs_ops = {.subscribe = obs_subscribe, .on_event = obs_on_event};

static void obs_on_cmd(void *arg, char cmd)
{
    churn_obs *w = arg;
    if (cmd != 'q')
        return;
    for (size_t i = 0; i < (size_t)w->pool.n * w->o->concurrency; i++)
        if (w->net[i] != 0)
            w->x[BENCH_CHURN_OBS_UNBALANCED]++;
    w->x[BENCH_CHURN_OBS_CLOSED] = w->res.c[BC_CLOSED] + w->res.c[BC_SUB_FAIL] + w->res.c[BC_CONN_FAIL];
    w->x[BENCH_CHURN_OBS_UNEXPECTED] = w->res.c[BC_ERRORS];
    bench_pool_drop(&w->pool, true);
    bench_child_post_result(w->c, &w->res, w->x, BENCH_CHURN_OBS__COUNT);
    bench_loop_stop(w->loop);
}

static void obs_tick(void *arg, uint64_t now_us)
{
    churn_obs *w = arg;
    bench_pool_tick(&w->pool, now_us);
}

int bench_churn_obs_main(bench_child *c)
{
    static churn_obs w;
    w.loop = bench_loop_create();
    w.c = c;
    w.o = c->o;
    w.oo = *c->o;
    w.oo.conns = c->o->channels * (uint32_t)(c->o->n_targets > 0 ? c->o->n_targets : 1);
    c->o = &w.oo;
    hd_buf_init(&w.msg);
    bench_pool_init(&w.pool, w.loop, c, &w.res, &obs_ops, &w);
    w.net = hd_calloc((size_t)w.pool.n * w.o->concurrency + 1, sizeof *w.net);
    bench_child_watch(c, w.loop, obs_on_cmd, &w);
    bench_pool_start(&w.pool, bench_now_us());
    bench_loop_run(w.loop, obs_tick, &w);
    bench_pool_deinit(&w.pool);
    hd_buf_deinit(&w.msg);
    hd_free(w.net);
    bench_loop_destroy(w.loop);
    return 0;
}
