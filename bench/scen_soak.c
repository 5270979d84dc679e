/* scen_soak.c - the `soak` scenario: an hour (--duration) of steady mixed
 * load (a subscribed population on public, private and presence channels,
 * churn, signed HTTP triggers and GETs, client events, webhooks) while a
 * share of clients misbehave (slow readers, slowloris heads and bodies,
 * garbage frames and bytes); the server's RSS, descriptors and every gauge
 * of its metrics are sampled as a time series and judged flat or growing.
 *
 * DESIGN
 * ------
 * The roles and their counters are described in soak.h. The parent:
 * samples the idle server, starts the webhook receiver, lets the steady
 * population connect and subscribe (BM_READY), starts every role with 'g',
 * then only samples every --sample s until --duration s have passed
 * (samples before --warmup s are phase "warmup" and left out of the
 * verdicts). Then 's' stops the load: the publisher, churn and misbehaving
 * roles finish what is in flight and post BM_DONE, the population reports
 * once deliveries have been quiet for a moment ('f'), and every role
 * reports ('q'; the population resets its connections). After --settle s
 * one more sample ("after") shows what the server holds with no client
 * left. The run ends early if the server process disappears. It is a
 * measurement, not a test: the exit status says whether the run itself
 * worked, not whether the series were flat.
 *
 * THREADING
 * ---------
 * Parent process; the roles are single-threaded worker processes.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "soak.h"

enum { R_SUBS, R_PUB, R_CHURN, R_BAD, R_HOOK, R__COUNT };

typedef struct soak_run {
    const bench_opts *o;
    bench_proc *subs;
    int n_subs;
    bench_proc role[R__COUNT]; /* R_SUBS unused: subs[] */
    bool has_role[R__COUNT];
    bench_result res[R__COUNT];
    uint64_t *x;
    soak_sampler *smp;
    pid_t pid;
    uint64_t t_start, t_go, t_stop;
    double measured_s;
    bool server_gone;
} soak_run;

static double since_s(uint64_t from)
{
    return (double)(bench_now_us() - from) / 1e6;
}

static void sample(soak_run *r, int phase)
{
    char line[256];
    if (!soak_sample(r->smp, since_s(r->t_start), phase, line, sizeof line)) {
        r->server_gone = true;
        printf("soak: server process %d is gone at %.0f s\n", (int)r->pid, since_s(r->t_start));
    }
    printf("soak: %s\n", line);
}

static int start_roles(soak_run *r)
{
    const bench_opts *o = r->o;
    static const bench_child_main mains[R__COUNT] = {NULL, soak_pub_main, soak_churn_main, soak_bad_main, NULL};
    if (o->soak.webhook_port > 0) {
        if (bench_proc_spawn(&r->role[R_HOOK], 0, 1, o, soak_hook_main) < 0 ||
            bench_proc_wait(&r->role[R_HOOK], 1, BM_READY, NULL, 10000) < 0)
            return -1;
        r->has_role[R_HOOK] = true;
    }
    r->n_subs = bench_default_procs(o, o->conns);
    r->subs = hd_calloc((size_t)r->n_subs, sizeof *r->subs);
    if (bench_proc_spawn_all(r->subs, r->n_subs, o, soak_subs_main) < 0)
        return -1;
    r->has_role[R_SUBS] = true;
    if (bench_proc_wait(r->subs, r->n_subs, BM_READY, NULL, bench_setup_timeout_ms(o, o->conns)) < 0)
        return -1;
    for (int k = R_PUB; k <= R_BAD; k++) {
        if (bench_proc_spawn(&r->role[k], 0, 1, o, mains[k]) < 0)
            return -1;
        r->has_role[k] = true;
    }
    return 0;
}

static void command_all(soak_run *r, char cmd)
{
    bench_proc_cmd(r->subs, r->n_subs, cmd);
    for (int k = R_PUB; k <= R_BAD; k++)
        bench_proc_cmd(&r->role[k], 1, cmd);
}

/* Sample every --sample s until --duration s have passed (or the server died). */
static void run_load(soak_run *r)
{
    const bench_opts *o = r->o;
    uint64_t period = (uint64_t)(fmax(o->soak.sample_s, 0.5) * 1e6);
    uint64_t end = r->t_go + (uint64_t)(o->duration * 1e6);
    uint64_t warm = r->t_go + (uint64_t)(o->warmup * 1e6);
    command_all(r, 'g');
    for (uint64_t next = r->t_go + period; !r->server_gone;) {
        uint64_t now = bench_now_us(), wake = next < end ? next : end;
        if (wake > now)
            bench_sleep_us(wake - now);
        if (bench_now_us() >= end)
            break;
        sample(r, bench_now_us() < warm ? SP_WARMUP : SP_MEASURE);
        next += period;
    }
    if (!r->server_gone)
        sample(r, SP_MEASURE);
    r->t_stop = bench_now_us();
    r->measured_s = (double)(r->t_stop - r->t_go) / 1e6;
}

