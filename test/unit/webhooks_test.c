/* webhooks_test.c - CUnit suite "webhooks": the webhook pool.
 *
 * DESIGN
 * ------
 * The pure parts are tested through webhooks_internal.h: payloads against
 * the §0 webhook vector (body and signature), event shapes, filters, the
 * per-channel alternation state machine (scripted, then a randomised model
 * where reports arrive out of order and timers fire at random moments),
 * the backoff schedule, breaker transitions, outcome classification and
 * the queue's overflow policy.
 *
 * The pool itself runs against a small HTTP server in this file (one
 * thread, one request per connection, answers from a scripted plan) with a
 * stub probe, so the sender threads, libcurl, timers and shutdown flush
 * run for real, under TSan in a -DHERALD_SANITIZE=thread build.
 *
 * No test asserts an upper bound on speed: waits poll a condition with a
 * generous deadline (WAIT_MS); only lower bounds of time are asserted.
 *
 * THREADING
 * ---------
 * The runner's thread, the pool's senders and the HTTP server thread;
 * what they share is atomic or under the server's mutex.
 */
#include <CUnit/CUnit.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config/config.h"
#include "protocol/protocol.h"
#include "webhooks/webhooks.h"
#include "webhooks/webhooks_internal.h"

#define WAIT_MS 10000u

/* ---- payloads ---- */

static hd_wh_event *ev_of(const hd_buf *b)
{
    return hd_webhooks__event_new(b->data, b->len, 0);
}

static void test_vector(void)
{
    /* PUSHER_PROTOCOL.md §0, "webhook body" */
    hd_buf e, body;
    hd_buf_init(&e);
    hd_buf_init(&body);
    hd_webhooks__event_simple(&e, HD_WH_CHANNEL_OCCUPIED, "my-channel", NULL);
    hd_wh_queue q;
    hd_webhooks__queue_init(&q, 4);
    CU_ASSERT_PTR_NULL(hd_webhooks__queue_push(&q, ev_of(&e), 0));
    hd_webhooks__body(&body, 1327078148132ull, &q, 1);
    CU_ASSERT_STRING_EQUAL(body.data, "{\"time_ms\":1327078148132,\"events\":[{\"name\":\"channel_occupied\","
                                      "\"channel\":\"my-channel\"}]}");
    char sig[65];
    hd_hmac_sha256_hex("7ad3773142a6692b25b8", 20, body.data, body.len, sig);
    CU_ASSERT_STRING_EQUAL(sig, "c19001ae3963ccb13bf618e5b16ba9848e7e74df0993aa0689168e341c6833cf");
    /* two events: comma-separated, in queue order */
    e.len = 0;
    hd_webhooks__event_simple(&e, HD_WH_CHANNEL_VACATED, "my-channel", NULL);
    CU_ASSERT_PTR_NULL(hd_webhooks__queue_push(&q, ev_of(&e), 0));
    body.len = 0;
    hd_webhooks__body(&body, 5, &q, 2);
    CU_ASSERT_STRING_EQUAL(body.data, "{\"time_ms\":5,\"events\":[{\"name\":\"channel_occupied\",\"channel\":"
                                      "\"my-channel\"},{\"name\":\"channel_vacated\",\"channel\":\"my-channel\"}]}");
    hd_webhooks__queue_deinit(&q);
    hd_buf_deinit(&e);
    hd_buf_deinit(&body);
}

static void expect_json(void (*build)(hd_buf *), const char *want)
{
    hd_buf b;
    hd_buf_init(&b);
    build(&b);
    CU_ASSERT_STRING_EQUAL(b.data, want);
    hd_buf_deinit(&b);
}

static void build_member(hd_buf *b)
{
    hd_webhooks__event_simple(b, HD_WH_MEMBER_ADDED, "presence-c", "42");
}
static void build_removed(hd_buf *b)
{
    hd_webhooks__event_simple(b, HD_WH_MEMBER_REMOVED, "presence-c", "a\"b\\c\n");
}
static void build_client(hd_buf *b)
{
    hd_webhooks__event_client(b, "private-c", "client-x", "{\"a\":[1,\"z\"]}", "1.2", NULL);
}
static void build_client_presence(hd_buf *b)
{
    hd_webhooks__event_client(b, "presence-c", "client-x", "\"text\"", "1.2", "7");
}
static void build_cache(hd_buf *b)
{
    hd_webhooks__event_simple(b, HD_WH_CACHE_MISS, "cache-c", NULL);
}
static void build_count(hd_buf *b)
{
    hd_webhooks__event_count(b, "c", 123);
}

static void test_event_shapes(void)
{
    expect_json(build_member, "{\"name\":\"member_added\",\"channel\":\"presence-c\",\"user_id\":\"42\"}");
    expect_json(build_removed,
                "{\"name\":\"member_removed\",\"channel\":\"presence-c\",\"user_id\":\"a\\\"b\\\\c\\n\"}");
    expect_json(build_client, "{\"name\":\"client_event\",\"channel\":\"private-c\",\"event\":\"client-x\","
                              "\"data\":{\"a\":[1,\"z\"]},\"socket_id\":\"1.2\"}");
    expect_json(build_client_presence, "{\"name\":\"client_event\",\"channel\":\"presence-c\",\"event\":\"client-x\","
                                       "\"data\":\"text\",\"socket_id\":\"1.2\",\"user_id\":\"7\"}");
    expect_json(build_cache, "{\"name\":\"cache_miss\",\"channel\":\"cache-c\"}");
    expect_json(build_count, "{\"name\":\"subscription_count\",\"channel\":\"c\",\"subscription_count\":123}");
    for (int t = 0; t < HD_WH_NTYPES; t++)
        CU_ASSERT_EQUAL(hd_webhooks__type_of(hd_webhooks__type_names[t]), t);
    CU_ASSERT_EQUAL(hd_webhooks__type_of("channel_gone"), -1);
}

