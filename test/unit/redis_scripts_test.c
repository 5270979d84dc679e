/* redis_scripts_test.c - the Redis adapter's Lua scripts (src/adapter/redis/lua,
 * contract in src/adapter/redis/scripts.h) run against a real redis-server that
 * the suite starts on a free loopback port: the crossing table of
 * docs/CLUSTER.md 4.1, fencing, reaping, holds, reads, and the exact bytes of
 * every frame and body the scripts build (compared with the C builders).
 *
 * Published messages are collected on a second, SUBSCRIBEd connection: after
 * the operations under test a sentinel is published, and since Redis
 * delivers to a subscriber in execution order, everything before the
 * sentinel is everything the operations published. No test sleeps on a
 * guess (one waits out a 40 ms lease on purpose).
 *
 * THREADING: single-threaded (CUnit).
 */
#include <CUnit/CUnit.h>
#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "adapter/redis/scripts.h"
#include "channels/channels.h"
#include "common/common.h"
#include "common/map.h"
#include "protocol/protocol.h"

#define P "hdtest"
#define APP "app1"
#define MAX_ARGS 96
#define MAX_USERS 8
#define MAX_MSGS 64

static struct {
    pid_t pid;
    redisContext *rc;
    char sha[HD_RS_COUNT][41];
    char why[256]; /* non-empty: redis-server could not be used */
} g;

/* ---- the redis-server of this suite ---- */

static int free_loopback_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static pid_t spawn_redis(int port)
{
    char port_s[16];
    snprintf(port_s, sizeof port_s, "%d", port);
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    prctl(PR_SET_PDEATHSIG, SIGTERM); /* never outlive the test binary */
    FILE *null = fopen("/dev/null", "w");
    if (null) {
        dup2(fileno(null), 1);
        dup2(fileno(null), 2);
    }
    execlp("redis-server", "redis-server", "--port", port_s, "--bind", "127.0.0.1", "--save", "", "--appendonly",
           "no", (char *)NULL);
    _exit(127);
}