static int stop_load(soak_run *r)
{
    int rc = 0;
    command_all(r, 's');
    for (int k = R_PUB; k <= R_BAD; k++)
        if (bench_proc_wait(&r->role[k], 1, BM_DONE, NULL, 30000) < 0)
            rc = -1;
    bench_proc_cmd(r->subs, r->n_subs, 'f');
    if (bench_proc_wait(r->subs, r->n_subs, BM_DONE, NULL, 30000) < 0)
        rc = -1;
    size_t nx = soak_extra_len(r->o);
    if (bench_proc_collect(r->subs, r->n_subs, 'q', &r->res[R_SUBS], r->x, nx) < 0)
        rc = -1;
    for (int k = R_PUB; k <= R_BAD; k++)
        if (bench_proc_collect(&r->role[k], 1, 'q', &r->res[k], r->x, nx) < 0)
            rc = -1;
    bench_sleep_us((uint64_t)(r->o->settle * 1e6));
    sample(r, SP_AFTER);
    if (r->has_role[R_HOOK] && bench_proc_collect(&r->role[R_HOOK], 1, 'q', &r->res[R_HOOK], r->x, nx) < 0)
        rc = -1;
    return rc;
}

static void reap_all(soak_run *r)
{
    if (r->subs)
        bench_proc_reap(r->subs, r->n_subs);
    for (int k = R_PUB; k < R__COUNT; k++)
        if (r->has_role[k])
            bench_proc_reap(&r->role[k], 1);
}

/* ---- report ---- */

static uint64_t sub0(uint64_t a, uint64_t b)
{
    return a > b ? a - b : 0;
}

static void report_load(bench_report *rep, const soak_run *r)
{
    const bench_opts *o = r->o;
    const bench_soak_opts *k = &o->soak;
    bench_report_section(rep, "load");
    bench_report_num(rep, "duration_s", r->measured_s, "s", "load ran");
    bench_report_num(rep, "warmup_s", o->warmup, "s", "warm-up (left out of the verdicts)");
    bench_report_num(rep, "sample_s", k->sample_s, "s", "sampling interval");
    bench_report_int(rep, "steady_clients", o->conns, "steady clients");
    bench_report_int(rep, "steady_channels", o->channels, "steady channels (public/private/presence)");
    bench_report_num(rep, "trigger_rate", o->rate, "/s", "HTTP triggers to them");
    bench_report_num(rep, "busy_rate", k->busy_rate, "/s", "HTTP triggers to the busy channel");
    bench_report_int(rep, "busy_payload", k->busy_payload, "busy event padding (bytes)");
    bench_report_num(rep, "ce_rate", k->ce_rate, "/s", "client events");
    bench_report_num(rep, "api_rate", k->api_rate, "/s", "HTTP API GETs");
    bench_report_num(rep, "churn_rate", k->churn_rate, "/s", "churn cycles");
    bench_report_num(rep, "rst_share", k->rst_share, "", "churn cycles ending with RST");
    bench_report_int(rep, "slow_readers", k->slow_readers, "slow readers");
    bench_report_num(rep, "slow_hold_s", k->slow_hold, "s", "slow reader stall");
    bench_report_int(rep, "loris_heads", k->loris_heads, "slowloris heads");
    bench_report_int(rep, "loris_bodies", k->loris_bodies, "slowloris bodies");
    bench_report_num(rep, "trickle_s", k->trickle_s, "s", "slowloris byte interval");
    bench_report_num(rep, "bad_life_s", k->bad_life, "s", "slowloris gives up after");
    bench_report_num(rep, "garbage_ws_rate", k->garbage_ws_rate, "/s", "garbage WebSocket connections");
    bench_report_num(rep, "garbage_http_rate", k->garbage_http_rate, "/s", "garbage HTTP connections");
    bench_report_int(rep, "webhook_port", (uint64_t)(k->webhook_port > 0 ? k->webhook_port : 0), "webhook receiver port");
}

