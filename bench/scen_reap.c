/* scen_reap.c - the `kill-reap` scenario (cluster): presence members on
 * one node, observers on another; kill -9 the members' node and time how
 * long the cluster takes to tell the observers that every member left.
 *
 * DESIGN
 * ------
 * Member g (-n of them, on --targets, normally the one node to kill)
 * joins presence-<tag>-reap-<g % C> as user_id "<g>". One observer per
 * channel (user_id "obs-<k>", on --observe-target, another node) joins
 * first, so every member shows up at its observer as one member_added.
 * Once each observer has seen all its members added, the parent reads the
 * clock, sends SIGKILL to --kill-pid and tells the observer process. The
 * observer records when each member's member_removed arrives; it reports
 * done when every member it saw added is removed, or --duration s after the
 * kill. Figures: time from the kill to the first, median, 99th percentile
 * and last member_removed, members never removed, removals seen before the
 * kill (must be 0) and duplicated removals (must be 0).
 * A server that keeps no cluster-wide record of a dead node's members (so
 * nobody announces their leave) shows as "not removed" = all of them.
 * Phases: observer process ready -> member workers ready -> observer
 * BM_MARK (all added, or a 30 s timeout) -> members 'x' (ignore their
 * connections dying) -> kill -> observer 'k' -> observer BM_DONE ->
 * 'q' everywhere: results.
 *
 * THREADING
 * ---------
 * Parent, member workers and the observer are single-threaded processes.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "bench.h"

#define REAP_ADDED_WAIT_MS 30000
#define REAP_OBS_SCAN_US 50000u

static void reap_channel(char *out, size_t cap, const bench_opts *o, uint32_t k)
{
    snprintf(out, cap, "presence-%s-reap-%u", o->tag, k);
}

/* The member number in a member_added / member_removed message: the
 * digits of "user_id" (members are "<g>", observers "obs-<k>"). */
static bool reap_member_id(const char *msg, size_t len, uint64_t *g)
{
    const char *k = memmem(msg, len, "user_id", 7);
    if (!k)
        return false;
    const char *p = k + 7, *end = msg + len;
    while (p < end && (*p == '\\' || *p == '"' || *p == ':' || *p == ' '))
        p++;
    if (p >= end || *p < '0' || *p > '9')
        return false;
    uint64_t n = 0;
    while (p < end && *p >= '0' && *p <= '9')
        n = n * 10 + (uint64_t)(*p++ - '0');
    *g = n;
    return true;
}

static bool event_is(const bench_pev *ev, const char *name)
{
    return ev->event && ev->event_len == strlen(name) && memcmp(ev->event, name, ev->event_len) == 0;
}

/* ---- members ---- */

typedef struct reap_members {
    bench_loop *loop;
    bench_child *c;
    bench_result res;
    bench_pool pool;
    hd_buf msg;
} reap_members;

static int member_subscribe(bench_pool *p, bench_client *cl)
{
    reap_members *w = p->user;
    char ch[96], data[96];
    reap_channel(ch, sizeof ch, p->o, cl->gidx % p->o->channels);
    snprintf(data, sizeof data, "{\"user_id\":\"%u\",\"user_info\":{\"role\":\"member\"}}", cl->gidx);
    bench_pusher_subscribe(&w->msg, &p->o->t, cl->socket_id, ch, data);
    bench_ws_send_text(&cl->ws, w->msg.data, w->msg.len);
    return 1;
}

static void member_on_event(bench_pool *p, bench_client *cl, const bench_pev *ev, const char *msg, size_t len,
                            uint64_t now_us)
{
    (void)p, (void)cl, (void)ev, (void)msg, (void)len, (void)now_us;
}

static const bench_pool_ops member_ops = {.subscribe = member_subscribe, .on_event = member_on_event};

static void member_on_cmd(void *arg, char cmd)
{
    reap_members *w = arg;
    if (cmd == 'x') {
        /* the node is about to die: its connections ending is the point */
        w->pool.dropping = true;
        bench_child_post(w->c, BM_MARK, NULL, 0);
    } else if (cmd == 'q') {
        bench_pool_drop(&w->pool, true);
        bench_child_post_result(w->c, &w->res, NULL, 0);
        bench_loop_stop(w->loop);
    }
}