static void test_filters(void)
{
    uint32_t occ = HD_WH_BIT(HD_WH_CHANNEL_OCCUPIED);
    CU_ASSERT_TRUE(hd_webhooks__matches(occ, NULL, NULL, HD_WH_CHANNEL_OCCUPIED, "any"));
    CU_ASSERT_FALSE(hd_webhooks__matches(occ, NULL, NULL, HD_WH_CHANNEL_VACATED, "any"));
    CU_ASSERT_TRUE(hd_webhooks__matches(occ, "private-", NULL, HD_WH_CHANNEL_OCCUPIED, "private-x"));
    CU_ASSERT_FALSE(hd_webhooks__matches(occ, "private-", NULL, HD_WH_CHANNEL_OCCUPIED, "presence-x"));
    CU_ASSERT_FALSE(hd_webhooks__matches(occ, "private-", NULL, HD_WH_CHANNEL_OCCUPIED, "private"));
    CU_ASSERT_TRUE(hd_webhooks__matches(occ, NULL, "-vip", HD_WH_CHANNEL_OCCUPIED, "room-vip"));
    CU_ASSERT_FALSE(hd_webhooks__matches(occ, NULL, "-vip", HD_WH_CHANNEL_OCCUPIED, "vip"));
    CU_ASSERT_TRUE(hd_webhooks__matches(occ, "a-", "-z", HD_WH_CHANNEL_OCCUPIED, "a-z"));
    CU_ASSERT_FALSE(hd_webhooks__matches(occ, "a-", "-z", HD_WH_CHANNEL_OCCUPIED, "a-y"));
    CU_ASSERT_FALSE(hd_webhooks__matches(occ, "a-", "-z", HD_WH_CHANNEL_OCCUPIED, "b-z"));
}

/* ---- the alternation state machine ---- */

static void test_flip_script(void)
{
    hd_wh_flip f = {0};
    CU_ASSERT_EQUAL(hd_webhooks__flip_up(&f), HD_WH_FLIP_EMIT);   /* occupied sent */
    CU_ASSERT_EQUAL(hd_webhooks__flip_down(&f), HD_WH_FLIP_ARM);  /* vacated held back */
    uint32_t g1 = f.gen;
    CU_ASSERT_EQUAL(hd_webhooks__flip_up(&f), HD_WH_FLIP_CANCEL); /* rejoin: neither is sent */
    CU_ASSERT_EQUAL(hd_webhooks__flip_fire(&f, g1, false), HD_WH_FLIP_NONE); /* stale timer */
    CU_ASSERT_EQUAL(hd_webhooks__flip_down(&f), HD_WH_FLIP_ARM);
    uint32_t g2 = f.gen;
    CU_ASSERT_NOT_EQUAL(g1, g2);
    CU_ASSERT_EQUAL(hd_webhooks__flip_fire(&f, g2, true), HD_WH_FLIP_ARM); /* probe: back already */
    CU_ASSERT_TRUE(f.pending);
    CU_ASSERT_EQUAL(hd_webhooks__flip_fire(&f, g2, false), HD_WH_FLIP_EMIT); /* vacated sent */
    CU_ASSERT_TRUE(hd_webhooks__flip_idle(&f));
    CU_ASSERT_EQUAL(hd_webhooks__flip_fire(&f, g2, false), HD_WH_FLIP_NONE); /* once only */

    /* reports out of order: a down before its up sends nothing */
    hd_wh_flip o = {0};
    CU_ASSERT_EQUAL(hd_webhooks__flip_down(&o), HD_WH_FLIP_NONE);
    CU_ASSERT_EQUAL(hd_webhooks__flip_up(&o), HD_WH_FLIP_NONE);
    CU_ASSERT_TRUE(hd_webhooks__flip_idle(&o));
    /* duplicate-looking ups (two crossings, downs late): one occupied */
    CU_ASSERT_EQUAL(hd_webhooks__flip_up(&o), HD_WH_FLIP_EMIT);
    CU_ASSERT_EQUAL(hd_webhooks__flip_up(&o), HD_WH_FLIP_NONE);
    CU_ASSERT_EQUAL(hd_webhooks__flip_down(&o), HD_WH_FLIP_NONE);
    CU_ASSERT_EQUAL(hd_webhooks__flip_down(&o), HD_WH_FLIP_ARM);
}

/* Model: the truth alternates up/down (crossings); each crossing's report
 * is delivered after a random delay, so reports interleave out of order;
 * timers fire at random moments and the probe answers the truth of that
 * moment. What the machine emits must alternate, start with up, and in the
 * end match the truth. */
typedef struct model {
    hd_wh_flip f;
    bool truth, told; /* the channel now; what the receivers were told */
    int sent;
    bool armed; /* a timer exists (the pool keeps at most one per key) */
    uint32_t armed_gen;
    bool ok;
} model;

static void model_emit(model *m, bool up)
{
    if (m->told == up)
        m->ok = false; /* two ups or two downs in a row */
    m->told = up;
    m->sent++;
}

static void model_act(model *m, hd_wh_flip_act a, bool up)
{
    if (a == HD_WH_FLIP_EMIT)
        model_emit(m, up);
    if (a == HD_WH_FLIP_ARM) {
        m->armed = true;
        m->armed_gen = m->f.gen;
    }
}

static void model_fire(model *m)
{
    if (!m->armed)
        return;
    hd_wh_flip_act a = hd_webhooks__flip_fire(&m->f, m->armed_gen, m->truth);
    if (a == HD_WH_FLIP_EMIT)
        model_emit(m, false);
    if (a == HD_WH_FLIP_NONE) /* stale: a newer arm (if pending) owns the timer */
        m->armed_gen = m->f.gen;
    m->armed = a == HD_WH_FLIP_ARM || (a == HD_WH_FLIP_NONE && m->f.pending);
}

static void test_flip_model(void)
{
    unsigned seed = 12345;
    for (int round = 0; round < 2000; round++) {
        model m = {.ok = true};
        bool reports[64]; /* true = up */
        int n = 2 * (1 + (int)(rand_r(&seed) % 16)), delivered = 0, crossed = 0;
        bool queued[64] = {false};
        while (delivered < n) {
            unsigned r = rand_r(&seed) % 4;
            if (r == 0 && crossed < n) { /* a crossing happens */
                m.truth = !m.truth;
                reports[crossed] = m.truth;
                queued[crossed++] = true;
            } else if (r == 1 || r == 2) { /* some pending report arrives */
                int pick = -1;
                for (int i = 0; i < crossed; i++)
                    if (queued[i] && (pick < 0 || rand_r(&seed) % 2))
                        pick = i;
                if (pick < 0)
                    continue;
                queued[pick] = false;
                delivered++;
                bool up = reports[pick];
                model_act(&m, up ? hd_webhooks__flip_up(&m.f) : hd_webhooks__flip_down(&m.f), up);
            } else {
                model_fire(&m);
            }
        }
        for (int i = 0; i < 8 && m.armed; i++)
            model_fire(&m);
        CU_ASSERT_TRUE(m.ok);
        CU_ASSERT_FALSE(m.truth); /* n crossings, n even: down in the end */
        CU_ASSERT_FALSE(m.told);
        CU_ASSERT_FALSE(m.armed);
        CU_ASSERT_TRUE(hd_webhooks__flip_idle(&m.f));
        CU_ASSERT_EQUAL(m.sent % 2, 0);
    }
}