static void report_fanout(bench_report *rep, const soak_run *r)
{
    const bench_result *s = &r->res[R_SUBS], *p = &r->res[R_PUB];
    const uint64_t *x = r->x;
    uint64_t exp_steady = 0, got_steady = 0, exp_busy = 0, got_busy = 0;
    for (uint32_t k = 0; k <= r->o->channels; k++) {
        const uint64_t *ch = soak_ch((uint64_t *)x, k);
        uint64_t e = ch[SC_FAN_SUBS] * ch[SC_PUB_OK];
        *(k < r->o->channels ? &exp_steady : &exp_busy) += e;
        *(k < r->o->channels ? &got_steady : &got_busy) += ch[SC_FAN_DISTINCT];
    }
    bench_report_section(rep, "steady population");
    bench_report_int(rep, "conn_ok", s->c[BC_CONN_OK], "connections established (incl. reconnects)");
    bench_report_int(rep, "conn_fail", s->c[BC_CONN_FAIL], "connections failed");
    bench_report_int(rep, "sub_fail", s->c[BC_SUB_FAIL], "subscriptions refused / timed out");
    bench_report_int(rep, "closed_by_server", s->c[BC_CLOSED], "closed by the server");
    bench_report_int(rep, "interrupted", x[SX_INTERRUPTED], "clients interrupted (left out of loss)");
    bench_report_int(rep, "reconnects", x[SX_RECONNECTS], "reconnects");
    bench_report_hist(rep, "handshake", &s->h[BH_HANDSHAKE], "handshake latency");
    bench_report_section(rep, "HTTP fan-out");
    bench_report_int(rep, "triggers", x[SX_PUB_SENT], "triggers sent");
    bench_report_int(rep, "triggers_ok", x[SX_PUB_OK], "answered 2xx");
    bench_report_int(rep, "triggers_failed", x[SX_PUB_FAIL], "failed");
    bench_report_int(rep, "triggers_backlog", x[SX_PUB_BACKLOG], "dropped, over a second behind");
    bench_report_hist(rep, "trigger", &p->h[BH_REQUEST], "trigger round trip");
    bench_report_int(rep, "busy_triggers_ok", x[SX_BUSY_OK], "busy-channel triggers answered 2xx");
    bench_report_int(rep, "busy_triggers_failed", x[SX_BUSY_FAIL] + x[SX_BUSY_BACKLOG], "... failed or dropped");
    bench_report_int(rep, "deliveries", s->c[BC_MSGS], "deliveries");
    bench_report_int(rep, "expected", exp_steady, "expected on steady channels");
    bench_report_int(rep, "lost", sub0(exp_steady, got_steady), "lost on steady channels");
    bench_report_int(rep, "busy_expected", exp_busy, "expected on the busy channel");
    bench_report_int(rep, "busy_lost", sub0(exp_busy, got_busy), "lost on the busy channel");
    bench_report_int(rep, "duplicated", s->c[BC_DUPS], "duplicated");
    bench_report_int(rep, "unexpected", s->c[BC_ERRORS], "malformed / wrong channel / other errors");
    bench_report_hist(rep, "latency", &s->h[BH_LATENCY], "end-to-end latency");
}

static void report_client_events(bench_report *rep, const soak_run *r)
{
    const uint64_t *x = r->x;
    uint64_t expected = 0, distinct = 0;
    for (uint32_t k = 0; k < r->o->channels; k++) {
        const uint64_t *ch = soak_ch((uint64_t *)x, k);
        if (soak_channel_kind(r->o, k) != SK_PRIVATE)
            continue;
        expected += sub0(ch[SC_FAN_SUBS] * ch[SC_CE_SENT], ch[SC_CE_SENT_KEPT]);
        distinct += ch[SC_CE_DISTINCT];
    }
    bench_report_section(rep, "client events");
    bench_report_int(rep, "ce_sent", x[SX_CE_SENT], "sent");
    bench_report_int(rep, "ce_refused", x[SX_CE_REFUSED], "refused (4301)");
    bench_report_int(rep, "ce_relays", x[SX_CE_RELAYS], "relayed deliveries");
    bench_report_int(rep, "ce_expected", expected, "expected");
    bench_report_int(rep, "ce_lost", sub0(expected, distinct), "lost");
    bench_report_int(rep, "ce_duplicated", x[SX_CE_DUPS], "duplicated");
    bench_report_hist(rep, "relay", &r->res[R_SUBS].h[BH_RELAY], "relay latency");
}

