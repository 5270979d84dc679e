/* http_test.c - CUnit suite "http": the request-head parser (http_parse.c)
 * and the HTTP API's per-app request bucket (http_limits.c: burst, refill,
 * refusals that take nothing, Retry-After rounding, the 429 reply, many
 * threads starting on the same zeroed bucket), and the route table of
 * http_api.c through its public entry points (hd_http_api_handle,
 * hd_http_api_admit) on a socket-less server (test_world.h): which method
 * and path reach which handler, the 404 / 405 bodies, the refusals of
 * authentication, app lookup and a disabled app, the head-then-body
 * admission. A handler is identified by what only it does (a publish
 * reaching a subscriber, a channel list, a terminated connection).
 *
 * THREADING: the runner is single-threaded; the concurrency tests start
 * their own threads and join them before asserting.
 */
#include <CUnit/CUnit.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/common.h"
#include "http/http_api.h"
#include "http/http_internal.h"
#include "test_world.h"

static const hd_http_head_limits lim = {16384, 8192, 100};

static int parse(const char *text, hd_http_head *h)
{
    return hd_http_parse_head(text, strlen(text), &lim, h);
}

static void test_complete_get(void)
{
    hd_http_head h;
    const char *t = "GET /apps/1/channels?a=b HTTP/1.1\r\nHost: x\r\n\r\nGET /next";
    int n = parse(t, &h);
    CU_ASSERT_EQUAL(n, (int)(strstr(t, "GET /next") - t));
    CU_ASSERT_STRING_EQUAL(h.method, "GET");
    CU_ASSERT_EQUAL(h.target_len, strlen("/apps/1/channels?a=b"));
    CU_ASSERT_EQUAL(memcmp(t + h.target_off, "/apps/1/channels?a=b", h.target_len), 0);
    CU_ASSERT_EQUAL(h.content_length, -1);
    CU_ASSERT_TRUE(h.keep_alive);
    CU_ASSERT_FALSE(h.upgrade_websocket);
}

static void test_incomplete_needs_more(void)
{
    hd_http_head h;
    const char *t = "POST /apps/1/events HTTP/1.1\r\nContent-Length: 10\r\n\r\n";
    for (size_t cut = 0; cut < strlen(t); cut++)
        CU_ASSERT_EQUAL(hd_http_parse_head(t, cut, &lim, &h), 0);
    CU_ASSERT_EQUAL(parse(t, &h), (int)strlen(t));
    CU_ASSERT_EQUAL(h.content_length, 10);
}

static void test_bare_lf_and_leading_blank_lines(void)
{
    hd_http_head h;
    const char *t = "\r\n\nGET /up HTTP/1.0\nConnection: keep-alive\n\n";
    CU_ASSERT_EQUAL(parse(t, &h), (int)strlen(t));
    CU_ASSERT_EQUAL(memcmp(t + h.target_off, "/up", 3), 0);
    CU_ASSERT_TRUE(h.keep_alive); /* HTTP/1.0 with keep-alive asked for */
    CU_ASSERT_EQUAL(parse("GET /up HTTP/1.0\r\n\r\n", &h), 20);
    CU_ASSERT_FALSE(h.keep_alive);
    CU_ASSERT_TRUE(parse("GET /up HTTP/1.1\r\nConnection: Close\r\n\r\n", &h) > 0);
    CU_ASSERT_FALSE(h.keep_alive);
}

static void test_websocket_upgrade(void)
{
    hd_http_head h;
    CU_ASSERT_TRUE(parse("GET /app/k HTTP/1.1\r\nConnection: keep-alive, Upgrade\r\nUpgrade: WebSocket\r\n\r\n", &h) > 0);
    CU_ASSERT_TRUE(h.upgrade_websocket);
    CU_ASSERT_TRUE(h.conn_upgrade);
}

