/* soak.h - the `soak` scenario's internal interface: the roles it forks,
 * the channel layout they share, the counters they send back, and the
 * parent's server sampler.
 *
 * DESIGN
 * ------
 * One soak run forks one process per role, each with its own loop:
 *   subs   (soak_subs.c)  the steady population: -n clients, one channel
 *                         each, reconnected if the server drops them; the
 *                         private-channel ones also send client events;
 *   pub    (soak_pub.c)   signed HTTP triggers to the steady channels and
 *                         to the busy channel, and signed GETs;
 *   churn  (soak_churn.c) connect+subscribe+disconnect cycles at a rate;
 *   bad    (soak_bad.c, soak_garbage.c) the misbehaving clients;
 *   hook   (soak_hook.c)  a webhook receiver (with --webhook-port).
 * Commands: 'g' start, 's' stop starting work and post BM_DONE when what is
 * in flight is over, 'f' (subs) post BM_DONE after a quiet spell, 'q'
 * report and exit.
 *
 * Channel index k in [0, C) is a steady channel, kind k % 3: public,
 * private-, presence-; index C is the busy public channel the slow readers
 * join. Steady client g is on channel g % (C + 1).
 *
 * Every role sends back a bench_result plus one uint64 array of SX__COUNT
 * named counters followed by SOAK_PER_CH counters per channel index; the
 * parent adds them up over roles and workers (each role fills its part).
 *
 * THREADING
 * ---------
 * Single-threaded processes.
 */
#ifndef HD_BENCH_SOAK_H
#define HD_BENCH_SOAK_H

#include "bench.h"

#define SOAK_FAN_EVENT "soak-ev"
#define SOAK_CE_EVENT "client-soak"

enum soak_kind { SK_PUBLIC, SK_PRIVATE, SK_PRESENCE, SK_BUSY };

/* Garbage sent on an established WebSocket connection, one kind per connection. */
enum soak_garbage_kind {
    SG_OPCODE,      /* reserved opcode 0x3 */
    SG_UNMASKED,    /* a client frame without a mask */
    SG_DECLARED,    /* 64-bit length of 2^40, 16 bytes of it sent */
    SG_OVERSIZE,    /* 64-bit length of 2^40, 128 KiB of it sent */
    SG_RSV,         /* RSV1-3 set without an extension */
    SG_BAD_UTF8,    /* text frame that is not UTF-8 */
    SG_CTRL_FRAG,   /* ping without FIN */
    SG_BAD_JSON,    /* text frame, not JSON */
    SG_UNKNOWN,     /* well-formed, unknown event */
    SG__COUNT
};

enum soak_counter {
    /* subs */
    SX_INTERRUPTED,      /* steady clients the server closed or refused at least once */
    SX_RECONNECTS,       /* reconnects of those */
    SX_CE_SENT,          /* client events sent */
    SX_CE_RELAYS,        /* client events received (incl. duplicates) */
    SX_CE_DUPS,
    SX_CE_REFUSED,       /* pusher:error 4301 */
    /* pub */
    SX_PUB_SENT, SX_PUB_OK, SX_PUB_FAIL, SX_PUB_BACKLOG,
    SX_BUSY_SENT, SX_BUSY_OK, SX_BUSY_FAIL, SX_BUSY_BACKLOG,
    SX_API_SENT, SX_API_OK, SX_API_FAIL, SX_API_BACKLOG,
    /* churn */
    SX_CHURN_CYCLES, SX_CHURN_RST, SX_CHURN_FAIL, SX_CHURN_BACKLOG,
    /* bad: slow readers */
    SX_SLOW_STARTED,     /* subscribed and stalled */
    SX_SLOW_FREED,       /* the server released its socket while the client was stalled */
    SX_SLOW_4100,        /* drained and found the server's 4100 close */
    SX_SLOW_NO_FRAME,    /* drained: the server closed TCP without any close frame */
    SX_SLOW_OTHER,       /* another close code, or a reset */
    SX_SLOW_OPEN,        /* still open and written to after the stall */
    SX_SLOW_SETUP_FAIL,  /* never subscribed */
    /* bad: slowloris heads and bodies: what ended each one */
    SX_LORIS_STARTED, SX_LORIS_CLOSED, SX_LORIS_ANSWERED, SX_LORIS_OUTLIVED, SX_LORIS_STATUS,
    SX_BODY_STARTED, SX_BODY_CLOSED, SX_BODY_ANSWERED, SX_BODY_OUTLIVED, SX_BODY_STATUS, /* _STATUS: the last answer's */
    /* bad: random bytes over HTTP */
    SX_GHTTP_STARTED, SX_GHTTP_4XX, SX_GHTTP_OTHER, SX_GHTTP_CLOSED, SX_GHTTP_IGNORED, SX_GHTTP_SKIPPED,
    /* bad: garbage WebSocket, per soak_garbage_kind (GW_*) */
    SX_GWS_BASE,
    SX_GWS_SKIPPED = SX_GWS_BASE + 6 * SG__COUNT,
    SX_GWS_SETUP_FAIL,
    /* hook */
    SX_HOOK_REQUESTS, SX_HOOK_EVENTS, SX_HOOK_BYTES, SX_HOOK_BAD,
    SX__COUNT
};

/* Per garbage kind: sent; connection closed (TCP) by the server; close
 * frame received but the TCP connection left open at the end of the wait;
 * pusher:error answered; no reaction at all; the last close code seen
 * (1006: closed without a close frame). */