/* ---- backoff, breaker, outcomes ---- */

static void test_backoff(void)
{
    CU_ASSERT_EQUAL(hd_webhooks__backoff_ms(0, 1000, 60000, 7), 0);
    uint64_t step = 1000;
    for (uint32_t a = 1; a <= 12; a++) {
        uint64_t lo = hd_webhooks__backoff_ms(a, 1000, 60000, 0);
        uint64_t hi = hd_webhooks__backoff_ms(a, 1000, 60000, UINT32_MAX);
        CU_ASSERT_EQUAL(lo, step - step / 2);
        CU_ASSERT_TRUE(hi >= lo && hi <= step);
        for (uint32_t r = 0; r < 50; r++) {
            uint64_t d = hd_webhooks__backoff_ms(a, 1000, 60000, r * 7919u);
            CU_ASSERT_TRUE(d >= step / 2 && d <= step);
        }
        step = step * 2 > 60000 ? 60000 : step * 2;
    }
    CU_ASSERT_EQUAL(hd_webhooks__backoff_ms(1, 1, 1, 5), 1);
    CU_ASSERT_EQUAL(hd_webhooks__backoff_ms(40, 100, 300, 0), 150); /* capped, no overflow */
    CU_ASSERT_EQUAL(hd_webhooks__backoff_ms(3, 1000, 500, 0), 250);  /* cap below initial */
}

static void test_breaker(void)
{
    hd_wh_breaker br;
    hd_webhooks__breaker_init(&br, 3, 1000);
    uint64_t at = 0;
    CU_ASSERT_TRUE(hd_webhooks__breaker_allow(&br, 10, &at));
    hd_webhooks__breaker_record(&br, true, 10);
    hd_webhooks__breaker_record(&br, true, 20);
    CU_ASSERT_EQUAL(br.state, HD_WH_CLOSED);
    hd_webhooks__breaker_record(&br, false, 30); /* success resets the count */
    hd_webhooks__breaker_record(&br, true, 40);
    hd_webhooks__breaker_record(&br, true, 50);
    CU_ASSERT_EQUAL(br.state, HD_WH_CLOSED);
    hd_webhooks__breaker_record(&br, true, 60);
    CU_ASSERT_EQUAL(br.state, HD_WH_OPEN);
    CU_ASSERT_FALSE(hd_webhooks__breaker_allow(&br, 1059, &at));
    CU_ASSERT_EQUAL(at, 1060);
    CU_ASSERT_TRUE(hd_webhooks__breaker_allow(&br, 1060, &at)); /* cool-down over: one probe */
    CU_ASSERT_EQUAL(br.state, HD_WH_HALF_OPEN);
    hd_webhooks__breaker_record(&br, true, 1100); /* probe fails: open again */
    CU_ASSERT_EQUAL(br.state, HD_WH_OPEN);
    CU_ASSERT_FALSE(hd_webhooks__breaker_allow(&br, 2000, &at));
    CU_ASSERT_EQUAL(at, 2100);
    CU_ASSERT_TRUE(hd_webhooks__breaker_allow(&br, 2100, &at));
    hd_webhooks__breaker_record(&br, false, 2150); /* probe succeeds: closed */
    CU_ASSERT_EQUAL(br.state, HD_WH_CLOSED);
    CU_ASSERT_EQUAL(br.failures, 0);
}

static void test_classify(void)
{
    CU_ASSERT_EQUAL(hd_webhooks__classify(CURLE_OK, 200), HD_WH_DELIVERED);
    CU_ASSERT_EQUAL(hd_webhooks__classify(CURLE_OK, 204), HD_WH_DELIVERED);
    CU_ASSERT_EQUAL(hd_webhooks__classify(CURLE_COULDNT_CONNECT, 0), HD_WH_RETRY);
    CU_ASSERT_EQUAL(hd_webhooks__classify(CURLE_OPERATION_TIMEDOUT, 0), HD_WH_RETRY);
    CU_ASSERT_EQUAL(hd_webhooks__classify(CURLE_OK, 500), HD_WH_RETRY);
    CU_ASSERT_EQUAL(hd_webhooks__classify(CURLE_OK, 503), HD_WH_RETRY);
    CU_ASSERT_EQUAL(hd_webhooks__classify(CURLE_OK, 429), HD_WH_RETRY);
    CU_ASSERT_EQUAL(hd_webhooks__classify(CURLE_OK, 408), HD_WH_RETRY);
    CU_ASSERT_EQUAL(hd_webhooks__classify(CURLE_OK, 400), HD_WH_REJECTED);
    CU_ASSERT_EQUAL(hd_webhooks__classify(CURLE_OK, 401), HD_WH_REJECTED);
    CU_ASSERT_EQUAL(hd_webhooks__classify(CURLE_OK, 404), HD_WH_REJECTED);
    CU_ASSERT_EQUAL(hd_webhooks__classify(CURLE_OK, 301), HD_WH_REJECTED);
}

/* ---- the bounded queue ---- */

static hd_wh_event *num_ev(unsigned i)
{
    char s[16];
    int n = snprintf(s, sizeof s, "%u", i);
    return hd_webhooks__event_new(s, (size_t)n, i);
}

static unsigned num_at(const hd_wh_queue *q, uint32_t i)
{
    return (unsigned)hd_webhooks__queue_at(q, i)->reported_ms;
}