static void test_content_length_rules(void)
{
    hd_http_head h;
    CU_ASSERT_EQUAL(parse("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", &h), -400);
    CU_ASSERT_EQUAL(parse("POST / HTTP/1.1\r\nContent-Length: 1e3\r\n\r\n", &h), -400);
    CU_ASSERT_EQUAL(parse("POST / HTTP/1.1\r\nContent-Length: \r\n\r\n", &h), -400);
    CU_ASSERT_EQUAL(parse("POST / HTTP/1.1\r\nContent-Length: 9999999999999999999999\r\n\r\n", &h), -400);
    CU_ASSERT_EQUAL(parse("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", &h), -400);
    CU_ASSERT_TRUE(parse("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", &h) > 0);
    CU_ASSERT_EQUAL(h.content_length, 5);
    CU_ASSERT_TRUE(parse("POST / HTTP/1.1\r\ncontent-length:  7 \r\n\r\n", &h) > 0);
    CU_ASSERT_EQUAL(h.content_length, 7);
}

static void test_transfer_encoding(void)
{
    hd_http_head h;
    CU_ASSERT_EQUAL(parse("POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n", &h), -411);
    CU_ASSERT_EQUAL(parse("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, CHUNKED\r\n\r\n", &h), -411);
    CU_ASSERT_EQUAL(parse("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", &h), -501);
    CU_ASSERT_EQUAL(parse("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", &h), -400);
}

static void test_malformed(void)
{
    hd_http_head h;
    CU_ASSERT_EQUAL(parse("GET /up\r\n\r\n", &h), -400);                     /* no version */
    CU_ASSERT_EQUAL(parse("GET /up HTTP/1.1\rX: y\r\n\r\n", &h), -400);      /* bare CR */
    CU_ASSERT_EQUAL(parse("GET /up HTTP/1.1\r\nX: y\r\n z\r\n\r\n", &h), -400); /* folding */
    CU_ASSERT_EQUAL(parse("GET /up HTTP/1.1\r\nNo colon\r\n\r\n", &h), -400);
    CU_ASSERT_EQUAL(parse("GET /up HTTP/1.1\r\n: v\r\n\r\n", &h), -400);
    CU_ASSERT_EQUAL(parse("GET /up HTTP/1.1\r\nX: a\x01b\r\n\r\n", &h), -400);
    CU_ASSERT_EQUAL(parse("G\xc3T /up HTTP/1.1\r\n\r\n", &h), -400);
    CU_ASSERT_EQUAL(parse("LONGMETHOD /up HTTP/1.1\r\n\r\n", &h), -400);
    CU_ASSERT_EQUAL(parse("PRI * HTTP/2.0\r\n\r\n", &h), -505);
    CU_ASSERT_EQUAL(parse("GET /up HTTP/1.2\r\n\r\n", &h), -505);
    CU_ASSERT_EQUAL(parse("GET /up  HTTP/1.1\r\n\r\n", &h), -400);
}

static void test_limits(void)
{
    hd_http_head h;
    char big[20000];
    memcpy(big, "GET /", 5);
    memset(big + 5, 'a', 9000);
    memcpy(big + 9005, " HTTP/1.1\r\n\r\n", 14);
    CU_ASSERT_EQUAL(parse(big, &h), -414);
    CU_ASSERT_EQUAL(hd_http_parse_head(big, 8500, &lim, &h), -414); /* known before the line ends */
    memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
    memset(big + 19, 'b', 17000);
    big[17019] = '\0';
    CU_ASSERT_EQUAL(parse(big, &h), -431); /* never ends, already too big */
    char many[4000] = "GET / HTTP/1.1\r\n";
    for (int i = 0; i < 101; i++)
        strcat(many, "A: b\r\n");
    strcat(many, "\r\n");
    CU_ASSERT_EQUAL(parse(many, &h), -431);
}

/* ---- the per-app request bucket (http_limits.c) ---- */

#define MS 1000000ull
#define SEC 1000000000ull
#define T0 (1000 * SEC) /* any monotonic instant */

static void test_unlimited(void)
{
    _Atomic uint64_t tat = 0;
    for (int i = 0; i < 1000; i++)
        CU_ASSERT_EQUAL(hd_http__bucket_take(&tat, 0, 0, T0), 0);
    CU_ASSERT_EQUAL(atomic_load(&tat), 0); /* unlimited apps never touch the word */
}