enum { GW_STARTED, GW_CLOSED, GW_HALF, GW_ERROR, GW_IGNORED, GW_CODE, GW__COUNT };
#define SX_GWS(kind, what) (SX_GWS_BASE + GW__COUNT * (kind) + (what))

/* Per channel index, after the SX__COUNT counters. */
enum soak_per_ch {
    SC_FAN_SUBS,     /* uninterrupted subscribers */
    SC_FAN_DISTINCT, /* their distinct HTTP deliveries */
    SC_PUB_OK,       /* HTTP triggers answered 2xx */
    SC_CE_SENT,      /* client events sent by the channel's members */
    SC_CE_SENT_KEPT, /* ... by members that stayed uninterrupted */
    SC_CE_DISTINCT,  /* distinct relays received by uninterrupted members */
    SOAK_PER_CH
};

static inline size_t soak_extra_len(const bench_opts *o)
{
    return SX__COUNT + (size_t)(o->channels + 1) * SOAK_PER_CH;
}

static inline uint64_t *soak_ch(uint64_t *x, uint32_t k)
{
    return x + SX__COUNT + (size_t)k * SOAK_PER_CH;
}

/* now - since, 0 when since is later (a clock read after the tick's own) */
static inline uint64_t soak_elapsed(uint64_t now, uint64_t since)
{
    return now > since ? now - since : 0;
}

/* ---- channel layout (soak_subs.c) ---- */

int soak_channel_kind(const bench_opts *o, uint32_t k);
/* Name of channel index k into buf. */
void soak_channel_name(const bench_opts *o, uint32_t k, char *buf, size_t cap);
/* Steady clients on channel index k. */
uint32_t soak_channel_members(const bench_opts *o, uint32_t k);
/* "{"user_id":...}" for a presence member. */
void soak_presence_data(char *buf, size_t cap, const char *user);

/* ---- raw TCP client for the misbehaving roles (soak_raw.c) ---- */

/* How a raw connection ended: the server's answer's HTTP status (> 0; 1
 * for bytes that are not an HTTP status line), 0 closed or reset by the
 * server without an answer, -1 the connect failed. */
typedef struct soak_raw soak_raw;
typedef void (*soak_raw_cb)(soak_raw *r, int outcome, uint64_t now_us);

struct soak_raw {
    bench_io io;          /* first */
    bench_loop *loop;
    soak_raw_cb cb;
    void *user;
    bool connected, active;
    uint64_t t_open_us;
    hd_buf out;
};

void soak_raw_init(soak_raw *r, bench_loop *l, soak_raw_cb cb, void *user);
/* Connect and send first[0..len) once connected. Returns 0 or -errno. */
int soak_raw_open(soak_raw *r, const bench_target *t, const void *first, size_t len);
/* Queue and send more bytes; a failed write reports outcome 0. */
void soak_raw_write(soak_raw *r, const void *p, size_t len);
/* Close with an RST, no callback. */
void soak_raw_close(soak_raw *r);
void soak_raw_deinit(soak_raw *r);

/* ---- garbage senders (soak_garbage.c), in the bad role's loop ---- */

typedef struct soak_garbage soak_garbage;
soak_garbage *soak_garbage_create(bench_loop *l, const bench_opts *o, uint64_t *x);
/* Start due connections (while running), end those whose wait is over. */
void soak_garbage_tick(soak_garbage *g, uint64_t now_us, bool running);
bool soak_garbage_idle(const soak_garbage *g);
void soak_garbage_close_all(soak_garbage *g);
void soak_garbage_destroy(soak_garbage *g);
const char *soak_garbage_name(int kind);

/* ---- roles ---- */

int soak_subs_main(bench_child *c);
int soak_pub_main(bench_child *c);
int soak_churn_main(bench_child *c);
int soak_bad_main(bench_child *c);
int soak_hook_main(bench_child *c);

/* A role's end: post the result and the counters, stop the loop. */
void soak_post(bench_child *c, const bench_result *r, const uint64_t *x);

/* ---- server sampling (soak_sample.c), parent only ---- */

/* Find the pid listening on this TCP port (/proc/net/tcp*, /proc/PID/fd);
 * 0 if none is found. */
pid_t soak_find_pid_by_port(int port);
/* Call fn for every TCP socket of /proc/net/tcp and tcp6 (ports in host
 * order, st as the kernel numbers it, inode 0 for a socket no process holds
 * any more). Returns 0, or -1 if neither file could be read. */
typedef void (*soak_tcp_fn)(void *arg, unsigned local_port, unsigned rem_port, unsigned st, unsigned long inode);
int soak_tcp_scan(soak_tcp_fn fn, void *arg);

typedef struct soak_sampler soak_sampler;
soak_sampler *soak_sampler_create(const bench_opts *o, pid_t pid, const char *csv_path);
void soak_sampler_destroy(soak_sampler *s);
enum soak_phase { SP_IDLE, SP_WARMUP, SP_MEASURE, SP_AFTER };
/* Take one sample now at t_s seconds into the run; false when the server
 * process is gone. line: a one-line progress summary. */
bool soak_sample(soak_sampler *s, double t_s, int phase, char *line, size_t cap);
/* Series table and verdicts over the SP_MEASURE samples; returns the
 * number of series judged "growing". */
int soak_sampler_report(soak_sampler *s, bench_report *rep);

#endif /* HD_BENCH_SOAK_H */