static void report_churn_api(bench_report *rep, const soak_run *r)
{
    const uint64_t *x = r->x;
    const bench_result *c = &r->res[R_CHURN];
    bench_report_section(rep, "churn");
    bench_report_int(rep, "churn_cycles", x[SX_CHURN_CYCLES], "cycles completed");
    bench_report_num(rep, "churn_cycles_per_s", r->measured_s > 0 ? (double)x[SX_CHURN_CYCLES] / r->measured_s : 0,
                     "/s", "cycles per second");
    bench_report_int(rep, "churn_rst", x[SX_CHURN_RST], "ended with RST");
    bench_report_int(rep, "churn_failed", x[SX_CHURN_FAIL], "failed");
    bench_report_int(rep, "churn_backlog", x[SX_CHURN_BACKLOG], "dropped, over a second behind");
    bench_report_hist(rep, "churn_cycle", &c->h[BH_REQUEST], "whole cycle");
    bench_report_section(rep, "HTTP API GETs");
    bench_report_int(rep, "api_sent", x[SX_API_SENT], "sent");
    bench_report_int(rep, "api_ok", x[SX_API_OK], "answered 2xx");
    bench_report_int(rep, "api_failed", x[SX_API_FAIL], "failed");
    bench_report_int(rep, "api_backlog", x[SX_API_BACKLOG], "dropped, over a second behind");
    bench_report_section(rep, "webhooks received");
    bench_report_int(rep, "webhook_requests", x[SX_HOOK_REQUESTS], "requests");
    bench_report_int(rep, "webhook_events", x[SX_HOOK_EVENTS], "events");
    bench_report_int(rep, "webhook_bad", x[SX_HOOK_BAD], "malformed / refused");
}

static void report_slow(bench_report *rep, const soak_run *r)
{
    const uint64_t *x = r->x;
    const bench_result *b = &r->res[R_BAD];
    bench_report_section(rep, "slow readers");
    bench_report_int(rep, "slow_started", x[SX_SLOW_STARTED], "subscribed and stalled");
    bench_report_int(rep, "slow_freed", x[SX_SLOW_FREED], "server released the socket while stalled");
    bench_report_hist(rep, "slow_freed", &b->h[BH_SLOW_FREED], "stall -> released (1 s polls)");
    bench_report_int(rep, "slow_4100", x[SX_SLOW_4100], "drained: 4100 close found");
    bench_report_int(rep, "slow_no_frame", x[SX_SLOW_NO_FRAME], "drained: TCP closed, no close frame");
    bench_report_int(rep, "slow_other", x[SX_SLOW_OTHER], "other close code / reset");
    bench_report_int(rep, "slow_open", x[SX_SLOW_OPEN], "drained: still open (not closed)");
    bench_report_int(rep, "slow_setup_fail", x[SX_SLOW_SETUP_FAIL], "setup failed");
    bench_report_section(rep, "slowloris");
    bench_report_int(rep, "loris_started", x[SX_LORIS_STARTED], "heads started");
    bench_report_int(rep, "loris_closed", x[SX_LORIS_CLOSED], "heads closed by the server");
    bench_report_int(rep, "loris_answered", x[SX_LORIS_ANSWERED], "heads answered");
    bench_report_int(rep, "loris_status", x[SX_LORIS_STATUS], "... last status");
    bench_report_int(rep, "loris_outlived", x[SX_LORIS_OUTLIVED], "heads still open at --bad-life");
    bench_report_hist(rep, "loris", &b->h[BH_LORIS], "head: connect -> end");
    bench_report_int(rep, "body_started", x[SX_BODY_STARTED], "bodies started");
    bench_report_int(rep, "body_closed", x[SX_BODY_CLOSED], "bodies closed by the server");
    bench_report_int(rep, "body_answered", x[SX_BODY_ANSWERED], "bodies answered");
    bench_report_int(rep, "body_status", x[SX_BODY_STATUS], "... last status");
    bench_report_int(rep, "body_outlived", x[SX_BODY_OUTLIVED], "bodies still open at --bad-life");
    bench_report_hist(rep, "loris_body", &b->h[BH_LORIS_BODY], "body: connect -> end");
}