static void test_burst_then_refuse(void)
{
    _Atomic uint64_t tat = 0; /* zeroed = full */
    for (int i = 0; i < 5; i++)
        CU_ASSERT_EQUAL(hd_http__bucket_take(&tat, 5, 5, T0), 0);
    /* the sixth waits exactly one interval (1/5 s) */
    CU_ASSERT_EQUAL(hd_http__bucket_take(&tat, 5, 5, T0), 200 * MS);
    CU_ASSERT_EQUAL(hd_http__bucket_take(&tat, 5, 5, T0 + 150 * MS), 50 * MS);
}

static void test_refill(void)
{
    _Atomic uint64_t tat = 0;
    for (int i = 0; i < 5; i++)
        CU_ASSERT_EQUAL(hd_http__bucket_take(&tat, 5, 5, T0), 0);
    CU_ASSERT_NOT_EQUAL(hd_http__bucket_take(&tat, 5, 5, T0 + 199 * MS), 0);
    CU_ASSERT_EQUAL(hd_http__bucket_take(&tat, 5, 5, T0 + 200 * MS), 0); /* one token back */
    CU_ASSERT_NOT_EQUAL(hd_http__bucket_take(&tat, 5, 5, T0 + 200 * MS), 0);
    /* a long idle period refills to the burst, never beyond it */
    uint64_t later = T0 + 60 * SEC;
    for (int i = 0; i < 5; i++)
        CU_ASSERT_EQUAL(hd_http__bucket_take(&tat, 5, 5, later), 0);
    CU_ASSERT_NOT_EQUAL(hd_http__bucket_take(&tat, 5, 5, later), 0);
}

static void test_refusals_take_nothing(void)
{
    _Atomic uint64_t tat = 0;
    CU_ASSERT_EQUAL(hd_http__bucket_take(&tat, 1, 1, T0), 0);
    for (int i = 0; i < 100; i++) /* hammering while empty does not delay recovery */
        CU_ASSERT_EQUAL(hd_http__bucket_take(&tat, 1, 1, T0 + (uint64_t)i * MS), SEC - (uint64_t)i * MS);
    CU_ASSERT_EQUAL(hd_http__bucket_take(&tat, 1, 1, T0 + SEC), 0);
}

static void test_steady_pace_at_the_limit(void)
{
    /* a client pacing itself at exactly the rate is never refused */
    _Atomic uint64_t tat = 0;
    unsigned refused = 0;
    for (uint64_t i = 0; i < 1000; i++)
        refused += hd_http__bucket_take(&tat, 100, 100, T0 + i * 10 * MS) != 0;
    CU_ASSERT_EQUAL(refused, 0);
}

static void test_retry_after_rounding(void)
{
    CU_ASSERT_EQUAL(hd_http__retry_after_s(0), 1);
    CU_ASSERT_EQUAL(hd_http__retry_after_s(1), 1);
    CU_ASSERT_EQUAL(hd_http__retry_after_s(SEC), 1);
    CU_ASSERT_EQUAL(hd_http__retry_after_s(SEC + 1), 2);
    CU_ASSERT_EQUAL(hd_http__retry_after_s(2500 * MS), 3);
}

/* ---- many threads on one zeroed bucket ---- */

typedef struct race {
    _Atomic uint64_t *tat;
    uint32_t rate;
    uint64_t now;  /* 0: take the instant from clock below */
    _Atomic uint64_t *clock;
    unsigned tries;
    unsigned admitted;
} race;

static void *race_thread(void *arg)
{
    race *r = arg;
    for (unsigned i = 0; i < r->tries; i++) {
        uint64_t now = r->now ? r->now : atomic_fetch_add(r->clock, 100 * 1000); /* 0.1 ms per attempt */
        r->admitted += hd_http__bucket_take(r->tat, r->rate, r->rate, now) == 0;
    }
    return NULL;
}

#define RACERS 8

static unsigned race_run(race *proto)
{
    pthread_t th[RACERS];
    race rs[RACERS];
    for (int i = 0; i < RACERS; i++) {
        rs[i] = *proto;
        CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, race_thread, &rs[i]), 0);
    }
    unsigned total = 0;
    for (int i = 0; i < RACERS; i++) {
        pthread_join(th[i], NULL);
        total += rs[i].admitted;
    }
    return total;
}