static void member_tick(void *arg, uint64_t now_us)
{
    reap_members *w = arg;
    bench_pool_tick(&w->pool, now_us);
}

static int member_main(bench_child *c)
{
    static reap_members w;
    w.loop = bench_loop_create();
    w.c = c;
    hd_buf_init(&w.msg);
    bench_pool_init(&w.pool, w.loop, c, &w.res, &member_ops, &w);
    bench_child_watch(c, w.loop, member_on_cmd, &w);
    bench_pool_start(&w.pool, bench_now_us());
    bench_loop_run(w.loop, member_tick, &w);
    bench_pool_deinit(&w.pool);
    hd_buf_deinit(&w.msg);
    bench_loop_destroy(w.loop);
    return 0;
}

/* ---- observer ---- */

/* extra array of the observer's result: per member, then totals */
enum { RX_REMOVED_AT, RX_ADDED, RX_REMOVED, RX__PER_MEMBER };

typedef struct reap_observer {
    bench_loop *loop;
    bench_child *c;
    bench_opts oo;          /* the scenario's options, clients on obs_target */
    const bench_opts *o;    /* the scenario's own */
    bench_result res;
    bench_pool pool;
    hd_buf msg;
    uint64_t *x;            /* [RX__PER_MEMBER * n] */
    uint64_t added, removed, t_kill_cmd, last_scan;
    bool mark_posted, killed, done;
} reap_observer;

static int obs_subscribe(bench_pool *p, bench_client *cl)
{
    reap_observer *w = p->user;
    char ch[96], data[96];
    reap_channel(ch, sizeof ch, w->o, cl->gidx);
    snprintf(data, sizeof data, "{\"user_id\":\"obs-%u\",\"user_info\":{\"role\":\"observer\"}}", cl->gidx);
    bench_pusher_subscribe(&w->msg, &p->o->t, cl->socket_id, ch, data);
    bench_ws_send_text(&cl->ws, w->msg.data, w->msg.len);
    return 1;
}

static void obs_member_event(reap_observer *w, bench_client *cl, bool added, const char *msg, size_t len,
                             uint64_t now_us)
{
    uint32_t n = w->o->conns;
    uint64_t g;
    if (!reap_member_id(msg, len, &g))
        return; /* another observer (there is none on this channel) */
    if (g >= n || g % w->o->channels != cl->gidx) {
        w->res.c[BC_ERRORS]++;
        return;
    }
    uint64_t *m = &w->x[g * RX__PER_MEMBER];
    if (added) {
        if (m[RX_ADDED]++ == 0)
            w->added++;
        return;
    }
    if (m[RX_REMOVED]++ == 0) {
        m[RX_REMOVED_AT] = now_us;
        w->removed++;
    }
}

static void obs_on_event(bench_pool *p, bench_client *cl, const bench_pev *ev, const char *msg, size_t len,
                         uint64_t now_us)
{
    reap_observer *w = p->user;
    if (event_is(ev, "pusher_internal:member_added"))
        obs_member_event(w, cl, true, msg, len, now_us);
    else if (event_is(ev, "pusher_internal:member_removed"))
        obs_member_event(w, cl, false, msg, len, now_us);
}

static const bench_pool_ops obs_ops = {.subscribe = obs_subscribe, .on_event = obs_on_event};

static void obs_on_cmd(void *arg, char cmd)
{
    reap_observer *w = arg;
    if (cmd == 'k') {
        w->killed = true;
        w->t_kill_cmd = bench_now_us();
    } else if (cmd == 'q') {
        bench_pool_drop(&w->pool, true);
        bench_child_post_result(w->c, &w->res, w->x, (size_t)w->o->conns * RX__PER_MEMBER);
        bench_loop_stop(w->loop);
    }
}

static void obs_tick(void *arg, uint64_t now_us)
{
    reap_observer *w = arg;
    bench_pool_tick(&w->pool, now_us);
    if (now_us - w->last_scan < REAP_OBS_SCAN_US)
        return;
    w->last_scan = now_us;
    if (!w->mark_posted && w->added == w->o->conns) {
        w->mark_posted = true;
        bench_child_post_u64(w->c, BM_MARK, w->added);
    }
    /* done: everyone seen added has been removed, or the wait is over */
    if (w->killed && !w->done &&
        (w->removed >= w->added || now_us - w->t_kill_cmd >= (uint64_t)(w->o->duration * 1e6))) {
        w->done = true;
        bench_child_post_u64(w->c, BM_DONE, w->removed);
    }
}