static void report_garbage(bench_report *rep, const soak_run *r)
{
    const uint64_t *x = r->x;
    char key[64];
    bench_report_section(rep, "garbage HTTP");
    bench_report_int(rep, "ghttp_started", x[SX_GHTTP_STARTED], "connections");
    bench_report_int(rep, "ghttp_4xx", x[SX_GHTTP_4XX], "answered 4xx");
    bench_report_int(rep, "ghttp_other", x[SX_GHTTP_OTHER], "answered otherwise");
    bench_report_int(rep, "ghttp_closed", x[SX_GHTTP_CLOSED], "closed without an answer");
    bench_report_int(rep, "ghttp_ignored", x[SX_GHTTP_IGNORED], "no reaction in 10 s");
    bench_report_int(rep, "ghttp_skipped", x[SX_GHTTP_SKIPPED], "not started (all slots waiting)");
    bench_report_section(rep, "garbage WebSocket (wait 10 s)");
    printf("  %-20s %7s %7s %12s %7s %7s %6s\n", "kind", "sent", "closed", "frame only", "error", "ignored",
           "code");
    for (int k = 0; k < SG__COUNT; k++) {
        printf("  %-20s %7llu %7llu %12llu %7llu %7llu %6llu\n", soak_garbage_name(k),
               (unsigned long long)x[SX_GWS(k, GW_STARTED)], (unsigned long long)x[SX_GWS(k, GW_CLOSED)],
               (unsigned long long)x[SX_GWS(k, GW_HALF)], (unsigned long long)x[SX_GWS(k, GW_ERROR)],
               (unsigned long long)x[SX_GWS(k, GW_IGNORED)], (unsigned long long)x[SX_GWS(k, GW_CODE)]);
        static const char *const what[GW__COUNT] = {"sent", "closed", "frame_only", "error", "ignored", "code"};
        for (int w = 0; w < GW__COUNT; w++) {
            snprintf(key, sizeof key, "gws_%d_%s", k, what[w]);
            bench_report_json_num(rep, key, (double)x[SX_GWS(k, w)]);
        }
    }
    bench_report_int(rep, "gws_setup_fail", x[SX_GWS_SETUP_FAIL], "setup failed");
    bench_report_int(rep, "gws_skipped", x[SX_GWS_SKIPPED], "not started (all slots waiting)");
}

static int report_all(soak_run *r)
{
    bench_report rep;
    bench_report_begin(&rep, r->o);
    bench_report_int(&rep, "server_pid_found", (uint64_t)(r->pid > 0 ? r->pid : 0), "server pid sampled");
    report_load(&rep, r);
    report_fanout(&rep, r);
    report_client_events(&rep, r);
    report_churn_api(&rep, r);
    report_slow(&rep, r);
    report_garbage(&rep, r);
    int growing = soak_sampler_report(r->smp, &rep);
    bench_report_section(&rep, "verdict");
    char v[160];
    snprintf(v, sizeof v, "%s%s", r->server_gone ? "server died; " : "", growing ? "growing" : "flat");
    printf("  tolerance: change of the fitted line over the window within %.1f %% of the mean\n"
           "  (floors: RSS 2 MiB, fds 8, gauges 2, threads any change)\n",
           r->o->soak.tolerance_pct);
    bench_report_int(&rep, "growing_series", (uint64_t)growing, "series judged growing");
    bench_report_str(&rep, "verdict", v, "verdict");
    bench_report_end(&rep);
    return growing;
}

int bench_run_soak(const bench_opts *o)
{
    soak_run r = {.o = o};
    char csv[256];
    snprintf(csv, sizeof csv, "soak-%s.csv", o->tag);
    r.pid = o->server_pid > 0 ? o->server_pid : soak_find_pid_by_port(o->t.port);
    r.x = hd_calloc(soak_extra_len(o), sizeof *r.x);
    printf("soak: %.0f s (warm-up %.0f s), %u steady clients on %u channels + busy channel, server pid %d, "
           "series to %s\n",
           o->duration, o->warmup, o->conns, o->channels, (int)r.pid, o->soak.csv ? o->soak.csv : csv);
    if (r.pid <= 0)
        fprintf(stderr, "soak: no server pid (--server-pid, or a listener on port %d): no RSS / fd series\n",
                o->t.port);
    r.smp = soak_sampler_create(o, r.pid, o->soak.csv ? o->soak.csv : csv);
    r.t_start = bench_now_us();
    sample(&r, SP_IDLE);
    int rc = start_roles(&r);
    bool started = rc == 0;
    r.t_go = bench_now_us();
    if (started) {
        run_load(&r);
        rc = stop_load(&r);
    } else {
        fprintf(stderr, "soak: setup failed\n");
        if (r.subs)
            bench_proc_kill(r.subs, r.n_subs);
        for (int k = R_PUB; k < R__COUNT; k++)
            if (r.has_role[k])
                bench_proc_kill(&r.role[k], 1);
    }
    reap_all(&r);
    if (started)
        report_all(&r); /* also when a role failed to report: the series stand */
    soak_sampler_destroy(r.smp);
    hd_free(r.subs);
    hd_free(r.x);
    return rc;
}