/* Connect once the server answers PING; false (with g.why) when it died or never answered. */
static bool connect_redis(int port)
{
    struct timeval tv = {1, 0};
    for (int i = 0; i < 250; i++) {
        int status;
        if (waitpid(g.pid, &status, WNOHANG) == g.pid) {
            g.pid = 0;
            snprintf(g.why, sizeof g.why, "redis-server is not installed or did not start (exit %d): "
                     "install it with scripts/deps.sh test", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
            return false;
        }
        redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
        if (c && !c->err) {
            redisReply *r = redisCommand(c, "PING");
            bool up = r && r->type == REDIS_REPLY_STATUS;
            freeReplyObject(r);
            if (up) {
                redisSetTimeout(c, (struct timeval){5, 0});
                g.rc = c;
                return true;
            }
        }
        if (c)
            redisFree(c);
        sleep_ms(20);
    }
    snprintf(g.why, sizeof g.why, "redis-server on port %d did not answer within 5 s", port);
    return false;
}

static bool load_scripts(void)
{
    for (int i = 0; i < HD_RS_COUNT; i++) {
        const char *src = hd_redis_script_source(i);
        redisReply *r = redisCommand(g.rc, "SCRIPT LOAD %s", src);
        if (!r || r->type != REDIS_REPLY_STRING || r->len != 40) {
            snprintf(g.why, sizeof g.why, "SCRIPT LOAD %s failed: %s", hd_redis_script_name(i),
                     r && r->str ? r->str : "no reply");
            freeReplyObject(r);
            return false;
        }
        memcpy(g.sha[i], r->str, 41);
        freeReplyObject(r);
    }
    return true;
}

static int suite_init(void)
{
    int port = free_loopback_port();
    if (port < 0) {
        snprintf(g.why, sizeof g.why, "no free loopback port");
        return 0;
    }
    g.pid = spawn_redis(port);
    if (g.pid < 0) {
        g.pid = 0;
        snprintf(g.why, sizeof g.why, "fork failed");
        return 0;
    }
    if (connect_redis(port))
        load_scripts();
    return 0; /* every test reports g.why itself */
}

static int suite_cleanup(void)
{
    if (g.rc)
        redisFree(g.rc);
    g.rc = NULL;
    if (g.pid > 0) {
        kill(g.pid, SIGTERM);
        waitpid(g.pid, NULL, 0);
    }
    g.pid = 0;
    return 0;
}

/* Start of every test: a clean data set, or a failure saying why there is none. */
static bool ready(void)
{
    if (g.why[0] || !g.rc) {
        CU_assertImplementation(CU_FALSE, __LINE__, g.why[0] ? g.why : "no redis connection", __FILE__, "",
                                CU_FALSE);
        return false;
    }
    redisReply *r = redisCommand(g.rc, "FLUSHALL");
    bool ok = r && r->type == REDIS_REPLY_STATUS;
    freeReplyObject(r);
    CU_ASSERT(ok);
    return ok;
}

/* ---- calling scripts ---- */

typedef struct argl {
    int n;
    const char *v[MAX_ARGS];
    size_t len[MAX_ARGS];
    char nums[MAX_ARGS][24];
} argl;

static void a_bin(argl *a, const char *s, size_t n)
{
    CU_ASSERT_FATAL(a->n < MAX_ARGS);
    a->v[a->n] = s;
    a->len[a->n] = n;
    a->n++;
}

static void a_str(argl *a, const char *s)
{
    a_bin(a, s, strlen(s));
}

static void a_u64(argl *a, uint64_t x)
{
    snprintf(a->nums[a->n], sizeof a->nums[0], "%" PRIu64, x);
    a_str(a, a->nums[a->n]);
}

static redisReply *eval_argl(int which, const argl *a)
{
    const char *v[MAX_ARGS + 3] = {"EVALSHA", g.sha[which], "0"};
    size_t len[MAX_ARGS + 3] = {7, 40, 1};
    for (int i = 0; i < a->n; i++) {
        v[i + 3] = a->v[i];
        len[i + 3] = a->len[i];
    }
    return redisCommandArgv(g.rc, a->n + 3, v, len);
}

/* A script with string arguments, NULL-terminated. */
static redisReply *eval(int which, ...)
{
    argl a = {0};
    va_list ap;
    va_start(ap, which);
    const char *s;
    while ((s = va_arg(ap, const char *)))
        a_str(&a, s);
    va_end(ap);
    return eval_argl(which, &a);
}

static redisReply *cmd(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(g.rc, fmt, ap);
    va_end(ap);
    return r;
}

/* ---- replies as text, for exact comparisons ---- */

static void reply_text(const redisReply *r, hd_buf *out)
{
    if (!r) {
        hd_buf_puts(out, "(no reply)");
        return;
    }
    switch (r->type) {
    case REDIS_REPLY_ARRAY:
        hd_buf_append(out, "[", 1);
        for (size_t i = 0; i < r->elements; i++) {
            if (i)
                hd_buf_append(out, ",", 1);
            reply_text(r->element[i], out);
        }
        hd_buf_append(out, "]", 1);
        break;
    case REDIS_REPLY_INTEGER:
        hd_buf_printf(out, "%lld", r->integer);
        break;
    case REDIS_REPLY_NIL:
        hd_buf_puts(out, "nil");
        break;
    case REDIS_REPLY_ERROR:
        hd_buf_puts(out, "ERR:");
        hd_buf_append(out, r->str, r->len);
        break;
    default:
        hd_buf_append(out, r->str, r->len);
    }
}

/* Compare the reply's text with want (a prefix match when want ends in '*'); frees r. */
static void expect_reply(redisReply *r, const char *want, unsigned line)
{
    hd_buf got;
    hd_buf_init(&got);
    reply_text(r, &got);
    hd_buf_append(&got, "", 1);
    size_t wl = strlen(want);
    bool ok = wl && want[wl - 1] == '*' ? strncmp(got.data, want, wl - 1) == 0 : strcmp(got.data, want) == 0;
    char msg[1024];
    snprintf(msg, sizeof msg, "reply %.400s, want %.400s", got.data, want);
    CU_assertImplementation(ok, line, msg, __FILE__, "", CU_FALSE);
    hd_buf_deinit(&got);
    freeReplyObject(r);
}
#define EXPECT(r, want) expect_reply((r), (want), __LINE__)

/* ---- nodes and the member script ---- */

typedef struct node {
    char num[16];
    char inc[24];
} node;

static node node_make(const char *num, unsigned k)
{
    node n;
    snprintf(n.num, sizeof n.num, "%s", num);
    snprintf(n.inc, sizeof n.inc, "%s-%u", num, k);
    return n;
}

static void node_register(const node *n, const char *owner, unsigned lease_ms)
{
    char lease[16];
    snprintf(lease, sizeof lease, "%u", lease_ms);
    redisReply *r = eval(HD_RS_REGISTER, P, n->inc, n->num, lease, "gen-a", owner, "host", "1", "0", "test",
                         (char *)NULL);
    CU_ASSERT_FATAL(r && r->type == REDIS_REPLY_ARRAY && r->elements == 5 && r->element[0]->integer == 0);
    freeReplyObject(r);
}

static node node_up(const char *num)
{
    node n = node_make(num, 1);
    node_register(&n, num, 60000);
    return n;
}

static void node_expire(const node *n)
{
    freeReplyObject(cmd("ZADD %s 1 %s", P ":nodes", n->inc));
}

typedef struct mopts {
    unsigned epoch;        /* 0 = 1 */
    unsigned max_members;
    unsigned hold_ms;
    uint64_t token;
    const char *except;
    bool full, count_events;
    const char *online_frame, *offline_frame;
} mopts;

typedef struct tuser {
    const char *u;         /* NULL = the end of a list */
    unsigned count;
    const char *id_json;   /* NULL = json string of u */
    const char *info;      /* NULL = no user_info */
} tuser;

static const mopts DEFAULTS = {.hold_ms = 60000};

/* The member script as the adapter calls it, with frames built by the C builders. */
static redisReply *member_call(const node *n, const char *c, unsigned node_count, const mopts *o, const tuser *us,
                               size_t n_users)
{
    if (!o)
        o = &DEFAULTS;
    CU_ASSERT_FATAL(n_users <= MAX_USERS);
    argl a = {0};
    a_str(&a, P);
    a_str(&a, n->inc);
    a_str(&a, n->num);
    a_str(&a, APP);
    a_str(&a, c);
    a_u64(&a, o->epoch ? o->epoch : 1);
    a_u64(&a, node_count);
    a_u64(&a, o->max_members);
    a_u64(&a, o->hold_ms);
    a_u64(&a, 1800);
    a_u64(&a, o->token);
    a_str(&a, o->except ? o->except : "");
    a_str(&a, o->full ? "1" : "0");
    a_str(&a, o->count_events ? "1" : "0");
    a_str(&a, o->online_frame ? o->online_frame : "");
    a_str(&a, o->offline_frame ? o->offline_frame : "");
    hd_buf id[MAX_USERS], rec[MAX_USERS], add[MAX_USERS], rem[MAX_USERS];
    for (size_t i = 0; i < n_users; i++) {
        hd_buf_init(&id[i]);
        hd_buf_init(&rec[i]);
        hd_buf_init(&add[i]);
        hd_buf_init(&rem[i]);
        if (us[i].id_json)
            hd_buf_puts(&id[i], us[i].id_json);
        else
            hd_buf_json_string(&id[i], us[i].u, strlen(us[i].u));
        hd_buf_append(&id[i], "", 1);
        hd_buf_printf(&rec[i], "%s\x1f%s", id[i].data, us[i].info ? us[i].info : "");
        hd_frame_member(&add[i], true, c, id[i].data, us[i].info);
        hd_frame_member(&rem[i], false, c, id[i].data, NULL);
        a_str(&a, us[i].u);
        a_u64(&a, us[i].count);
        a_bin(&a, rec[i].data, rec[i].len);
        a_bin(&a, add[i].data, add[i].len);
        a_bin(&a, rem[i].data, rem[i].len);
    }
    redisReply *r = eval_argl(HD_RS_MEMBER, &a);
    for (size_t i = 0; i < n_users; i++) {
        hd_buf_deinit(&id[i]);
        hd_buf_deinit(&rec[i]);
        hd_buf_deinit(&add[i]);
        hd_buf_deinit(&rem[i]);
    }
    return r;
}

static redisReply *member(const node *n, const char *c, unsigned node_count, const mopts *o)
{
    return member_call(n, c, node_count, o, NULL, 0);
}

static redisReply *member_user(const node *n, const char *c, unsigned node_count, const mopts *o, tuser u)
{
    return member_call(n, c, node_count, o, &u, 1);
}

/* ---- subscribers ---- */

typedef struct msg {
    char *channel;
    char *payload;
    size_t len;
} msg;

typedef struct msgs {
    size_t n;
    msg v[MAX_MSGS];
} msgs;

static redisContext *sub_open(const char *const *channels)
{
    redisContext *s = redisConnectWithTimeout("127.0.0.1", g.rc->tcp.port, (struct timeval){2, 0});
    CU_ASSERT_FATAL(s && !s->err);
    redisSetTimeout(s, (struct timeval){5, 0});
    size_t n = 1;
    redisAppendCommand(s, "SUBSCRIBE %s", P ":sentinel");
    for (; channels[n - 1]; n++)
        redisAppendCommand(s, "SUBSCRIBE %s", channels[n - 1]);
    for (size_t i = 0; i < n; i++) {
        redisReply *r = NULL;
        CU_ASSERT_FATAL(redisGetReply(s, (void **)&r) == REDIS_OK && r && r->type == REDIS_REPLY_ARRAY);
        freeReplyObject(r);
    }
    return s;
}

/* Everything published to s's channels before now, in order. */
static void sub_drain(redisContext *s, msgs *out)
{
    memset(out, 0, sizeof *out);
    freeReplyObject(cmd("PUBLISH %s END", P ":sentinel"));
    for (;;) {
        redisReply *r = NULL;
        CU_ASSERT_FATAL(redisGetReply(s, (void **)&r) == REDIS_OK && r && r->type == REDIS_REPLY_ARRAY &&
                        r->elements == 3);
        if (!strcmp(r->element[1]->str, P ":sentinel")) {
            freeReplyObject(r);
            return;
        }
        CU_ASSERT_FATAL(out->n < MAX_MSGS);
        msg *m = &out->v[out->n++];
        m->channel = hd_strndup(r->element[1]->str, r->element[1]->len);
        m->payload = hd_strndup(r->element[2]->str, r->element[2]->len);
        m->len = r->element[2]->len;
        freeReplyObject(r);
    }
}

static void msgs_free(msgs *m)
{
    for (size_t i = 0; i < m->n; i++) {
        hd_free(m->v[i].channel);
        hd_free(m->v[i].payload);
    }
    m->n = 0;
}

/* Message i is on channel with payload "<head>" + frame. */
static void expect_msg(const msgs *m, size_t i, const char *channel, const char *head, const hd_buf *frame,
                       unsigned line)
{
    bool ok = i < m->n && !strcmp(m->v[i].channel, channel);
    size_t hl = strlen(head), fl = frame ? frame->len : 0;
    ok = ok && m->v[i].len == hl + fl && !memcmp(m->v[i].payload, head, hl) &&
         (!fl || !memcmp(m->v[i].payload + hl, frame->data, fl));
    char text[1024];
    snprintf(text, sizeof text, "message %zu on %s: %.300s, want %s %s%.*s", i, i < m->n ? m->v[i].channel : "-",
             i < m->n ? m->v[i].payload : "(none)", channel, head, (int)(fl > 300 ? 300 : fl),
             frame ? frame->data : "");
    CU_assertImplementation(ok, line, text, __FILE__, "", CU_FALSE);
}
#define EXPECT_MSG(m, i, channel, head, frame) expect_msg((m), (i), (channel), (head), (frame), __LINE__)

/* The 9 netstring fields of a J message (scripts.h). */
typedef struct jmsg {
    hd_buf f[9];
} jmsg;

static bool parse_fields(const char *p, size_t len, const char *head, hd_buf *f, size_t n)
{
    size_t hl = strlen(head);
    if (len < hl || memcmp(p, head, hl))
        return false;
    size_t at = hl;
    for (size_t i = 0; i < n; i++) {
        size_t flen = 0, digits = 0;
        while (at < len && p[at] >= '0' && p[at] <= '9') {
            flen = flen * 10 + (size_t)(p[at++] - '0');
            digits++;
        }
        if (!digits || at >= len || p[at] != ':' || len - at - 1 < flen + 1 || p[at + 1 + flen] != ',')
            return false;
        hd_buf_init(&f[i]);
        hd_buf_append(&f[i], p + at + 1, flen);
        hd_buf_append(&f[i], "", 1);
        f[i].len = flen; /* NUL kept after the bytes for printing */
        at += flen + 2;
    }
    return at == len;
}

static bool parse_j(const msg *m, jmsg *j)
{
    return parse_fields(m->payload, m->len, "0 J -\n", j->f, 9);
}

static void jmsg_free(jmsg *j)
{
    for (int i = 0; i < 9; i++)
        hd_buf_deinit(&j->f[i]);
}

static bool buf_is(const hd_buf *b, const char *s)
{
    return b->len == strlen(s) && !memcmp(b->data, s, b->len);
}

static void frame_member(hd_buf *b, bool added, const char *c, const char *id_json, const char *info)
{
    hd_buf_init(b);
    hd_frame_member(b, added, c, id_json, info);
}

/* ======================================================================== */

static void test_embedded_sources(void)
{
    for (int i = 0; i < HD_RS_COUNT; i++) {
        const char *src = hd_redis_script_source(i);
        CU_ASSERT_PTR_NOT_NULL_FATAL(src);
        CU_ASSERT_PTR_NOT_NULL(hd_redis_script_name(i));
        /* the prelude comes first, then the script's own header */
        CU_ASSERT_EQUAL(strncmp(src, "-- prelude.lua", 14), 0);
        char header[64];
        snprintf(header, sizeof header, "\n-- %s.lua", hd_redis_script_name(i));
        CU_ASSERT_PTR_NOT_NULL(strstr(src, header));
    }
    CU_ASSERT_STRING_EQUAL(hd_redis_script_name(HD_RS_MEMBER), "member");
    CU_ASSERT_STRING_EQUAL(hd_redis_script_name(HD_RS_READ_ONLINE), "read_online");
    CU_ASSERT_PTR_NULL(hd_redis_script_source(HD_RS_COUNT));
    CU_ASSERT_PTR_NULL(hd_redis_script_source(-1));
    CU_ASSERT_PTR_NULL(hd_redis_script_name(HD_RS_COUNT));
    if (ready()) /* every script compiled (loaded in the suite init) */
        CU_ASSERT_EQUAL(strlen(g.sha[HD_RS_COUNT - 1]), 40);
}

/* Reply: {status, occupied, hook_occupied, vacated, count_due, total, users, crossings...} */
static void test_channel_crossings(void)
{
    if (!ready())
        return;
    node a = node_up("100000000000001"), b = node_up("200000000000002");
    const char *chans[] = {P ":m:" APP ":ch", NULL};
    redisContext *s = sub_open(chans);

    EXPECT(member(&a, "ch", 1, NULL), "[0,1,1,0,1,1,0]");       /* first join anywhere: occupied */
    EXPECT(member(&a, "ch", 1, NULL), "[0,0,0,0,0,1,0]");       /* the same op again: nothing */
    EXPECT(member(&b, "ch", 2, NULL), "[0,0,0,0,1,3,0]");       /* second node: no crossing */
    EXPECT(member(&a, "ch", 0, NULL), "[0,0,0,0,1,2,0]");
    EXPECT(cmd("ZCARD %s", P ":holds"), "0");
    EXPECT(member(&b, "ch", 0, NULL), "[0,0,0,1,0,0,0]");       /* last leave: vacated, held */
    EXPECT(member(&b, "ch", 0, NULL), "[0,0,0,0,0,0,0]");
    EXPECT(cmd("ZRANGE %s 0 -1", P ":holds"), "[v\x1f" APP "\x1f" "ch]");
    EXPECT(cmd("HGETALL %s", P ":{" APP "}:subs"), "[]");
    EXPECT(member(&a, "ch", 1, NULL), "[0,1,0,0,1,1,0]");       /* rejoin: occupied, hold cancelled, no hook */
    EXPECT(cmd("ZCARD %s", P ":holds"), "0");
    EXPECT(cmd("HGET %s %s", P ":{" APP "}:cn:ch", a.inc), "1");
    EXPECT(cmd("ZRANGE %s 0 -1 WITHSCORES", P ":{" APP "}:nc:" "100000000000001-1"), "[ch,1]");
    EXPECT(cmd("SMEMBERS %s", P ":node:100000000000001-1:apps"), "[" APP "]");
    EXPECT(cmd("GET %s", P ":inconsistent"), "nil");
    /* a total below what a node takes away: clamped at 0, counted, still one vacate */
    EXPECT(member(&b, "ch", 3, NULL), "[0,0,0,0,1,4,0]");
    freeReplyObject(cmd("HSET %s ch 1", P ":{" APP "}:subs"));
    EXPECT(member(&b, "ch", 0, NULL), "[0,0,0,1,0,0,0]");
    EXPECT(cmd("GET %s", P ":inconsistent"), "1");
    EXPECT(member(&a, "ch", 0, NULL), "[0,0,0,0,0,0,0]");
    EXPECT(cmd("GET %s", P ":inconsistent"), "2");

    msgs m;
    sub_drain(s, &m); /* count_events off, not presence: nothing published */
    CU_ASSERT_EQUAL(m.n, 0);
    msgs_free(&m);
    redisFree(s);
}

static void test_presence_crossings(void)
{
    if (!ready())
        return;
    node a = node_up("100000000000001"), b = node_up("200000000000002");
    const char *c = "presence-room";
    const char *chans[] = {P ":m:" APP ":presence-room", P ":n:200000000000002", NULL};
    redisContext *s = sub_open(chans);
    mopts join_a = {.hold_ms = 60000, .except = "100000000000001.7"};
    tuser u_a = {"42", 1, "42", "{\"name\":\"first\"}"}, u_b = {"42", 1, "42", "{\"name\":\"second\"}"};

    EXPECT(member_user(&a, c, 1, &join_a, u_a), "[0,1,1,0,0,1,1,42,added,1]");
    EXPECT(member_user(&b, c, 1, NULL, u_b), "[0,0,0,0,0,2,1]"); /* same user elsewhere: no crossing */
    EXPECT(member_user(&a, c, 1, &join_a, u_a), "[0,0,0,0,0,2,1]"); /* re-sent: nothing */
    mopts snap = {.hold_ms = 60000, .token = 77};
    EXPECT(member_user(&b, c, 1, &snap, u_b), "[0,0,0,0,0,2,1]"); /* unchanged counts + token: a read */

    mopts first = {.hold_ms = 60000, .token = 78}; /* a join crossing both, on a channel not watched here */
    EXPECT(member_user(&b, "presence-hooks", 1, &first, u_b), "[0,1,1,0,0,1,1,42,added,1]");

    msgs m;
    sub_drain(s, &m);
    CU_ASSERT_EQUAL(m.n, 3); /* exactly one member_added, then the J of the read, then the J of the join */
    jmsg jh;
    CU_ASSERT_FATAL(m.n == 3 && parse_j(&m.v[2], &jh));
    CU_ASSERT(buf_is(&jh.f[0], "78"));
    CU_ASSERT(buf_is(&jh.f[8], "1\x1f\x1f" "42")); /* its webhooks: channel_occupied, member_added of 42 */
    jmsg_free(&jh);
    hd_buf added;
    frame_member(&added, true, c, "42", "{\"name\":\"first\"}");
    EXPECT_MSG(&m, 0, P ":m:" APP ":presence-room", "0 M 100000000000001.7\n", &added);
    jmsg j;
    CU_ASSERT_FATAL(m.n == 3 && parse_j(&m.v[1], &j));
    CU_ASSERT(buf_is(&j.f[0], "77"));
    CU_ASSERT(buf_is(&j.f[1], "0"));
    CU_ASSERT(buf_is(&j.f[8], "0\x1f")); /* a read crosses nothing: no webhook */
    CU_ASSERT(buf_is(&j.f[2], "2"));
    CU_ASSERT(buf_is(&j.f[3], "1"));
    /* first user_info wins */
    CU_ASSERT(buf_is(&j.f[4], "{\"presence\":{\"ids\":[\"42\"],\"hash\":{\"42\":{\"name\":\"first\"}},\"count\":1}}"));
    CU_ASSERT(buf_is(&j.f[5], "") && buf_is(&j.f[6], "0") && buf_is(&j.f[7], "0"));
    jmsg_free(&j);
    msgs_free(&m);

    u_a.count = u_b.count = 0;
    EXPECT(member_user(&a, c, 0, NULL, u_a), "[0,0,0,0,0,1,1]"); /* still on b: no removal */
    EXPECT(cmd("ZCARD %s", P ":holds"), "0");
    EXPECT(member_user(&b, c, 0, NULL, u_b), "[0,0,0,1,0,0,0,42,removed,0]");
    EXPECT(member_user(&b, c, 0, NULL, u_b), "[0,0,0,0,0,0,0]");
    EXPECT(cmd("ZRANGE %s 0 -1", P ":holds"),
           "[m\x1f" APP "\x1fpresence-room\x1f" "42,v\x1f" APP "\x1fpresence-room]");
    EXPECT(cmd("EXISTS %s %s", P ":{" APP "}:pi:presence-room", P ":{" APP "}:pu:presence-room"), "0");
    sub_drain(s, &m);
    CU_ASSERT_EQUAL(m.n, 1);
    hd_buf removed;
    frame_member(&removed, false, c, "42", NULL);
    EXPECT_MSG(&m, 0, P ":m:" APP ":presence-room", "0 M -\n", &removed);
    msgs_free(&m);

    /* a rejoin within the hold: the client sees member_added again, but no webhook
     * (the removal was never reported) */
    u_b.count = 1;
    EXPECT(member_user(&b, c, 1, NULL, u_b), "[0,1,0,0,0,1,1,42,added,0]");
    EXPECT(cmd("ZCARD %s", P ":holds"), "0");
    sub_drain(s, &m);
    hd_buf added_b;
    frame_member(&added_b, true, c, "42", "{\"name\":\"second\"}");
    CU_ASSERT_EQUAL(m.n, 1);
    EXPECT_MSG(&m, 0, P ":m:" APP ":presence-room", "0 M -\n", &added_b);
    msgs_free(&m);
    hd_buf_deinit(&added);
    hd_buf_deinit(&added_b);
    hd_buf_deinit(&removed);
    redisFree(s);
}

static void test_presence_limit(void)
{
    if (!ready())
        return;
    node a = node_up("100000000000001"), b = node_up("200000000000002");
    const char *c = "presence-small";
    const char *chans[] = {P ":m:" APP ":presence-small", P ":n:200000000000002", NULL};
    mopts lim = {.hold_ms = 60000, .max_members = 2, .token = 5};
    EXPECT(member_user(&a, c, 1, &lim, (tuser){"a", 1, NULL, NULL}), "[0,1,1,0,0,1,1,a,added,1]");
    tuser two[] = {{"a", 1, NULL, NULL}, {"b", 1, NULL, NULL}};
    EXPECT(member_call(&a, c, 2, &lim, two, 2), "[0,0,0,0,0,2,2,b,added,1]");

    redisContext *s = sub_open(chans);
    lim.token = 9;
    EXPECT(member_user(&b, c, 1, &lim, (tuser){"c", 1, NULL, NULL}), "[1,0,0,0,0,2,2]"); /* third user: refused */
    EXPECT(cmd("HGET %s %s", P ":{" APP "}:cn:presence-small", b.inc), "nil"); /* nothing written */
    EXPECT(cmd("HLEN %s", P ":{" APP "}:pu:presence-small"), "2");
    msgs m;
    sub_drain(s, &m);
    CU_ASSERT_EQUAL(m.n, 1); /* only the J (status 1, no snapshot) */
    jmsg j;
    CU_ASSERT_FATAL(m.n == 1 && parse_j(&m.v[0], &j));
    CU_ASSERT(buf_is(&j.f[0], "9") && buf_is(&j.f[1], "1") && buf_is(&j.f[2], "2") && buf_is(&j.f[3], "2"));
    CU_ASSERT(buf_is(&j.f[4], ""));
    jmsg_free(&j);
    msgs_free(&m);

    /* a user already present cluster-wide is admitted at the limit */
    lim.token = 10;
    EXPECT(member_user(&b, c, 1, &lim, (tuser){"a", 1, NULL, NULL}), "[0,0,0,0,0,3,2]");
    /* without a token (resync): refused users are skipped, the rest is applied */
    mopts resync = {.hold_ms = 60000, .max_members = 2, .full = true, .epoch = 2};
    tuser mixed[] = {{"a", 2, NULL, NULL}, {"c", 1, NULL, NULL}};
    EXPECT(member_call(&b, c, 3, &resync, mixed, 2), "[1,0,0,0,0,5,2]");
    EXPECT(cmd("HGET %s a", P ":{" APP "}:pu:presence-small"), "3");
    EXPECT(cmd("HEXISTS %s c", P ":{" APP "}:pu:presence-small"), "0");
    sub_drain(s, &m);
    CU_ASSERT_EQUAL(m.n, 1); /* the J of token 10; no member event */
    msgs_free(&m);
    redisFree(s);
}

static void test_lease_and_fencing(void)
{
    if (!ready())
        return;
    node a = node_make("100000000000001", 1);
    EXPECT(eval(HD_RS_REGISTER, P, a.inc, a.num, "60000", "gen-a", "owner-a", "h", "1", "2", "v", (char *)NULL),
           "[0,gen-a,1,*"); /* empty Redis: rebuild */
    redisReply *r = eval(HD_RS_REGISTER, P, a.inc, a.num, "60000", "gen-b", "owner-a", "h", "1", "2", "v",
                         (char *)NULL);
    CU_ASSERT_FATAL(r && r->type == REDIS_REPLY_ARRAY && r->elements == 5);
    CU_ASSERT_STRING_EQUAL(r->element[1]->str, "gen-a"); /* the data set's id is kept */
    CU_ASSERT_EQUAL(r->element[2]->integer, 0);
    CU_ASSERT(r->element[3]->integer > 1600000000000LL);
    CU_ASSERT_EQUAL(r->element[4]->integer, 0); /* not fresh: already registered */
    freeReplyObject(r);
    /* the same number from another process */
    node other = node_make("100000000000001", 2);
    EXPECT(eval(HD_RS_REGISTER, P, other.inc, other.num, "60000", "g", "owner-x", "h", "1", "2", "v", (char *)NULL),
           "ERR:NUM_TAKEN*");
    EXPECT(eval(HD_RS_REGISTER, P, other.inc, other.num, "60000", "g", "owner-a", "h", "1", "2", "v", (char *)NULL),
           "[0,gen-a,0,*");
    EXPECT(cmd("GET %s", P ":num:100000000000001"), "100000000000001-2");
    EXPECT(cmd("HGET %s epoch", P ":node:100000000000001-1"), "1");
    EXPECT(eval(HD_RS_RENEW, P, a.inc, "60000", (char *)NULL), "1*");
    EXPECT(eval(HD_RS_RESYNC_BEGIN, P, a.inc, (char *)NULL), "2");
    EXPECT(member(&a, "ch", 1, NULL), "[0,1,1,0,1,1,0]");

    node_expire(&a); /* its lease ends */
    EXPECT(member(&a, "ch", 0, NULL), "ERR:LEASE_LOST*");
    EXPECT(member(&a, "other", 1, NULL), "ERR:LEASE_LOST*");
    EXPECT(cmd("HGETALL %s", P ":{" APP "}:subs"), "[ch,1]"); /* nothing written */
    EXPECT(eval(HD_RS_RENEW, P, a.inc, "60000", (char *)NULL), "ERR:LEASE_LOST*");
    EXPECT(cmd("ZSCORE %s %s", P ":nodes", a.inc), "1"); /* not renewed */
    EXPECT(eval(HD_RS_RESYNC_BEGIN, P, a.inc, (char *)NULL), "ERR:LEASE_LOST*");
    EXPECT(eval(HD_RS_QUOTA, P, a.inc, APP, "take", "10", "0", (char *)NULL), "ERR:LEASE_LOST*");
    EXPECT(eval(HD_RS_SWEEP, P, a.inc, "2", "10", "0", (char *)NULL), "ERR:LEASE_LOST*");
    EXPECT(eval(HD_RS_REGISTER, P, a.inc, a.num, "60000", "g", "owner-a", "h", "1", "2", "v", (char *)NULL),
           "ERR:LEASE_LOST*");
    EXPECT(eval(HD_RS_EXPIRED, P, "10", (char *)NULL), "[100000000000001-1]");
    EXPECT(cmd("GET %s", P ":inconsistent"), "nil");

    /* a real expiry by Redis time */
    node d = node_make("300000000000003", 1);
    node_register(&d, "owner-d", 40);
    sleep_ms(120);
    EXPECT(eval(HD_RS_RENEW, P, d.inc, "60000", (char *)NULL), "ERR:LEASE_LOST*");
    EXPECT(member(&d, "ch", 1, NULL), "ERR:LEASE_LOST*");
}

/* reap -> reply {status, remaining, channels, vacated, removed, counts} */
static void test_reap_twice(void)
{
    if (!ready())
        return;
    node a = node_up("100000000000001"), b = node_up("200000000000002");
    mopts o = {.hold_ms = 60000, .count_events = true};
    EXPECT(member(&b, "ch1", 2, &o), "[0,1,1,0,1,2,0]");
    tuser us[] = {{"u1", 1, NULL, NULL}, {"u2", 1, NULL, "{\"x\":1}"}};
    EXPECT(member_call(&b, "presence-r", 2, &o, us, 2), "[0,1,1,0,0,2,2,u1,added,1,u2,added,1]");
    EXPECT(member(&b, "#server-to-user-9", 1, &o), "[0,1,0,0,0,1,0]");
    EXPECT(member(&b, "ch2", 1, &o), "[0,1,1,0,1,1,0]");
    EXPECT(member(&a, "ch2", 1, &o), "[0,0,0,0,1,2,0]");
    EXPECT(eval(HD_RS_QUOTA, P, b.inc, APP, "take", "10", "0", (char *)NULL), "0");

    EXPECT(eval(HD_RS_REAP, P, b.inc, "1", "60000", "0", (char *)NULL), "[1,0,0,0,0,[]]"); /* alive */
    const char *chans[] = {P ":m:" APP ":presence-r", P ":m:" APP ":#watch-9", P ":m:" APP ":ch2", NULL};
    redisContext *s = sub_open(chans);
    node_expire(&b);
    long long channels = 0, vacated = 0, removed = 0, calls = 0;
    hd_buf counts;
    hd_buf_init(&counts);
    for (;;) { /* two reapers taking turns, one channel per call */
        redisReply *r = eval(HD_RS_REAP, P, b.inc, "1", "60000", "0", (char *)NULL);
        CU_ASSERT_FATAL(r && r->type == REDIS_REPLY_ARRAY && r->elements == 6 && r->element[0]->integer == 0);
        channels += r->element[2]->integer;
        vacated += r->element[3]->integer;
        removed += r->element[4]->integer;
        reply_text(r->element[5], &counts);
        long long remaining = r->element[1]->integer;
        freeReplyObject(r);
        CU_ASSERT_FATAL(++calls < 10);
        if (!remaining)
            break;
    }
    hd_buf_append(&counts, "", 1);
    CU_ASSERT_EQUAL(calls, 4);
    CU_ASSERT_EQUAL(channels, 4);
    CU_ASSERT_EQUAL(vacated, 2); /* ch1, presence-r; #server-to-user- channels have no hooks */
    CU_ASSERT_EQUAL(removed, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(counts.data, "[" APP ",ch2,1]"));
    /* both reapers again: nothing left, nothing announced twice */
    EXPECT(eval(HD_RS_REAP, P, b.inc, "1", "60000", "0", (char *)NULL), "[0,0,0,0,0,[]]");
    EXPECT(eval(HD_RS_REAP, P, b.inc, "256", "60000", "0", (char *)NULL), "[0,0,0,0,0,[]]");
    EXPECT(cmd("ZSCORE %s %s", P ":nodes", b.inc), "nil");
    EXPECT(cmd("EXISTS %s %s %s", P ":node:200000000000002-1", P ":num:200000000000002",
               P ":node:200000000000002-1:apps"), "0");
    EXPECT(cmd("HGETALL %s", P ":{" APP "}:subs"), "[ch2,1]");
    EXPECT(cmd("HGETALL %s", P ":{" APP "}:conns"), "[]");
    EXPECT(cmd("ZCARD %s", P ":holds"), "4");

    msgs m;
    sub_drain(s, &m);
    CU_ASSERT_EQUAL(m.n, 4);
    size_t n_removed = 0, n_offline = 0, n_count = 0;
    hd_buf rm1, rm2, off, cnt;
    frame_member(&rm1, false, "presence-r", "\"u1\"", NULL);
    frame_member(&rm2, false, "presence-r", "\"u2\"", NULL);
    hd_buf_init(&off);
    hd_frame_watchlist(&off, false, "9");
    hd_buf_init(&cnt);
    hd_frame_subscription_count(&cnt, "ch2", 1);
    for (size_t i = 0; i < m.n; i++) {
        const msg *x = &m.v[i];
        const hd_buf *want = strstr(x->channel, "presence-r") ? (strstr(x->payload, "u1") ? &rm1 : &rm2)
                             : strstr(x->channel, "#watch-9") ? &off
                                                             : &cnt;
        EXPECT_MSG(&m, i, x->channel, "0 M -\n", want);
        n_removed += want == &rm1 || want == &rm2;
        n_offline += want == &off;
        n_count += want == &cnt;
    }
    CU_ASSERT(n_removed == 2 && n_offline == 1 && n_count == 1);
    msgs_free(&m);
    hd_buf_deinit(&rm1);
    hd_buf_deinit(&rm2);
    hd_buf_deinit(&off);
    hd_buf_deinit(&cnt);
    hd_buf_deinit(&counts);
    redisFree(s);

    /* graceful leave: force reaps a live incarnation, which then is fenced out */
    EXPECT(eval(HD_RS_REAP, P, a.inc, "256", "60000", "1", (char *)NULL), "[0,0,1,1,0,[]]");
    EXPECT(member(&a, "ch2", 1, NULL), "ERR:LEASE_LOST*");
    EXPECT(cmd("GET %s", P ":inconsistent"), "nil");
}

/* holds -> {remaining, kind, A, c, u, ...} */
static void test_holds(void)
{
    if (!ready())
        return;
    node a = node_up("100000000000001");
    mopts now = {.hold_ms = 0};
    EXPECT(member(&a, "h1", 1, &now), "[0,1,1,0,1,1,0]");
    EXPECT(member(&a, "h1", 0, &now), "[0,0,0,1,0,0,0]");
    EXPECT(eval(HD_RS_HOLDS, P, "64", "0", (char *)NULL), "[0,v," APP ",h1,]"); /* due, confirmed */
    EXPECT(eval(HD_RS_HOLDS, P, "64", "0", (char *)NULL), "[0]");               /* popped once */

    EXPECT(member(&a, "h2", 1, NULL), "[0,1,1,0,1,1,0]");
    EXPECT(member(&a, "h2", 0, NULL), "[0,0,0,1,0,0,0]"); /* held 60 s */
    EXPECT(eval(HD_RS_HOLDS, P, "64", "0", (char *)NULL), "[0]");
    EXPECT(eval(HD_RS_HOLDS, P, "64", "1", (char *)NULL), "[0,v," APP ",h2,]"); /* flush: the last node */

    /* an entry no longer true is dropped, not returned */
    EXPECT(member(&a, "h3", 1, NULL), "[0,1,1,0,1,1,0]");
    EXPECT(cmd("ZADD %s 0 %s", P ":holds", "v\x1f" APP "\x1fh3"), "1");
    EXPECT(eval(HD_RS_HOLDS, P, "64", "0", (char *)NULL), "[0]");
    EXPECT(cmd("ZCARD %s", P ":holds"), "0");

    /* member holds, batches */
    EXPECT(member_user(&a, "presence-h", 1, &now, (tuser){"x", 1, NULL, NULL}), "[0,1,1,0,0,1,1,x,added,1]");
    EXPECT(member_user(&a, "presence-h", 0, &now, (tuser){"x", 0, NULL, NULL}), "[0,0,0,1,0,0,0,x,removed,0]");
    EXPECT(eval(HD_RS_HOLDS, P, "1", "0", (char *)NULL), "[1,m," APP ",presence-h,x]");
    EXPECT(eval(HD_RS_HOLDS, P, "1", "0", (char *)NULL), "[0,v," APP ",presence-h,]");
    EXPECT(eval(HD_RS_HOLDS, P, "1", "0", (char *)NULL), "[0]");
}

static void test_reads(void)
{
    if (!ready())
        return;
    node a = node_up("100000000000001"), b = node_up("200000000000002");
    EXPECT(member(&a, "b-chan", 2, NULL), "[0,1,1,0,1,2,0]");
    EXPECT(member(&a, "a-chan", 1, NULL), "[0,1,1,0,1,1,0]");
    EXPECT(member(&b, "ab", 1, NULL), "[0,1,1,0,1,1,0]");
    tuser us[] = {{"u2", 1, NULL, NULL}, {"u1", 2, NULL, NULL}};
    EXPECT(member_call(&a, "presence-z", 3, NULL, us, 2), "[0,1,1,0,0,3,2,u2,added,1,u1,added,1]");
    EXPECT(member(&b, "#server-to-user-7", 1, NULL), "[0,1,0,0,0,1,0]");

    EXPECT(eval(HD_RS_READ_CHANNELS, P, APP, "", (char *)NULL),
           "a-chan\t1\t0\nab\t1\t0\nb-chan\t2\t0\npresence-z\t3\t2\n");
    EXPECT(eval(HD_RS_READ_CHANNELS, P, APP, "a", (char *)NULL), "a-chan\t1\t0\nab\t1\t0\n");
    EXPECT(eval(HD_RS_READ_CHANNELS, P, APP, "presence-", (char *)NULL), "presence-z\t3\t2\n");
    EXPECT(eval(HD_RS_READ_CHANNELS, P, APP, "zz", (char *)NULL), "");
    EXPECT(eval(HD_RS_READ_CHANNELS, P, "other-app", "", (char *)NULL), "");
    EXPECT(eval(HD_RS_READ_CHANNEL, P, APP, "presence-z", (char *)NULL), "[3,2,,0]");
    EXPECT(eval(HD_RS_READ_CHANNEL, P, APP, "nobody", (char *)NULL), "[0,0,,0]");
    EXPECT(eval(HD_RS_READ_USERS, P, APP, "presence-z", (char *)NULL), "{\"users\":[{\"id\":\"u1\"},{\"id\":\"u2\"}]}");
    EXPECT(eval(HD_RS_READ_USERS, P, APP, "presence-none", (char *)NULL), "{\"users\":[]}");

    const char *chans[] = {P ":n:100000000000001", P ":m:" APP ":cache-x", NULL};
    redisContext *s = sub_open(chans);
    EXPECT(eval(HD_RS_READ_ONLINE, P, APP, a.num, "0", "7", "8", "7", (char *)NULL), "101");
    EXPECT(eval(HD_RS_READ_ONLINE, P, APP, a.num, "55", "8", "7", (char *)NULL), "01");
    EXPECT(eval(HD_RS_READ_ONLINE, P, APP, a.num, "0", (char *)NULL), "");
    const char *frame = "{\"event\":\"e\",\"channel\":\"cache-x\",\"data\":\"1\"}";
    EXPECT(eval(HD_RS_PUBLISH_CACHE, P, APP, "cache-x", "30000", a.num, "", frame, (char *)NULL), "1");
    EXPECT(eval(HD_RS_PUBLISH_CACHE, P, APP, "cache-x", "30000", a.num, "100000000000001.4", frame, (char *)NULL),
           "1");
    msgs m;
    sub_drain(s, &m);
    CU_ASSERT_EQUAL(m.n, 3);
    EXPECT_MSG(&m, 0, P ":n:100000000000001", "0 R -\n2:55,2:01,", NULL);
    hd_buf fb;
    hd_buf_init(&fb);
    hd_buf_puts(&fb, frame);
    EXPECT_MSG(&m, 1, P ":m:" APP ":cache-x", "100000000000001 P -\n", &fb);
    EXPECT_MSG(&m, 2, P ":m:" APP ":cache-x", "100000000000001 P 100000000000001.4\n", &fb);
    msgs_free(&m);
    redisFree(s);
    hd_buf rc;
    hd_buf_init(&rc);
    hd_buf_printf(&rc, "[0,0,%s,30]", frame);
    hd_buf_append(&rc, "", 1);
    EXPECT(eval(HD_RS_READ_CHANNEL, P, APP, "cache-x", (char *)NULL), rc.data);
    hd_buf_deinit(&rc);
    hd_buf_deinit(&fb);
}

static void test_cache_join(void)
{
    if (!ready())
        return;
    node a = node_up("100000000000001"), b = node_up("200000000000002");
    const char *chans[] = {P ":n:100000000000001", P ":n:200000000000002", NULL};
    redisContext *s = sub_open(chans);
    mopts ta = {.hold_ms = 60000, .token = 3}, tb = {.hold_ms = 60000, .token = 4};
    EXPECT(member(&a, "private-cache-y", 1, &ta), "[0,1,1,0,1,1,0]");
    EXPECT(member(&b, "private-cache-y", 1, &tb), "[0,0,0,0,1,2,0]");
    const char *frame = "{\"event\":\"e\",\"channel\":\"private-cache-y\",\"data\":\"{}\"}";
    EXPECT(eval(HD_RS_PUBLISH_CACHE, P, APP, "private-cache-y", "10000", a.num, "", frame, (char *)NULL), "0");
    tb.token = 5;
    EXPECT(member(&b, "private-cache-y", 1, &tb), "[0,0,0,0,0,2,0]");
    msgs m;
    sub_drain(s, &m);
    CU_ASSERT_EQUAL_FATAL(m.n, 3);
    jmsg j;
    CU_ASSERT_FATAL(parse_j(&m.v[0], &j)); /* the first miss of the empty spell */
    CU_ASSERT(buf_is(&j.f[0], "3") && buf_is(&j.f[5], "") && buf_is(&j.f[6], "0") && buf_is(&j.f[7], "1"));
    CU_ASSERT(buf_is(&j.f[4], "")); /* not a presence channel */
    jmsg_free(&j);
    CU_ASSERT_FATAL(parse_j(&m.v[1], &j)); /* another miss: no second webhook */
    CU_ASSERT(buf_is(&j.f[0], "4") && buf_is(&j.f[5], "") && buf_is(&j.f[7], "0"));
    jmsg_free(&j);
    CU_ASSERT_FATAL(parse_j(&m.v[2], &j)); /* a hit: the frame and its time left */
    CU_ASSERT(buf_is(&j.f[0], "5") && buf_is(&j.f[5], frame) && buf_is(&j.f[6], "10") && buf_is(&j.f[7], "0"));
    CU_ASSERT(buf_is(&j.f[2], "2") && buf_is(&j.f[3], "0"));
    jmsg_free(&j);
    msgs_free(&m);
    EXPECT(cmd("EXISTS %s", P ":{" APP "}:cmiss:private-cache-y"), "0"); /* the publish ended the empty spell */
    redisFree(s);
}

static void test_subscription_count(void)
{
    if (!ready())
        return;
    node a = node_up("100000000000001"), b = node_up("200000000000002");
    const char *chans[] = {P ":m:" APP ":cnt", P ":n:100000000000001", P ":m:" APP ":presence-p", NULL};
    redisContext *s = sub_open(chans);
    mopts o = {.hold_ms = 60000, .count_events = true};
    mopts tok = {.hold_ms = 60000, .count_events = true, .token = 12};
    EXPECT(member(&a, "cnt", 1, &tok), "[0,1,1,0,1,1,0]");
    EXPECT(member(&a, "cnt", 150, &o), "[0,0,0,0,1,150,0]"); /* above 100: the first one is due */
    EXPECT(member(&a, "cnt", 151, &o), "[0,0,0,0,0,151,0]"); /* then throttled for 5 s */
    EXPECT(member(&a, "cnt", 151, &o), "[0,0,0,0,0,151,0]");
    EXPECT(member(&a, "cnt", 100, &o), "[0,0,0,0,1,100,0]"); /* at <= 100 always */
    EXPECT(member(&b, "cnt", 1, &o), "[0,0,0,0,0,101,0]");   /* above 100 within 5 s: throttled */
    EXPECT(member(&b, "cnt", 0, &o), "[0,0,0,0,1,100,0]");
    EXPECT(member(&a, "cnt", 0, &o), "[0,0,0,1,0,0,0]"); /* vacated: no count */
    EXPECT(member_user(&a, "presence-p", 1, &o, (tuser){"p", 1, NULL, NULL}), "[0,1,1,0,0,1,1,p,added,1]");
    mopts off = {.hold_ms = 60000};
    EXPECT(member(&a, "quiet", 1, &off), "[0,1,1,0,1,1,0]"); /* due, but the app has no count events */

    msgs m;
    sub_drain(s, &m);
    CU_ASSERT_EQUAL_FATAL(m.n, 6);
    /* the J of a join comes before the M frames of the same script */
    jmsg j;
    CU_ASSERT_FATAL(parse_j(&m.v[0], &j));
    CU_ASSERT(!strcmp(m.v[0].channel, P ":n:100000000000001") && buf_is(&j.f[0], "12") && buf_is(&j.f[2], "1"));
    CU_ASSERT(buf_is(&j.f[8], "1\x1f" "1")); /* channel_occupied and subscription_count 1, with the answer */
    jmsg_free(&j);
    unsigned counts[] = {1, 150, 100, 100};
    for (size_t i = 0; i < 4; i++) {
        hd_buf f;
        hd_buf_init(&f);
        hd_frame_subscription_count(&f, "cnt", counts[i]);
        EXPECT_MSG(&m, i + 1, P ":m:" APP ":cnt", "0 M -\n", &f);
        hd_buf_deinit(&f);
    }
    hd_buf added;
    frame_member(&added, true, "presence-p", "\"p\"", NULL); /* presence: member event, no count */
    EXPECT_MSG(&m, 5, P ":m:" APP ":presence-p", "0 M -\n", &added);
    hd_buf_deinit(&added);
    msgs_free(&m);
    redisFree(s);
}

static void test_watchlist(void)
{
    if (!ready())
        return;
    node a = node_up("100000000000001"), b = node_up("200000000000002");
    const char *chans[] = {P ":m:" APP ":#watch-u9", NULL};
    redisContext *s = sub_open(chans);
    const char *c = "#server-to-user-u9";
    EXPECT(member(&a, c, 1, NULL), "[0,1,0,0,0,1,0]"); /* online; no hook for '#' channels */
    EXPECT(member(&b, c, 2, NULL), "[0,0,0,0,0,3,0]");
    EXPECT(member(&a, c, 0, NULL), "[0,0,0,0,0,2,0]");
    EXPECT(member(&b, c, 0, NULL), "[0,0,0,1,0,0,0]");
    mopts given = {.hold_ms = 60000, .online_frame = "ON", .offline_frame = "OFF"};
    EXPECT(member(&b, c, 1, &given), "[0,1,0,0,0,1,0]");
    EXPECT(cmd("ZCARD %s", P ":holds"), "0"); /* no webhooks held for internal channels */
    EXPECT(eval(HD_RS_READ_CHANNELS, P, APP, "", (char *)NULL), "");
    msgs m;
    sub_drain(s, &m);
    CU_ASSERT_EQUAL_FATAL(m.n, 3);
    hd_buf on, off, given_on;
    hd_buf_init(&on);
    hd_buf_init(&off);
    hd_buf_init(&given_on);
    hd_frame_watchlist(&on, true, "u9");
    hd_frame_watchlist(&off, false, "u9");
    hd_buf_puts(&given_on, "ON");
    EXPECT_MSG(&m, 0, P ":m:" APP ":#watch-u9", "0 M -\n", &on);
    EXPECT_MSG(&m, 1, P ":m:" APP ":#watch-u9", "0 M -\n", &off);
    EXPECT_MSG(&m, 2, P ":m:" APP ":#watch-u9", "0 M -\n", &given_on);
    hd_buf_deinit(&on);
    hd_buf_deinit(&off);
    hd_buf_deinit(&given_on);
    msgs_free(&m);
    redisFree(s);
}

static void test_sweep(void)
{
    if (!ready())
        return;
    node a = node_up("100000000000001");
    EXPECT(member(&a, "s1", 1, NULL), "[0,1,1,0,1,1,0]");
    EXPECT(member_user(&a, "presence-s2", 1, NULL, (tuser){"x", 1, NULL, NULL}), "[0,1,1,0,0,1,1,x,added,1]");
    EXPECT(eval(HD_RS_RESYNC_BEGIN, P, a.inc, (char *)NULL), "2");
    mopts re = {.hold_ms = 60000, .epoch = 2, .full = true};
    EXPECT(member(&a, "s1", 1, &re), "[0,0,0,0,0,1,0]"); /* re-asserted: no crossing */
    EXPECT(eval(HD_RS_SWEEP, P, a.inc, "2", "1", "60000", (char *)NULL), "[0,0,1,1,1,[]]");
    EXPECT(eval(HD_RS_SWEEP, P, a.inc, "2", "1", "60000", (char *)NULL), "[0,0,0,0,0,[]]");
    EXPECT(eval(HD_RS_READ_CHANNELS, P, APP, "", (char *)NULL), "s1\t1\t0\n");
    EXPECT(cmd("EXISTS %s", P ":{" APP "}:pn:presence-s2:100000000000001-1"), "0");
    /* full = 1 also zeroes the users of this node that are no longer listed */
    EXPECT(member_user(&a, "presence-s3", 2, NULL, (tuser){"y", 2, NULL, NULL}), "[0,1,1,0,0,2,1,y,added,1]");
    EXPECT(member_user(&a, "presence-s3", 1, NULL, (tuser){"z", 1, NULL, NULL}), "[0,0,0,0,0,1,2,z,added,1]");
    EXPECT(member_user(&a, "presence-s3", 1, &re, (tuser){"z", 1, NULL, NULL}), "[0,0,0,0,0,1,1,y,removed,0]");
}

static void test_quota(void)
{
    if (!ready())
        return;
    node a = node_up("100000000000001"), b = node_up("200000000000002");
    EXPECT(eval(HD_RS_QUOTA, P, a.inc, APP, "take", "2", "0", (char *)NULL), "0");
    EXPECT(eval(HD_RS_QUOTA, P, b.inc, APP, "take", "2", "0", (char *)NULL), "0");
    EXPECT(eval(HD_RS_QUOTA, P, a.inc, APP, "take", "2", "0", (char *)NULL), "2");
    EXPECT(eval(HD_RS_QUOTA, P, b.inc, APP, "release", "2", "0", (char *)NULL), "0");
    EXPECT(eval(HD_RS_QUOTA, P, a.inc, APP, "take", "2", "0", (char *)NULL), "0");
    EXPECT(cmd("HGET %s %s", P ":{" APP "}:conns", a.inc), "2");
    EXPECT(eval(HD_RS_QUOTA, P, a.inc, APP, "set", "2", "0", (char *)NULL), "0");
    EXPECT(eval(HD_RS_QUOTA, P, b.inc, APP, "release", "2", "0", (char *)NULL), "0"); /* below 0: clamped */
    EXPECT(cmd("HGETALL %s", P ":{" APP "}:conns"), "[]");
    EXPECT(cmd("GET %s", P ":inconsistent"), "1");
    EXPECT(eval(HD_RS_QUOTA, P, a.inc, APP, "set", "0", "5", (char *)NULL), "0");
    EXPECT(eval(HD_RS_QUOTA, P, a.inc, APP, "take", "0", "0", (char *)NULL), "0"); /* max 0: no limit */
    EXPECT(cmd("HGETALL %s", P ":{" APP "}:conns"), "[100000000000001-1,6]");
}

/* Every byte value through the Lua JSON string escaper, compared with hd_buf_json_string. */
static void test_json_escape(void)
{
    if (!ready())
        return;
    node a = node_up("100000000000001");
    char key[256];
    for (int i = 0; i < 256; i++)
        key[i] = (char)(255 - i); /* NUL last, so the key is not empty-looking anywhere */
    argl args = {0};
    a_str(&args, P);
    a_str(&args, a.inc);
    a_str(&args, a.num);
    a_str(&args, APP);
    a_str(&args, "presence-bytes");
    const char *rest[] = {"1", "1", "0", "60000", "1800", "0", "", "0", "0", "", ""};
    for (size_t i = 0; i < sizeof rest / sizeof rest[0]; i++)
        a_str(&args, rest[i]);
    a_bin(&args, key, sizeof key);
    a_str(&args, "1");
    a_str(&args, "\"k\"\x1f");
    a_str(&args, "");
    a_str(&args, "");
    redisReply *r = eval_argl(HD_RS_MEMBER, &args);
    CU_ASSERT(r && r->type == REDIS_REPLY_ARRAY && r->elements == 10);
    freeReplyObject(r);
    hd_buf want;
    hd_buf_init(&want);
    hd_buf_puts(&want, "{\"users\":[{\"id\":");
    hd_buf_json_string(&want, key, sizeof key);
    hd_buf_puts(&want, "}]}");
    r = eval(HD_RS_READ_USERS, P, APP, "presence-bytes", (char *)NULL);
    CU_ASSERT_FATAL(r && r->type == REDIS_REPLY_STRING);
    CU_ASSERT_EQUAL(r->len, want.len);
    CU_ASSERT(r->len == want.len && !memcmp(r->str, want.data, want.len));
    freeReplyObject(r);
    hd_buf_deinit(&want);
}

/* The J snapshot of the members, from a join on node n with token 1. */
static void lua_snapshot(const node *n, const char *c, const tuser *u, hd_buf *out)
{
    const char *chan[] = {NULL, NULL};
    char nchan[64];
    snprintf(nchan, sizeof nchan, P ":n:%s", n->num);
    chan[0] = nchan;
    redisContext *s = sub_open(chan);
    mopts tok = {.hold_ms = 60000, .token = 1};
    freeReplyObject(member_user(n, c, u->count, &tok, *u));
    msgs m;
    sub_drain(s, &m);
    jmsg j;
    CU_ASSERT_FATAL(m.n == 1 && parse_j(&m.v[0], &j));
    hd_buf_append(out, j.f[4].data, j.f[4].len);
    jmsg_free(&j);
    msgs_free(&m);
    redisFree(s);
}

static void registry_join(hd_channel *ch, const tuser *u, hd_buf *snap)
{
    hd_buf idj;
    hd_buf_init(&idj);
    hd_buf_json_string(&idj, u->u, strlen(u->u));
    hd_member mb = {u->u, strlen(u->u), idj.data, idj.len, u->info, u->info ? strlen(u->info) : 0};
    hd_join_result jr;
    if (snap)
        snap->len = 0;
    CU_ASSERT(hd_channel_join(ch, 0, &mb, 0, snap, &jr) == 0);
    hd_buf_deinit(&idj);
}

static bool byte_less(const char *x, const char *y)
{
    return strcmp(x, y) < 0; /* strcmp compares as unsigned char */
}

/* The snapshot equals, byte for byte, what hd_channel_join builds for the
 * same members. The registry lists members in hash-bucket order and the
 * script in bytewise order, so the members are chosen (by hd_hash) so that
 * both orders agree; each also carries characters that need escaping. */
static void test_presence_snapshot_bytes(void)
{
    if (!ready())
        return;
    node a = node_up("100000000000001"), b = node_up("200000000000002");
    static const char *bases[] = {"a\"q", "b\\s", "c\x01t", "d\xc3\xa9", "e/\x7f"};
    static const char *infos[] = {"{\"name\":\"A \\\"q\\\"\"}", NULL, "[1,{\"x\":null}]", "\"str\"", "7"};
    char cand[50][16];
    size_t nc = 0;
    for (size_t i = 0; i < 5; i++)
        for (int d = 0; d < 10; d++)
            snprintf(cand[nc++], sizeof cand[0], "%s%d", bases[i], d);
    /* greedy: bytewise-sorted candidates whose bucket (of 8) strictly increases, one per base */
    const char *pick[5];
    const char *pick_info[5];
    size_t np = 0;
    long last_bucket = -1;
    for (size_t i = 0; i < nc && np < 4; i++) {
        long bucket = (long)(hd_hash(cand[i], strlen(cand[i])) & 7);
        if (bucket > last_bucket && (!np || (byte_less(pick[np - 1], cand[i]) && cand[i][0] != pick[np - 1][0]))) {
            pick_info[np] = infos[cand[i][0] - 'a'];
            pick[np++] = cand[i];
            last_bucket = bucket;
        }
    }
    CU_ASSERT_FATAL(np >= 3);

    hd_registry *reg = hd_registry_create(1);
    const char *c = "presence-snap";
    hd_channel *ch = hd_registry_acquire(reg, c, strlen(c), true);
    hd_buf want, got;
    hd_buf_init(&want);
    hd_buf_init(&got);
    /* one member at a time, joined in reverse order on alternating nodes */
    for (size_t k = np; k-- > 0;) {
        tuser u = {pick[k], 1, NULL, pick_info[k]};
        if (k != np - 1)
            hd_channel_ref(reg, ch);
        registry_join(ch, &u, &want);
        got.len = 0;
        lua_snapshot(k % 2 ? &a : &b, c, &u, &got);
        bool same = got.len == want.len && !memcmp(got.data, want.data, want.len);
        hd_buf_append(&got, "", 1);
        hd_buf_append(&want, "", 1);
        char text[1200];
        snprintf(text, sizeof text, "snapshot %.500s, registry %.500s", got.data, want.data);
        CU_assertImplementation(same, __LINE__, text, __FILE__, "", CU_FALSE);
    }
    /* a second socket of a member with another user_info changes nothing */
    tuser again = {pick[0], 2, NULL, "{\"other\":1}"};
    hd_channel_ref(reg, ch);
    registry_join(ch, &again, &want);
    got.len = 0;
    lua_snapshot(&a, c, &again, &got);
    CU_ASSERT(got.len == want.len && !memcmp(got.data, want.data, want.len));

    hd_buf_deinit(&want);
    hd_buf_deinit(&got);
    for (size_t i = 0; i < np + 1; i++) {
        hd_leave_result lr;
        hd_channel_leave(ch, 0, NULL, 0, &lr);
        hd_registry_release(reg, ch);
    }
    hd_registry_destroy(reg);
}

static void test_bad_arguments(void)
{
    if (!ready())
        return;
    node a = node_up("100000000000001");
    EXPECT(eval(HD_RS_MEMBER, P, a.inc, a.num, APP, "ch", (char *)NULL), "ERR:ERR herald: ARGV[6] is missing*");
    EXPECT(eval(HD_RS_MEMBER, P, a.inc, a.num, APP, "ch", "1", "-1", "0", "0", "1800", "0", "", "0", "0", "", "",
                (char *)NULL),
           "ERR:ERR herald: ARGV[7] must be a non-negative integer*");
    EXPECT(eval(HD_RS_MEMBER, P, a.inc, a.num, APP, "ch", "1", "1", "0", "0", "1800", "0", "", "2", "0", "", "",
                (char *)NULL),
           "ERR:ERR herald: ARGV[13] must be 0 or 1*");
    EXPECT(eval(HD_RS_MEMBER, P, a.inc, a.num, APP, "ch", "1", "1", "0", "0", "1800", "0", "", "0", "0", "", "",
                "u", "1", (char *)NULL),
           "ERR:ERR herald: *");
    EXPECT(eval(HD_RS_QUOTA, P, a.inc, APP, "steal", "1", "0", (char *)NULL), "ERR:ERR herald: ARGV[4]*");
    EXPECT(eval(HD_RS_PUBLISH_CACHE, P, APP, "cache-x", "0", a.num, "", "f", (char *)NULL),
           "ERR:ERR herald: ARGV[4]*");
    EXPECT(eval(HD_RS_REGISTER, P, "999-1", a.num, "1000", "g", "o", "h", "1", "2", "v", (char *)NULL),
           "ERR:ERR herald: ARGV[2]*");
    EXPECT(cmd("HGETALL %s", P ":{" APP "}:subs"), "[]"); /* nothing written by any of them */
}

void hd_test_suite_redis_scripts(void)
{
    CU_pSuite s = CU_add_suite("redis_scripts", suite_init, suite_cleanup);
    CU_add_test(s, "embedded sources", test_embedded_sources);
    CU_add_test(s, "channel crossings", test_channel_crossings);
    CU_add_test(s, "presence crossings", test_presence_crossings);
    CU_add_test(s, "presence limit", test_presence_limit);
    CU_add_test(s, "lease and fencing", test_lease_and_fencing);
    CU_add_test(s, "reap twice", test_reap_twice);
    CU_add_test(s, "holds", test_holds);
    CU_add_test(s, "reads", test_reads);
    CU_add_test(s, "cache join", test_cache_join);
    CU_add_test(s, "subscription_count", test_subscription_count);
    CU_add_test(s, "watchlist", test_watchlist);
    CU_add_test(s, "sweep", test_sweep);
    CU_add_test(s, "quota", test_quota);
    CU_add_test(s, "json escape", test_json_escape);
    CU_add_test(s, "presence snapshot bytes", test_presence_snapshot_bytes);
    CU_add_test(s, "bad arguments", test_bad_arguments);
}