static void test_queue_overflow(void)
{
    hd_wh_queue q;
    hd_webhooks__queue_init(&q, 4);
    for (unsigned i = 1; i <= 4; i++)
        CU_ASSERT_PTR_NULL(hd_webhooks__queue_push(&q, num_ev(i), 0));
    /* full, nothing in flight: the oldest goes */
    hd_wh_event *d = hd_webhooks__queue_push(&q, num_ev(5), 0);
    CU_ASSERT_EQUAL_FATAL(d != NULL, true);
    CU_ASSERT_EQUAL(d->reported_ms, 1);
    hd_webhooks__event_unref(d);
    CU_ASSERT_EQUAL(q.count, 4);
    CU_ASSERT_EQUAL(num_at(&q, 0), 2);
    CU_ASSERT_EQUAL(num_at(&q, 3), 5);
    /* the first two are in flight: the oldest one not in flight goes */
    d = hd_webhooks__queue_push(&q, num_ev(6), 2);
    CU_ASSERT_EQUAL(d->reported_ms, 4);
    hd_webhooks__event_unref(d);
    CU_ASSERT_EQUAL(num_at(&q, 0), 2);
    CU_ASSERT_EQUAL(num_at(&q, 1), 3);
    CU_ASSERT_EQUAL(num_at(&q, 2), 5);
    CU_ASSERT_EQUAL(num_at(&q, 3), 6);
    /* everything in flight: the newest is refused */
    hd_wh_event *n7 = num_ev(7);
    CU_ASSERT_PTR_EQUAL(hd_webhooks__queue_push(&q, n7, 4), n7);
    hd_webhooks__event_unref(n7);
    CU_ASSERT_EQUAL(q.count, 4);
    hd_webhooks__queue_deinit(&q);

    /* growth and wrap-around keep FIFO order; removal from the middle */
    hd_webhooks__queue_init(&q, 1000);
    unsigned next = 0, first = 0;
    for (unsigned round = 0; round < 50; round++) {
        for (unsigned k = 0; k < 7; k++)
            CU_ASSERT_PTR_NULL(hd_webhooks__queue_push(&q, num_ev(next++), 0));
        for (unsigned k = 0; k < 5; k++) {
            hd_wh_event *e = hd_webhooks__queue_remove(&q, 0);
            CU_ASSERT_EQUAL(e->reported_ms, first++);
            hd_webhooks__event_unref(e);
        }
    }
    CU_ASSERT_EQUAL(q.count, 100);
    hd_wh_event *mid = hd_webhooks__queue_remove(&q, 3);
    CU_ASSERT_EQUAL(mid->reported_ms, first + 3);
    hd_webhooks__event_unref(mid);
    CU_ASSERT_EQUAL(num_at(&q, 2), first + 2);
    CU_ASSERT_EQUAL(num_at(&q, 3), first + 4);
    hd_webhooks__queue_deinit(&q);
}

/* ---- a scripted HTTP receiver ---- */

#define MAX_REQS 4096

typedef struct receiver {
    int fd;
    uint16_t port;
    pthread_t thread;
    atomic_bool stop;
    pthread_mutex_t lock;
    int plan[8]; /* {lock} statuses for the next requests, then 200 */
    unsigned n_plan, used_plan;
    char *heads[MAX_REQS]; /* {lock} */
    char *bodies[MAX_REQS];
    int status[MAX_REQS];
    unsigned n;
} receiver;

static receiver R;

static char *read_request(int c, char **body_out)
{
    hd_buf b;
    hd_buf_init(&b);
    char chunk[4096];
    char *end = NULL;
    size_t want = 0;
    for (;;) {
        ssize_t r = read(c, chunk, sizeof chunk);
        if (r <= 0)
            break;
        hd_buf_append(&b, chunk, (size_t)r);
        if (!end && (end = strstr(b.data, "\r\n\r\n")) != NULL) {
            const char *cl = strcasestr(b.data, "\r\nContent-Length:");
            want = (size_t)(end - b.data) + 4 + (cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0);
        }
        if (end && b.len >= want)
            break;
    }
    end = strstr(b.data ? b.data : "", "\r\n\r\n");
    if (!end) {
        hd_buf_deinit(&b);
        return NULL;
    }
    *body_out = hd_strdup(end + 4);
    end[2] = '\0';
    return hd_buf_steal(&b, NULL);
}

static void serve_one(int c)
{
    char *body = NULL, *head = read_request(c, &body);
    if (!head)
        return;
    pthread_mutex_lock(&R.lock);
    int status = R.used_plan < R.n_plan ? R.plan[R.used_plan++] : 200;
    if (R.n < MAX_REQS) {
        R.heads[R.n] = head;
        R.bodies[R.n] = body;
        R.status[R.n++] = status;
        head = body = NULL;
    }
    pthread_mutex_unlock(&R.lock);
    hd_free(head);
    hd_free(body);
    char resp[128];
    int n = snprintf(resp, sizeof resp, "HTTP/1.1 %d X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", status);
    ssize_t w = write(c, resp, (size_t)n);
    (void)w;
}

static void *receiver_main(void *arg)
{
    (void)arg;
    while (!atomic_load(&R.stop)) {
        struct pollfd p = {R.fd, POLLIN, 0};
        if (poll(&p, 1, 20) <= 0)
            continue;
        int c = accept(R.fd, NULL, NULL);
        if (c < 0)
            continue;
        serve_one(c);
        close(c);
    }
    return NULL;
}

static uint16_t listen_any(int *fd_out)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CU_ASSERT_EQUAL(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    CU_ASSERT_EQUAL(listen(fd, 16), 0);
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    *fd_out = fd;
    return ntohs(a.sin_port);
}

static void receiver_start(const int *plan, unsigned n_plan)
{
    memset(&R, 0, sizeof R);
    pthread_mutex_init(&R.lock, NULL);
    if (n_plan)
        memcpy(R.plan, plan, n_plan * sizeof *plan);
    R.n_plan = n_plan;
    R.port = listen_any(&R.fd);
    pthread_create(&R.thread, NULL, receiver_main, NULL);
}

static void receiver_stop(void)
{
    atomic_store(&R.stop, true);
    pthread_join(R.thread, NULL);
    close(R.fd);
    for (unsigned i = 0; i < R.n; i++) {
        hd_free(R.heads[i]);
        hd_free(R.bodies[i]);
    }
    pthread_mutex_destroy(&R.lock);
}

static unsigned received(void)
{
    pthread_mutex_lock(&R.lock);
    unsigned n = R.n;
    pthread_mutex_unlock(&R.lock);
    return n;
}

static bool wait_received(unsigned n)
{
    uint64_t deadline = hd_mono_ms() + WAIT_MS;
    while (received() < n && hd_mono_ms() < deadline)
        usleep(2000);
    return received() >= n;
}