static int obs_main(bench_child *c)
{
    static reap_observer w;
    w.loop = bench_loop_create();
    w.c = c;
    w.o = c->o;
    /* one client per channel, all on the observe target */
    w.oo = *c->o;
    w.oo.t = c->o->obs_target;
    w.oo.n_targets = 0;
    w.oo.conns = c->o->channels;
    c->o = &w.oo;
    hd_buf_init(&w.msg);
    w.x = hd_calloc((size_t)w.o->conns * RX__PER_MEMBER + 1, sizeof *w.x);
    bench_pool_init(&w.pool, w.loop, c, &w.res, &obs_ops, &w);
    bench_child_watch(c, w.loop, obs_on_cmd, &w);
    bench_pool_start(&w.pool, bench_now_us());
    bench_loop_run(w.loop, obs_tick, &w);
    bench_pool_deinit(&w.pool);
    hd_buf_deinit(&w.msg);
    hd_free(w.x);
    bench_loop_destroy(w.loop);
    return 0;
}

/* ---- parent ---- */

typedef struct reap_run {
    bench_proc obs, *members;
    int n_members;
    bench_result mres, ores;
    uint64_t *x;
    uint64_t t_kill, t_done;
    bool all_added, kill_sent;
    bench_server_sample s[2];
} reap_run;

typedef struct reap_tally {
    uint64_t added, removed, early, dups, never;
    uint64_t first_us, last_us;
    bench_hist after_kill;
} reap_tally;

static void reap_count(const bench_opts *o, const reap_run *r, reap_tally *t)
{
    memset(t, 0, sizeof *t);
    t->first_us = UINT64_MAX;
    for (uint32_t g = 0; g < o->conns; g++) {
        const uint64_t *m = &r->x[(size_t)g * RX__PER_MEMBER];
        if (m[RX_ADDED] == 0)
            continue;
        t->added++;
        if (m[RX_REMOVED] == 0) {
            t->never++;
            continue;
        }
        t->removed++;
        t->dups += m[RX_REMOVED] - 1;
        if (m[RX_REMOVED_AT] < r->t_kill) {
            t->early++;
            continue;
        }
        uint64_t d = m[RX_REMOVED_AT] - r->t_kill;
        bench_hist_record(&t->after_kill, d);
        if (d < t->first_us)
            t->first_us = d;
        if (d > t->last_us)
            t->last_us = d;
    }
    if (t->first_us == UINT64_MAX)
        t->first_us = 0;
}

static void reap_report(const bench_opts *o, const reap_run *r)
{
    reap_tally t;
    bench_report rep;
    reap_count(o, r, &t);
    bench_report_begin(&rep, o);
    bench_report_section(&rep, "load");
    bench_report_int(&rep, "members", o->conns, "presence members");
    bench_report_int(&rep, "channels", o->channels, "presence channels (one observer each)");
    bench_report_int(&rep, "kill_pid", (uint64_t)o->kill_pid, "killed pid");
    bench_report_num(&rep, "wait_s", o->duration, "s", "longest wait after the kill");
    bench_report_section(&rep, "setup");
    bench_report_int(&rep, "conn_ok", r->mres.c[BC_CONN_OK], "members connected");
    bench_report_int(&rep, "sub_fail", r->mres.c[BC_SUB_FAIL] + r->ores.c[BC_SUB_FAIL], "subscriptions failed");
    bench_report_int(&rep, "observers_ok", r->ores.c[BC_SUB_OK], "observers subscribed");
    bench_report_int(&rep, "added_seen", t.added, "members the observers saw added");
    bench_report_section(&rep, "after kill -9");
    bench_report_int(&rep, "removed", t.removed, "member_removed seen");
    bench_report_int(&rep, "not_removed", t.never, "members never removed (within the wait)");
    bench_report_int(&rep, "removed_before_kill", t.early, "removed before the kill (must be 0)");
    bench_report_int(&rep, "removed_duplicated", t.dups, "duplicated member_removed (must be 0)");
    bench_report_int(&rep, "unexpected", r->ores.c[BC_ERRORS], "member events on the wrong channel");
    /* -1: no member_removed after the kill at all */
    bool any = t.removed > t.early;
    bench_report_num(&rep, "kill_to_first_removed_ms", any ? (double)t.first_us / 1000.0 : -1, "ms",
                     "kill -> first member_removed (-1: none)");
    bench_report_num(&rep, "kill_to_last_removed_ms", any ? (double)t.last_us / 1000.0 : -1, "ms",
                     "kill -> last member_removed (-1: none)");
    bench_report_hist(&rep, "removed_after_kill", &t.after_kill, "kill -> member_removed");
    bench_report_section(&rep, "server");
    bench_report_cpu(&rep, "server", &r->s[0], &r->s[1], t.removed, "removal");
    bench_report_end(&rep);
}