static void test_concurrent_first_use(void)
{
    /* no initialisation step to race on: threads that all find the bucket
     * zeroed share exactly its burst */
    _Atomic uint64_t *tat = hd_calloc(1, sizeof *tat);
    race r = {.tat = tat, .rate = 1000, .now = T0, .tries = 5000};
    CU_ASSERT_EQUAL(race_run(&r), 1000);
    hd_free((void *)tat);
}

static void test_concurrent_with_time(void)
{
    /* RACERS x tries attempts spread over a known span of (simulated) time:
     * at least the burst, at most the burst plus what the span refills */
    _Atomic uint64_t tat = 0;
    _Atomic uint64_t clock = T0;
    race r = {.tat = &tat, .rate = 1000, .clock = &clock, .tries = 20000};
    unsigned total = race_run(&r);
    uint64_t span_ms = (atomic_load(&clock) - T0) / MS; /* 16 s simulated */
    CU_ASSERT_TRUE(total >= 1000);
    CU_ASSERT_TRUE(total <= 1000 + span_ms + 1);
}

/* ---- the 429 reply ---- */

static void test_rate_admit_reply(void)
{
    hd_app_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.max_http_requests_per_second = 1; /* one per second: the second call within it is refused */
    hd_app app, other;
    memset(&app, 0, sizeof app);
    memset(&other, 0, sizeof other);
    app.cfg = other.cfg = &cfg;
    hd_http_response res;
    memset(&res, 0, sizeof res);
    hd_buf_init(&res.body);
    hd_http_ctx c = {.app = &app, .cfg = &cfg, .res = &res};
    CU_ASSERT_TRUE(hd_http__rate_admit(&c));
    CU_ASSERT_FALSE(hd_http__rate_admit(&c));
    CU_ASSERT_EQUAL(res.status, 429);
    CU_ASSERT_EQUAL(res.retry_after_s, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(res.body.data, "{\"error\":\"Too many requests"));
    hd_http__reply(&res, 200, "{}"); /* a later reply on the same response drops the header */
    CU_ASSERT_EQUAL(res.retry_after_s, 0);
    hd_http_ctx c2 = {.app = &other, .cfg = &cfg, .res = &res}; /* another app has its own bucket */
    CU_ASSERT_TRUE(hd_http__rate_admit(&c2));
    cfg.max_http_requests_per_second = 0;
    CU_ASSERT_TRUE(hd_http__rate_admit(&c)); /* 0 = unlimited */
    hd_buf_deinit(&res.body);
}

/* ---- routing (http_api.c) on a socket-less server ---- */

typedef struct api_call {
    hd_params params;
    hd_http_response res;
} api_call;

/* params of a request signed as the app's server library would (§9.1):
 * auth_timestamp at now + skew_s, body_md5 when there is a body. */
static void sign_params(hd_params *p, const char *method, const char *path, const char *body, const char *key,
                        const char *secret, long skew_s)
{
    char ts[24], md5[33], hex[65];
    snprintf(ts, sizeof ts, "%lld", (long long)time(NULL) + skew_s);
    hd_params_add(p, "auth_key", 8, key, strlen(key));
    hd_params_add(p, "auth_timestamp", 14, ts, strlen(ts));
    hd_params_add(p, "auth_version", 12, "1.0", 3);
    if (body && *body) {
        hd_md5_hex(body, strlen(body), md5);
        hd_params_add(p, "body_md5", 8, md5, 32);
    }
    size_t n = hd_http_string_to_sign(method, path, p, NULL, 0);
    char *str = hd_malloc(n + 1);
    hd_http_string_to_sign(method, path, p, str, n + 1);
    hd_hmac_sha256_hex(secret, strlen(secret), str, n, hex);
    hd_free(str);
    hd_params_add(p, "auth_signature", 14, hex, 64);
}

/* method path [body], signed with app-key / app-secret when sign is true. */
static const hd_http_response *call(hd_tw *w, api_call *c, const char *method, const char *path, const char *body,
                                    bool sign)
{
    hd_params_init(&c->params);
    memset(&c->res, 0, sizeof c->res);
    hd_buf_init(&c->res.body);
    if (sign)
        sign_params(&c->params, method, path, body, "app-key", "app-secret", 0);
    hd_http_request req = {.method = method, .path = path, .params = &c->params, .body = body ? body : "",
                           .body_len = body ? strlen(body) : 0};
    hd_http_api_handle(w->srv, &req, &c->res);
    return &c->res;
}