/* Request i must carry the fixed headers and a valid signature, and its
 * body must hold exactly `events` (the JSON inside "events":[...]). */
static void check_request(unsigned i, const char *events)
{
    pthread_mutex_lock(&R.lock);
    const char *head = R.heads[i], *body = R.bodies[i];
    char sig[65], line[96];
    hd_hmac_sha256_hex("app-secret", 10, body, strlen(body), sig);
    snprintf(line, sizeof line, "\r\nX-Pusher-Signature: %s\r\n", sig);
    CU_ASSERT_PTR_NOT_NULL(strstr(head, line));
    CU_ASSERT_PTR_NOT_NULL(strstr(head, "\r\nContent-Type: application/json\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(head, "\r\nX-Pusher-Key: app-key\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(head, "\r\nX-Extra: yes\r\n"));
    CU_ASSERT_EQUAL(strncmp(head, "POST /hook HTTP/1.1\r\n", 21), 0);
    const char *ev = strstr(body, ",\"events\":[");
    CU_ASSERT_EQUAL(strncmp(body, "{\"time_ms\":", 11), 0);
    size_t n = ev ? strlen(ev += 11) : 0;
    CU_ASSERT_TRUE(n >= 2 && strcmp(ev + n - 2, "]}") == 0);
    if (n < 2 || strlen(events) != n - 2 || strncmp(ev, events, n - 2) != 0) {
        fprintf(stderr, "\nrequest %u: got %s\n  want [%s]\n", i, body, events);
        CU_FAIL("request events");
    }
    pthread_mutex_unlock(&R.lock);
}

/* ---- the pool against the receiver ---- */

static atomic_bool probe_occupied, probe_present;
static atomic_uint probe_calls;

static bool stub_occupied(void *ctx, unsigned app, const char *channel)
{
    (void)ctx, (void)app, (void)channel;
    atomic_fetch_add(&probe_calls, 1);
    return atomic_load(&probe_occupied);
}

static bool stub_present(void *ctx, unsigned app, const char *channel, const char *user_id)
{
    (void)ctx, (void)app, (void)channel, (void)user_id;
    atomic_fetch_add(&probe_calls, 1);
    return atomic_load(&probe_present);
}

static const hd_webhooks_probe stub_probe = {NULL, stub_occupied, stub_present};

/* Config with one app and one endpoint at the receiver (port), taking
 * the given event types ("a","b"), plus extra global webhooks keys. */
static int load_cfg(hd_config *cfg, uint16_t port, const char *types, const char *extra)
{
    char json[2048], err[256];
    int n = snprintf(json, sizeof json,
                     "{\"shutdown_grace_period\":5,\"app_manager\":{\"array\":{\"apps\":[{\"id\":\"app-id\","
                     "\"key\":\"app-key\",\"secret\":\"app-secret\",\"webhooks\":[{\"url\":"
                     "\"http://127.0.0.1:%u/hook\",\"event_types\":[%s],\"headers\":{\"X-Extra\":\"yes\"}},"
                     "{\"url\":\"http://127.0.0.1:%u/hook\",\"event_types\":[\"member_added\"],"
                     "\"filter\":{\"channel_prefix\":\"nothing-\"}}]}]}},"
                     "\"webhooks\":{\"batching\":{\"enabled\":true,\"duration\":30},\"retry_initial_ms\":20,"
                     "\"retry_max_interval_ms\":50%s%s}}",
                     port, types, port, extra ? "," : "", extra ? extra : "");
    int rc = hd_config_load_json(cfg, json, (size_t)n, NULL, err, sizeof err);
    if (rc)
        fprintf(stderr, "\nconfig: %s\n", err);
    return rc;
}

/* Wait until the pool's metrics text contains want (the receiver records
 * a request before the sender has seen the answer). */
static bool wait_metric(const hd_webhooks *wh, const char *want)
{
    bool seen = false;
    for (uint64_t deadline = hd_mono_ms() + WAIT_MS; !seen && hd_mono_ms() < deadline; usleep(2000)) {
        hd_buf m;
        hd_buf_init(&m);
        hd_webhooks_metrics(wh, &m);
        seen = strstr(m.data, want) != NULL;
        hd_buf_deinit(&m);
    }
    if (!seen)
        fprintf(stderr, "\nmetric not seen: %s", want);
    return seen;
}

static void test_pool_occupancy(void)
{
    receiver_start(NULL, 0);
    hd_config cfg;
    CU_ASSERT_EQUAL_FATAL(load_cfg(&cfg, R.port, "\"channel_occupied\",\"channel_vacated\",\"member_added\","
                                                 "\"member_removed\"", "\"vacate_delay_ms\":150"), 0);
    atomic_store(&probe_occupied, false);
    atomic_store(&probe_present, false);
    hd_webhooks *wh = hd_webhooks_create(&cfg, &stub_probe, cfg.n_apps);
    CU_ASSERT_PTR_NOT_NULL_FATAL(wh);
    const unsigned app = 0;
    CU_ASSERT_TRUE(hd_webhooks_wanted(wh, app, "channel_vacated", "c"));
    CU_ASSERT_FALSE(hd_webhooks_wanted(wh, app, "client_event", "c"));
    CU_ASSERT_TRUE(hd_webhooks_wanted(wh, app, "member_added", "nothing-x"));

    hd_webhooks_channel_occupied(wh, app, "c");
    hd_webhooks_member_added(wh, app, "c", "u1");
    CU_ASSERT_TRUE_FATAL(wait_received(1));
    check_request(0, "{\"name\":\"channel_occupied\",\"channel\":\"c\"},"
                     "{\"name\":\"member_added\",\"channel\":\"c\",\"user_id\":\"u1\"}");

    /* leave and come back inside the delay: nothing */
    hd_webhooks_member_removed(wh, app, "c", "u1");
    hd_webhooks_channel_vacated(wh, app, "c");
    hd_webhooks_channel_occupied(wh, app, "c");
    hd_webhooks_member_added(wh, app, "c", "u1");
    usleep(400 * 1000);
    CU_ASSERT_EQUAL(received(), 1);

    /* leave for good: both after the delay, member first */
    uint64_t t0 = hd_mono_ms();
    hd_webhooks_member_removed(wh, app, "c", "u1");
    hd_webhooks_channel_vacated(wh, app, "c");
    CU_ASSERT_TRUE_FATAL(wait_received(2));
    CU_ASSERT_TRUE(hd_mono_ms() - t0 >= 150);
    check_request(1, "{\"name\":\"member_removed\",\"channel\":\"c\",\"user_id\":\"u1\"},"
                     "{\"name\":\"channel_vacated\",\"channel\":\"c\"}");

    /* the probe finds the channel occupied (its occupied report is late):
     * held back until the probe says empty */
    hd_webhooks_channel_occupied(wh, app, "d");
    CU_ASSERT_TRUE_FATAL(wait_received(3));
    atomic_store(&probe_occupied, true);
    unsigned calls = atomic_load(&probe_calls);
    hd_webhooks_channel_vacated(wh, app, "d");
    usleep(500 * 1000);
    CU_ASSERT_EQUAL(received(), 3);
    CU_ASSERT_TRUE(atomic_load(&probe_calls) >= calls + 3); /* looked again and again */
    atomic_store(&probe_occupied, false);
    CU_ASSERT_TRUE_FATAL(wait_received(4));
    check_request(3, "{\"name\":\"channel_vacated\",\"channel\":\"d\"}");

    char want[256];
    snprintf(want, sizeof want, "herald_webhook_events_sent_total{app=\"app-id\",url=\"http://127.0.0.1:%u/hook\"} 6\n",
             R.port);
    CU_ASSERT_TRUE(wait_metric(wh, want));
    CU_ASSERT_TRUE(wait_metric(wh, "herald_webhook_delivery_latency_seconds_count 6\n"));
    CU_ASSERT_TRUE(wait_metric(wh, "herald_webhook_delayed_cancelled_total{by=\"rejoin\"} 2\n"));
    CU_ASSERT_TRUE(wait_metric(wh, "herald_webhook_delayed_pending 0\n"));
    CU_ASSERT_TRUE(wait_metric(wh, "herald_webhook_endpoints 2\n"));
    CU_ASSERT_TRUE(wait_metric(wh, "herald_webhook_requests_in_flight 0\n"));
    hd_webhooks_destroy(wh);
    hd_config_free(&cfg);
    receiver_stop();
}

static void test_pool_retry_and_flush(void)
{
    static const int plan[] = {500, 503};
    receiver_start(plan, 2);
    hd_config cfg;
    CU_ASSERT_EQUAL_FATAL(load_cfg(&cfg, R.port, "\"client_event\",\"channel_occupied\",\"channel_vacated\"",
                                   "\"vacate_delay_ms\":60000"), 0);
    hd_webhooks *wh = hd_webhooks_create(&cfg, &stub_probe, cfg.n_apps);
    CU_ASSERT_PTR_NOT_NULL_FATAL(wh);
    const unsigned app = 0;
    hd_webhooks_client_event(wh, app, "private-c", "client-x", "{\"k\":1}", "1.2", NULL);
    CU_ASSERT_TRUE_FATAL(wait_received(3));
    const char *ev = "{\"name\":\"client_event\",\"channel\":\"private-c\",\"event\":\"client-x\","
                     "\"data\":{\"k\":1},\"socket_id\":\"1.2\"}";
    for (unsigned i = 0; i < 3; i++)
        check_request(i, ev);
    CU_ASSERT_EQUAL(R.status[2], 200);

    /* a vacate held back for a minute goes out at destroy */
    atomic_store(&probe_occupied, false);
    hd_webhooks_channel_occupied(wh, app, "e");
    CU_ASSERT_TRUE_FATAL(wait_received(4));
    hd_webhooks_channel_vacated(wh, app, "e");
    usleep(100 * 1000);
    CU_ASSERT_EQUAL(received(), 4);
    char want[256];
    snprintf(want, sizeof want, "herald_webhook_retried_total{app=\"app-id\",url=\"http://127.0.0.1:%u/hook\"} 2\n",
             R.port);
    CU_ASSERT_TRUE(wait_metric(wh, want));
    CU_ASSERT_TRUE(wait_metric(wh, "herald_webhook_delayed_pending 1\n"));
    uint64_t t0 = hd_mono_ms();
    hd_webhooks_destroy(wh);
    CU_ASSERT_TRUE(hd_mono_ms() - t0 < WAIT_MS);
    CU_ASSERT_EQUAL(received(), 5);
    check_request(4, "{\"name\":\"channel_vacated\",\"channel\":\"e\"}");
    hd_config_free(&cfg);
    receiver_stop();
}

static void test_pool_unreachable(void)
{
    int fd;
    uint16_t port = listen_any(&fd);
    close(fd); /* nobody listens there now */
    hd_config cfg;
    CU_ASSERT_EQUAL_FATAL(load_cfg(&cfg, port, "\"cache_miss\"", "\"retry_max_seconds\":0"), 0);
    cfg.shutdown_grace_period = 0;
    hd_webhooks *wh = hd_webhooks_create(&cfg, NULL, cfg.n_apps);
    CU_ASSERT_PTR_NOT_NULL_FATAL(wh);
    hd_webhooks_cache_miss(wh, 0, "cache-x");
    char want[256];
    snprintf(want, sizeof want,
             "herald_webhook_dropped_total{app=\"app-id\",url=\"http://127.0.0.1:%u/hook\","
             "reason=\"retry_expired\"} 1\n",
             port);
    CU_ASSERT_TRUE(wait_metric(wh, want));
    hd_webhooks_destroy(wh);
    hd_config_free(&cfg);
}

/* A reload may start tracking a channel that is already occupied: its
 * vacated arrives with no occupied before it. Nothing is sent for it, and
 * once it is older than orphan_ms the channel's next occupied is sent. An
 * out-of-order pair inside the window still cancels out. */
static void test_pool_orphan(void)
{
    receiver_start(NULL, 0);
    hd_config cfg;
    CU_ASSERT_EQUAL_FATAL(load_cfg(&cfg, R.port, "\"channel_occupied\",\"channel_vacated\"", "\"vacate_delay_ms\":50"),
                          0);
    atomic_store(&probe_occupied, false);
    hd_webhooks *wh = hd_webhooks_create(&cfg, &stub_probe, cfg.n_apps);
    CU_ASSERT_PTR_NOT_NULL_FATAL(wh);
    wh->orphan_ms = 100; /* before any report */
    hd_webhooks_channel_vacated(wh, 0, "o"); /* occupied before anyone tracked it */
    hd_webhooks_channel_vacated(wh, 0, "p"); /* out of order: its occupied follows at once */
    hd_webhooks_channel_occupied(wh, 0, "p");
    usleep(250 * 1000);
    CU_ASSERT_EQUAL(received(), 0);
    hd_webhooks_channel_occupied(wh, 0, "o");
    CU_ASSERT_TRUE_FATAL(wait_received(1));
    check_request(0, "{\"name\":\"channel_occupied\",\"channel\":\"o\"}");
    hd_webhooks_channel_vacated(wh, 0, "o");
    CU_ASSERT_TRUE_FATAL(wait_received(2));
    check_request(1, "{\"name\":\"channel_vacated\",\"channel\":\"o\"}");
    hd_webhooks_channel_occupied(wh, 0, "p"); /* p's state was balanced: a plain occupied */
    CU_ASSERT_TRUE_FATAL(wait_received(3));
    check_request(2, "{\"name\":\"channel_occupied\",\"channel\":\"p\"}");
    hd_webhooks_channel_vacated(wh, 0, "p");
    hd_webhooks_destroy(wh);
    CU_ASSERT_EQUAL(received(), 4);
    hd_config_free(&cfg);
    receiver_stop();
}

/* ---- many threads crossing boundaries at once ---- */

#define N_FAKE 6
#define N_THREADS 4
#define ROUNDS 300

typedef struct fake_chan {
    pthread_mutex_t lock;
    int count; /* {lock} */
} fake_chan;

static fake_chan FC[N_FAKE];
static hd_webhooks *race_wh;
static const unsigned race_app = 0;

static bool fake_occupied(void *ctx, unsigned app, const char *channel)
{
    (void)ctx, (void)app;
    fake_chan *c = &FC[channel[1] - '0'];
    pthread_mutex_lock(&c->lock);
    bool occ = c->count > 0;
    pthread_mutex_unlock(&c->lock);
    return occ;
}

/* Like the server: the boundary is decided under the channel lock and
 * reported after it, so reports of one channel can arrive out of order. */
static void fake_cross(unsigned i, int delta)
{
    char name[4] = {'f', (char)('0' + i), 0, 0};
    pthread_mutex_lock(&FC[i].lock);
    FC[i].count += delta;
    bool crossed = delta > 0 ? FC[i].count == 1 : FC[i].count == 0;
    pthread_mutex_unlock(&FC[i].lock);
    if (crossed && delta > 0)
        hd_webhooks_channel_occupied(race_wh, race_app, name);
    else if (crossed)
        hd_webhooks_channel_vacated(race_wh, race_app, name);
}

static void *race_main(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    for (int r = 0; r < ROUNDS; r++) {
        unsigned i = (unsigned)rand_r(&seed) % N_FAKE;
        fake_cross(i, +1);
        usleep((unsigned)rand_r(&seed) % 300);
        fake_cross(i, -1);
        if (rand_r(&seed) % 4 == 0)
            usleep(2000);
    }
    return NULL;
}

/* Walk every received event in order; per fake channel the names must
 * alternate occupied/vacated starting with occupied, and end vacated. */
static void check_alternation(void)
{
    int state[N_FAKE] = {0}, seen[N_FAKE] = {0};
    bool ok = true;
    pthread_mutex_lock(&R.lock);
    for (unsigned q = 0; q < R.n; q++) {
        for (const char *p = R.bodies[q]; (p = strstr(p, "{\"name\":\"")) != NULL; p++) {
            bool up = strncmp(p + 9, "channel_occupied", 16) == 0;
            const char *ch = strstr(p, "\"channel\":\"f");
            unsigned i = ch ? (unsigned)(ch[12] - '0') : N_FAKE;
            if (i >= N_FAKE)
                continue;
            ok = ok && state[i] == (up ? 0 : 1);
            state[i] = up;
            seen[i]++;
        }
    }
    pthread_mutex_unlock(&R.lock);
    CU_ASSERT_TRUE(ok);
    for (unsigned i = 0; i < N_FAKE; i++) {
        CU_ASSERT_EQUAL(state[i], 0);
        CU_ASSERT_TRUE(seen[i] >= 2);
    }
}

static void test_pool_race(void)
{
    receiver_start(NULL, 0);
    hd_config cfg;
    CU_ASSERT_EQUAL_FATAL(load_cfg(&cfg, R.port, "\"channel_occupied\",\"channel_vacated\"",
                                   "\"vacate_delay_ms\":2,\"sender_threads\":2"), 0);
    for (unsigned i = 0; i < N_FAKE; i++) {
        pthread_mutex_init(&FC[i].lock, NULL);
        FC[i].count = 0;
    }
    hd_webhooks_probe probe = {NULL, fake_occupied, NULL};
    race_wh = hd_webhooks_create(&cfg, &probe, cfg.n_apps);
    CU_ASSERT_PTR_NOT_NULL_FATAL(race_wh);
    pthread_t t[N_THREADS];
    for (uintptr_t i = 0; i < N_THREADS; i++)
        pthread_create(&t[i], NULL, race_main, (void *)(i + 1));
    for (unsigned i = 0; i < N_THREADS; i++)
        pthread_join(t[i], NULL);
    hd_webhooks_destroy(race_wh); /* flushes the vacates still held back */
    check_alternation();
    for (unsigned i = 0; i < N_FAKE; i++)
        pthread_mutex_destroy(&FC[i].lock);
    hd_config_free(&cfg);
    receiver_stop();
}

static void test_pool_none(void)
{
    hd_config cfg;
    hd_config_defaults(&cfg);
    /* no webhook configured: a dormant pool (no thread, no libcurl) that
     * ignores reports and exposes no metrics */
    hd_webhooks *wh = hd_webhooks_create(&cfg, &stub_probe, 4);
    CU_ASSERT_PTR_NOT_NULL_FATAL(wh);
    hd_webhooks_channel_occupied(wh, 0, "c");
    hd_webhooks_channel_occupied(wh, 9, "c"); /* out of range: ignored */
    CU_ASSERT_FALSE(hd_webhooks_wanted(wh, 0, "channel_occupied", "c"));
    hd_webhooks_channel_occupied(NULL, 0, "c"); /* NULL pool: ignored */
    CU_ASSERT_FALSE(hd_webhooks_wanted(NULL, 0, "channel_occupied", "c"));
    hd_buf m;
    hd_buf_init(&m);
    hd_webhooks_metrics(NULL, &m);
    hd_webhooks_metrics(wh, &m);
    CU_ASSERT_EQUAL(m.len, 0);
    hd_buf_deinit(&m);
    hd_webhooks_destroy(wh);
    hd_webhooks_destroy(NULL);
    hd_config_free(&cfg);
}

/* Request i went to path, signed with secret, with X-Pusher-Key key. */
static void check_signed(unsigned i, const char *path, const char *secret, const char *key)
{
    pthread_mutex_lock(&R.lock);
    const char *head = R.heads[i], *body = R.bodies[i];
    char sig[65], line[128];
    hd_hmac_sha256_hex(secret, strlen(secret), body, strlen(body), sig);
    snprintf(line, sizeof line, "\r\nX-Pusher-Signature: %s\r\n", sig);
    CU_ASSERT_PTR_NOT_NULL(strstr(head, line));
    snprintf(line, sizeof line, "\r\nX-Pusher-Key: %s\r\n", key);
    CU_ASSERT_PTR_NOT_NULL(strstr(head, line));
    snprintf(line, sizeof line, "POST %s HTTP/1.1\r\n", path);
    CU_ASSERT_EQUAL(strncmp(head, line, strlen(line)), 0);
    pthread_mutex_unlock(&R.lock);
}

/* The reload's config: app-id with a new key and secret on the same URL,
 * and a second app with its own URL. */
static int load_reloaded(hd_config *cfg, uint16_t port)
{
    char json[1024], err[256];
    int n = snprintf(json, sizeof json,
                     "{\"shutdown_grace_period\":5,\"webhooks\":{\"batching\":{\"enabled\":false}},"
                     "\"app_manager\":{\"array\":{\"apps\":["
                     "{\"id\":\"app-id\",\"key\":\"key-b\",\"secret\":\"secret-b\",\"webhooks\":[{\"url\":"
                     "\"http://127.0.0.1:%u/hook\",\"event_types\":[\"cache_miss\"]}]},"
                     "{\"id\":\"app-2\",\"key\":\"key-2\",\"secret\":\"secret-2\",\"webhooks\":[{\"url\":"
                     "\"http://127.0.0.1:%u/hook2\",\"event_types\":[\"cache_miss\"]}]}]}}}",
                     port, port);
    int rc = hd_config_load_json(cfg, json, (size_t)n, NULL, err, sizeof err);
    if (rc)
        fprintf(stderr, "\nconfig: %s\n", err);
    return rc;
}

/* Reloads (hd_webhooks_app_set): a dormant pool starts with its first
 * endpoint; an endpoint keeps its identity (URL) and counters while the
 * key and secret it sends with change; a slot filled later works at once. */
static void test_pool_reload(void)
{
    receiver_start(NULL, 0);
    hd_config none, a, b;
    hd_config_defaults(&none);
    CU_ASSERT_EQUAL_FATAL(load_cfg(&a, R.port, "\"cache_miss\"", NULL), 0);
    CU_ASSERT_EQUAL_FATAL(load_reloaded(&b, R.port), 0);
    hd_webhooks *wh = hd_webhooks_create(&none, NULL, 2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(wh);

    hd_webhooks_app_set(wh, 0, &a.apps[0]);
    CU_ASSERT_TRUE(hd_webhooks_wanted(wh, 0, "cache_miss", "cache-1"));
    hd_webhooks_cache_miss(wh, 0, "cache-1");
    CU_ASSERT_TRUE_FATAL(wait_received(1));
    check_request(0, "{\"name\":\"cache_miss\",\"channel\":\"cache-1\"}");

    hd_webhooks_app_set(wh, 0, &b.apps[0]);
    hd_webhooks_cache_miss(wh, 0, "cache-2");
    CU_ASSERT_TRUE_FATAL(wait_received(2));
    check_signed(1, "/hook", "secret-b", "key-b");

    CU_ASSERT_FALSE(hd_webhooks_wanted(wh, 1, "cache_miss", "cache-3"));
    hd_webhooks_app_set(wh, 1, &b.apps[1]);
    hd_webhooks_cache_miss(wh, 1, "cache-3");
    CU_ASSERT_TRUE_FATAL(wait_received(3));
    check_signed(2, "/hook2", "secret-2", "key-2");

    char want[256];
    snprintf(want, sizeof want, "herald_webhook_events_sent_total{app=\"app-id\",url=\"http://127.0.0.1:%u/hook\"} 2\n",
             R.port);
    CU_ASSERT_TRUE(wait_metric(wh, want)); /* one series across the reload */
    CU_ASSERT_TRUE(wait_metric(wh, "herald_webhook_endpoints 2\n"));
    hd_webhooks_destroy(wh);
    hd_config_free(&none);
    hd_config_free(&a);
    hd_config_free(&b);
    receiver_stop();
}

void hd_test_suite_webhooks(void)
{
    CU_pSuite s = CU_add_suite("webhooks", NULL, NULL);
    CU_add_test(s, "§0 webhook vector: body and signature", test_vector);
    CU_add_test(s, "event shapes (§10)", test_event_shapes);
    CU_add_test(s, "endpoint filters", test_filters);
    CU_add_test(s, "alternation: scripted", test_flip_script);
    CU_add_test(s, "alternation: reports out of order, random timers", test_flip_model);
    CU_add_test(s, "backoff schedule", test_backoff);
    CU_add_test(s, "breaker transitions", test_breaker);
    CU_add_test(s, "outcome classification", test_classify);
    CU_add_test(s, "queue overflow policy", test_queue_overflow);
    CU_add_test(s, "pool: occupancy, delay, probe, metrics", test_pool_occupancy);
    CU_add_test(s, "pool: retries, shutdown flush", test_pool_retry_and_flush);
    CU_add_test(s, "pool: unreachable endpoint, no retries", test_pool_unreachable);
    CU_add_test(s, "pool: orphan vacated (tracking began while occupied)", test_pool_orphan);
    CU_add_test(s, "pool: threads racing reports: alternation holds", test_pool_race);
    CU_add_test(s, "pool: none configured", test_pool_none);
    CU_add_test(s, "pool: reloads keep endpoints, change keys, add apps", test_pool_reload);
}