/* Observer, then members, connected and subscribed; then every member
 * added at its observer (or the wait over). */
static int reap_setup(const bench_opts *o, reap_run *r)
{
    if (bench_proc_spawn(&r->obs, 0, 1, o, obs_main) < 0)
        return -1;
    if (bench_proc_wait(&r->obs, 1, BM_READY, NULL, bench_setup_timeout_ms(o, o->channels)) < 0)
        return -1;
    if (bench_proc_spawn_all(r->members, r->n_members, o, member_main) < 0)
        return -1;
    if (bench_proc_wait(r->members, r->n_members, BM_READY, NULL, bench_setup_timeout_ms(o, o->conns)) < 0)
        return -1;
    r->all_added = bench_proc_wait(&r->obs, 1, BM_MARK, NULL, REAP_ADDED_WAIT_MS) == 0;
    if (!r->all_added)
        fprintf(stderr, "kill-reap: the observers did not see every member added; killing anyway\n");
    return 0;
}

static int reap_kill(const bench_opts *o, reap_run *r)
{
    bench_proc_cmd(r->members, r->n_members, 'x');
    if (bench_proc_wait(r->members, r->n_members, BM_MARK, NULL, 10000) < 0)
        return -1;
    bench_server_sample_take(o->server_pid, &r->s[0]);
    r->t_kill = bench_now_us();
    if (kill(o->kill_pid, SIGKILL) < 0) {
        perror("kill-reap: kill");
        return -1;
    }
    r->kill_sent = true;
    bench_proc_cmd(&r->obs, 1, 'k');
    int rc = bench_proc_wait(&r->obs, 1, BM_DONE, NULL, (int)(o->duration * 1000) + 10000);
    r->t_done = bench_now_us();
    bench_server_sample_take(o->server_pid, &r->s[1]);
    return rc;
}

int bench_run_kill_reap(const bench_opts *o)
{
    if (o->kill_pid <= 0) {
        fprintf(stderr, "herald_bench: kill-reap needs --kill-pid PID (the members' node)\n");
        return -1;
    }
    if (o->kill_pid == o->server_pid) {
        fprintf(stderr, "herald_bench: kill-reap: --kill-pid is the --server-pid; watch the surviving node\n");
        return -1;
    }
    reap_run *r = hd_calloc(1, sizeof *r);
    r->n_members = bench_default_procs(o, o->conns);
    r->members = hd_calloc((size_t)r->n_members, sizeof *r->members);
    r->x = hd_calloc((size_t)o->conns * RX__PER_MEMBER + 1, sizeof *r->x);
    printf("kill-reap: %u members on %u presence channels, observers on %s:%d, kill -9 %d, wait up to %.0f s\n",
           o->conns, o->channels, o->obs_target.host, o->obs_target.port, (int)o->kill_pid, o->duration);
    int rc = reap_setup(o, r);
    if (rc == 0)
        rc = reap_kill(o, r);
    if (rc == 0 || r->kill_sent) {
        if (bench_proc_collect(&r->obs, 1, 'q', &r->ores, r->x, (size_t)o->conns * RX__PER_MEMBER) < 0 ||
            bench_proc_collect(r->members, r->n_members, 'q', &r->mres, NULL, 0) < 0)
            rc = -1;
        reap_report(o, r);
    } else {
        bench_proc_kill(&r->obs, 1);
        bench_proc_kill(r->members, r->n_members);
    }
    bench_proc_reap(&r->obs, 1);
    bench_proc_reap(r->members, r->n_members);
    hd_free(r->x);
    hd_free(r->members);
    hd_free(r);
    return rc;
}