static void call_done(api_call *c)
{
    hd_http_response_deinit(&c->res);
    hd_params_free(&c->params);
}

/* status and exact body of one unsigned request */
static void expect(hd_tw *w, const char *method, const char *path, int status, const char *body)
{
    api_call c;
    const hd_http_response *r = call(w, &c, method, path, NULL, false);
    CU_ASSERT_EQUAL(r->status, status);
    CU_ASSERT_STRING_EQUAL(r->body.data ? r->body.data : "", body);
    if (r->status != status || strcmp(r->body.data ? r->body.data : "", body))
        fprintf(stderr, "\n%s %s: %d %s\n", method, path, r->status, r->body.data ? r->body.data : "");
    call_done(&c);
}

static void test_route_health(void)
{
    hd_tw *w = hd_tw_new(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    expect(w, "GET", "/", 200, "{\"ok\":true}");
    expect(w, "GET", "/up", 200, "{\"ok\":true}");
    expect(w, "GET", "/up/app-id", 200, "{\"ok\":true}");
    expect(w, "GET", "/up/no-such-app", 404, "{\"error\":\"Unknown app\"}");
    expect(w, "GET", "/ready", 200, "{\"ok\":true}");
    hd_tw_free(w);
}

static void test_route_not_found_and_method(void)
{
    hd_tw *w = hd_tw_new(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    static const char nf[] = "{\"error\":\"Not found\"}", na[] = "{\"error\":\"Method not allowed\"}";
    expect(w, "GET", "/nope", 404, nf);
    expect(w, "GET", "/apps/app-id", 404, nf);
    expect(w, "GET", "/apps/app-id/events/x", 404, nf);
    expect(w, "GET", "/apps/app-id/channels/c/users/x", 404, nf); /* more segments than any route */
    expect(w, "GET", "/apps/app-id/Channels", 404, nf);           /* segments match exactly */
    expect(w, "GET", "up", 404, nf);                               /* not absolute */
    expect(w, "GET", "", 404, nf);
    /* the path matches a route, the method does not */
    expect(w, "POST", "/up", 405, na);
    expect(w, "POST", "/ready", 405, na);
    expect(w, "GET", "/apps/app-id/events", 405, na);
    expect(w, "GET", "/apps/app-id/batch_events", 405, na);
    expect(w, "POST", "/apps/app-id/channels", 405, na);
    expect(w, "DELETE", "/apps/app-id/channels/c", 405, na);
    expect(w, "GET", "/apps/app-id/users/u1/terminate_connections", 405, na);
    expect(w, "get", "/up", 405, na); /* methods are case-sensitive */
    hd_tw_free(w);
}

/* App lookup comes before authentication; authentication before the
 * handler; a disabled app is refused only once authenticated. */
static void test_route_auth_refusals(void)
{
    hd_tw *w = hd_tw_new(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    static const char body[] = "{\"name\":\"ev\",\"channel\":\"ch\",\"data\":\"x\"}";
    api_call c;
    const hd_http_response *r;
    expect(w, "POST", "/apps/no-such-app/events", 404, "{\"error\":\"Unknown app\"}");
    expect(w, "GET", "/apps/app-id/channels", 401, "{\"error\":\"Missing parameter: auth_key\"}");

    r = call(w, &c, "POST", "/apps/app-id/events", body, false);
    CU_ASSERT_EQUAL(r->status, 401);
    call_done(&c);

    /* signed with the wrong secret: the message shows the string to sign
     * (its newlines written as \n) */
    hd_params_init(&c.params);
    memset(&c.res, 0, sizeof c.res);
    sign_params(&c.params, "GET", "/apps/app-id/channels", NULL, "app-key", "not-the-secret", 0);
    hd_http_request req = {.method = "GET", .path = "/apps/app-id/channels", .params = &c.params, .body = ""};
    hd_http_api_handle(w->srv, &req, &c.res);
    CU_ASSERT_EQUAL(c.res.status, 401);
    CU_ASSERT_PTR_NOT_NULL(strstr(c.res.body.data, "{\"error\":\"Invalid signature: you should have sent "
                                                   "HmacSHA256Hex(\\\"GET\\\\n/apps/app-id/channels\\\\nauth_key=app-key&"));
    call_done(&c);

    hd_params_init(&c.params); /* another app's key */
    memset(&c.res, 0, sizeof c.res);
    sign_params(&c.params, "GET", "/apps/app-id/channels", NULL, "key-2", "secret-2", 0);
    hd_http_api_handle(w->srv, &req, &c.res);
    CU_ASSERT_EQUAL(c.res.status, 401);
    CU_ASSERT_STRING_EQUAL(c.res.body.data, "{\"error\":\"Unknown auth_key\"}");
    call_done(&c);

    hd_params_init(&c.params); /* signed 20 minutes ago */
    memset(&c.res, 0, sizeof c.res);
    sign_params(&c.params, "GET", "/apps/app-id/channels", NULL, "app-key", "app-secret", -1200);
    hd_http_api_handle(w->srv, &req, &c.res);
    CU_ASSERT_EQUAL(c.res.status, 401);
    CU_ASSERT_PTR_NOT_NULL(strstr(c.res.body.data, "Timestamp expired"));
    call_done(&c);

    hd_params_init(&c.params); /* the disabled app, correctly signed */
    memset(&c.res, 0, sizeof c.res);
    sign_params(&c.params, "GET", "/apps/app-off/channels", NULL, "key-off", "secret-off", 0);
    hd_http_request off = {.method = "GET", .path = "/apps/app-off/channels", .params = &c.params, .body = ""};
    hd_http_api_handle(w->srv, &off, &c.res);
    CU_ASSERT_EQUAL(c.res.status, 403);
    CU_ASSERT_STRING_EQUAL(c.res.body.data, "{\"error\":\"App is disabled\"}");
    call_done(&c);
    hd_tw_free(w);
}

/* Each /apps/ route reaches its own handler. */
static void test_route_dispatch(void)
{
    hd_tw *w = hd_tw_new(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    hd_session *sub = hd_tw_open(w, 0, NULL);
    hd_tw_send(w, 0, "{\"event\":\"pusher:subscribe\",\"data\":{\"channel\":\"ch\"}}");
    hd_tw_pump(w);
    hd_tw_drop(sub);
    api_call c;
    const hd_http_response *r;

    /* events: published to the channel */
    r = call(w, &c, "POST", "/apps/app-id/events", "{\"name\":\"ev\",\"channel\":\"ch\",\"data\":\"x\"}", true);
    CU_ASSERT_EQUAL(r->status, 200);
    CU_ASSERT_STRING_EQUAL(r->body.data, "{}");
    call_done(&c);
    hd_tw_pump(w);
    CU_ASSERT_STRING_EQUAL(hd_tw_last(sub), "{\"event\":\"ev\",\"channel\":\"ch\",\"data\":\"x\"}");

    /* batch_events: each item published */
    r = call(w, &c, "POST", "/apps/app-id/batch_events",
             "{\"batch\":[{\"name\":\"b1\",\"channel\":\"ch\",\"data\":\"1\"},{\"name\":\"b2\",\"channel\":\"ch\","
             "\"data\":\"2\"}]}",
             true);
    CU_ASSERT_EQUAL(r->status, 200);
    CU_ASSERT_STRING_EQUAL(r->body.data, "{}");
    call_done(&c);
    hd_tw_pump(w);
    CU_ASSERT_TRUE(hd_tw_has_frame(sub, "{\"event\":\"b1\",\"channel\":\"ch\",\"data\":\"1\"}"));
    CU_ASSERT_TRUE(hd_tw_has_frame(sub, "{\"event\":\"b2\",\"channel\":\"ch\",\"data\":\"2\"}"));
    /* the same body on events is a different request: batch is no field of an event */
    r = call(w, &c, "POST", "/apps/app-id/events", "{\"batch\":[]}", true);
    CU_ASSERT_EQUAL(r->status, 400);
    call_done(&c);

    /* channels: the list */
    r = call(w, &c, "GET", "/apps/app-id/channels", NULL, true);
    CU_ASSERT_EQUAL(r->status, 200);
    CU_ASSERT_STRING_EQUAL(r->body.data, "{\"channels\":{\"ch\":{}}}");
    call_done(&c);

    /* channel: one channel's state */
    r = call(w, &c, "GET", "/apps/app-id/channels/ch", NULL, true);
    CU_ASSERT_EQUAL(r->status, 200);
    CU_ASSERT_PTR_NOT_NULL(strstr(r->body.data, "\"occupied\":true"));
    CU_ASSERT_PTR_NULL(strstr(r->body.data, "\"channels\""));
    call_done(&c);

    /* channel users: presence only */
    r = call(w, &c, "GET", "/apps/app-id/channels/presence-none/users", NULL, true);
    CU_ASSERT_EQUAL(r->status, 200);
    CU_ASSERT_STRING_EQUAL(r->body.data, "{\"users\":[]}");
    call_done(&c);
    r = call(w, &c, "GET", "/apps/app-id/channels/ch/users", NULL, true);
    CU_ASSERT_EQUAL(r->status, 400);
    call_done(&c);

    /* terminate_connections: the user's sockets are closed with 4009 */
    hd_session *u = hd_tw_open(w, 1, NULL);
    const char *user_data = "{\"id\":\"u1\"}";
    char str[160], auth[200], msg[400];
    snprintf(str, sizeof str, "%s::user::%s", u->socket_id, user_data);
    hd_tw_sign("app-key", "app-secret", str, auth, sizeof auth);
    snprintf(msg, sizeof msg, "{\"event\":\"pusher:signin\",\"data\":{\"auth\":\"%s\",\"user_data\":"
             "\"{\\\"id\\\":\\\"u1\\\"}\"}}", auth);
    hd_tw_send(w, 1, msg);
    CU_ASSERT_STRING_EQUAL_FATAL(u->user_id ? u->user_id : "", "u1");
    r = call(w, &c, "POST", "/apps/app-id/users/u1/terminate_connections", NULL, true);
    CU_ASSERT_EQUAL(r->status, 200);
    CU_ASSERT_STRING_EQUAL(r->body.data, "{}");
    call_done(&c);
    hd_tw_pump(w);
    CU_ASSERT_TRUE(u->closing);
    CU_ASSERT_EQUAL(u->close_code, HD_CLOSE_UNAUTHORIZED);
    CU_ASSERT_FALSE(sub->closing);
    hd_tw_free(w);
}

/* A {channel} segment reaches its handler percent-decoded; the signature
 * covers the path as it was sent. */
static void test_route_decoded_segment(void)
{
    hd_tw *w = hd_tw_new(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    api_call c;
    const hd_http_response *r = call(w, &c, "GET", "/apps/app-id/channels/presence-a%2Cb/users", NULL, true);
    CU_ASSERT_EQUAL(r->status, 200); /* "presence-a,b": a valid presence name once decoded */
    call_done(&c);
    r = call(w, &c, "GET", "/apps/app-id/channels/presence-a%2/users", NULL, true); /* truncated escape */
    CU_ASSERT_EQUAL(r->status, 400);
    call_done(&c);
    hd_tw_free(w);
}

/* hd_http_api_admit decides from the head (route, app, signature over the
 * declared body_md5) before the body is read; the body's MD5 is checked by
 * hd_http_api_handle once it is in. */
static void test_admit_then_body(void)
{
    hd_tw *w = hd_tw_new(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    static const char body[] = "{\"name\":\"ev\",\"channel\":\"ch\",\"data\":\"x\"}";
    hd_params p;
    hd_params_init(&p);
    sign_params(&p, "POST", "/apps/app-id/events", body, "app-key", "app-secret", 0);
    hd_http_response res;
    memset(&res, 0, sizeof res);
    hd_buf_init(&res.body);
    hd_http_request req = {.method = "POST", .path = "/apps/app-id/events", .params = &p, .body = ""};
    CU_ASSERT_TRUE(hd_http_api_admit(w->srv, &req, sizeof body - 1, &res));
    /* the body that came is not the one signed */
    static const char other[] = "{\"name\":\"ev\",\"channel\":\"ch\",\"data\":\"y\"}";
    hd_http_request full = {.method = "POST", .path = "/apps/app-id/events", .params = &p, .body = other,
                            .body_len = sizeof other - 1, .head_admitted = true};
    hd_http_api_handle(w->srv, &full, &res);
    CU_ASSERT_EQUAL(res.status, 401);
    CU_ASSERT_PTR_NOT_NULL(strstr(res.body.data, "Invalid body_md5"));
    full.body = body;
    full.body_len = sizeof body - 1;
    hd_http_api_handle(w->srv, &full, &res);
    CU_ASSERT_EQUAL(res.status, 200);
    hd_params_free(&p);
    /* refused heads: no route, wrong method, unknown app, unsigned */
    hd_params_init(&p);
    hd_http_request bad = {.method = "POST", .path = "/apps/app-id/nothing", .params = &p, .body = ""};
    CU_ASSERT_FALSE(hd_http_api_admit(w->srv, &bad, 10, &res));
    CU_ASSERT_EQUAL(res.status, 404);
    bad.path = "/apps/app-id/channels";
    CU_ASSERT_FALSE(hd_http_api_admit(w->srv, &bad, 10, &res));
    CU_ASSERT_EQUAL(res.status, 405);
    bad.path = "/apps/nope/events";
    CU_ASSERT_FALSE(hd_http_api_admit(w->srv, &bad, 10, &res));
    CU_ASSERT_EQUAL(res.status, 404);
    CU_ASSERT_STRING_EQUAL(res.body.data, "{\"error\":\"Unknown app\"}");
    bad.path = "/apps/app-id/events";
    CU_ASSERT_FALSE(hd_http_api_admit(w->srv, &bad, 10, &res));
    CU_ASSERT_EQUAL(res.status, 401);
    hd_params_free(&p);
    hd_http_response_deinit(&res);
    hd_tw_free(w);
}

void hd_test_suite_http(void)
{
    CU_pSuite s = CU_add_suite("http", NULL, NULL);
    CU_add_test(s, "rate 0 is unlimited", test_unlimited);
    CU_add_test(s, "burst, then refuse with the wait", test_burst_then_refuse);
    CU_add_test(s, "refill over time, capped at the burst", test_refill);
    CU_add_test(s, "refusals take nothing", test_refusals_take_nothing);
    CU_add_test(s, "steady pace at the limit passes", test_steady_pace_at_the_limit);
    CU_add_test(s, "Retry-After rounding", test_retry_after_rounding);
    CU_add_test(s, "concurrent first use of a zeroed bucket", test_concurrent_first_use);
    CU_add_test(s, "concurrent takes while time advances", test_concurrent_with_time);
    CU_add_test(s, "429 reply and per-app buckets", test_rate_admit_reply);

    CU_add_test(s, "a complete GET head and what follows it", test_complete_get);
    CU_add_test(s, "every prefix of a head needs more", test_incomplete_needs_more);
    CU_add_test(s, "bare LF, leading blank lines, keep-alive rules", test_bare_lf_and_leading_blank_lines);
    CU_add_test(s, "WebSocket upgrade headers", test_websocket_upgrade);
    CU_add_test(s, "Content-Length strictness", test_content_length_rules);
    CU_add_test(s, "Transfer-Encoding: 411, 501, smuggling 400", test_transfer_encoding);
    CU_add_test(s, "malformed heads", test_malformed);
    CU_add_test(s, "414 and 431", test_limits);
    CU_add_test(s, "routes: health (/, /up, /up/{id}, /ready)", test_route_health);
    CU_add_test(s, "routes: 404 and 405 bodies", test_route_not_found_and_method);
    CU_add_test(s, "routes: unknown app, authentication, disabled app", test_route_auth_refusals);
    CU_add_test(s, "routes: each /apps/ route reaches its handler", test_route_dispatch);
    CU_add_test(s, "routes: {channel} percent-decoded for the handler", test_route_decoded_segment);
    CU_add_test(s, "admit the head, then check the body", test_admit_then_body);
}
