/* metrics_test.c - CUnit suite "metrics": the HTTP pieces of the metrics
 * port (src/metrics/metrics_http.c): when a request head is complete or too
 * large, which page a request line asks for, and the HTTP/1.0 answers; and
 * the fixed label sets and buckets of src/metrics/series.c (close codes,
 * message kinds, HTTP routes and statuses, request duration buckets); and
 * the exposition helpers of src/metrics/prom.c (family headers, samples,
 * escaped labels, histograms).
 *
 * THREADING: run by the single-threaded unit test runner.
 */
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <string.h>

#include "metrics/metrics.h"
#include "metrics/metrics_internal.h"
#include "metrics/series.h"

#define CAP HD_METRICS_HEAD_MAX

static hd_metrics_head state_of(const char *s)
{
    return hd_metrics_head_state(s, strlen(s), 0, CAP);
}

static void test_head_complete(void)
{
    CU_ASSERT_EQUAL(state_of("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), HD_METRICS_HEAD_DONE);
    CU_ASSERT_EQUAL(state_of("GET /metrics HTTP/1.0\n\n"), HD_METRICS_HEAD_DONE);
    CU_ASSERT_EQUAL(state_of("GET /metrics HTTP/1.0\r\n\r\nbody after the head"), HD_METRICS_HEAD_DONE);
    CU_ASSERT_EQUAL(state_of(""), HD_METRICS_HEAD_PARTIAL);
    CU_ASSERT_EQUAL(state_of("GET /metrics HTTP/1.1\r\nHost: x\r\n"), HD_METRICS_HEAD_PARTIAL);
    CU_ASSERT_EQUAL(state_of("GET /metrics HTTP/1.1\r\nHost: x\r\n\r"), HD_METRICS_HEAD_PARTIAL);
    /* bytes after a NUL still count: the scan is by length, not by C string */
    const char nul[] = "GET / HTTP/1.0\r\nX: a\0b\r\n\r\n";
    CU_ASSERT_EQUAL(hd_metrics_head_state(nul, sizeof nul - 1, 0, CAP), HD_METRICS_HEAD_DONE);
}

/* Fed one byte at a time, with from = what was scanned before, the end is
 * found on exactly the byte that completes it, wherever reads split it. */
static void test_head_incremental(void)
{
    const char *req = "GET /ready HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    size_t n = strlen(req);
    for (size_t len = 1; len <= n; len++) {
        hd_metrics_head st = hd_metrics_head_state(req, len, len - 1, CAP);
        CU_ASSERT_EQUAL(st, len == n ? HD_METRICS_HEAD_DONE : HD_METRICS_HEAD_PARTIAL);
    }
    /* a read that ended right after "\r\n\r" and the next one brings "\n" */
    CU_ASSERT_EQUAL(hd_metrics_head_state(req, n, n - 1, CAP), HD_METRICS_HEAD_DONE);
    CU_ASSERT_EQUAL(hd_metrics_head_state(req, n, n - 2, CAP), HD_METRICS_HEAD_DONE);
}

static void test_head_too_large(void)
{
    static char big[CAP];
    memset(big, 'a', sizeof big);
    CU_ASSERT_EQUAL(hd_metrics_head_state(big, CAP - 1, 0, CAP), HD_METRICS_HEAD_PARTIAL);
    CU_ASSERT_EQUAL(hd_metrics_head_state(big, CAP, CAP - 1, CAP), HD_METRICS_HEAD_TOO_LARGE);
    /* a head that ends exactly at the cap is complete, not too large */
    memcpy(big + CAP - 4, "\r\n\r\n", 4);
    CU_ASSERT_EQUAL(hd_metrics_head_state(big, CAP, CAP - 1, CAP), HD_METRICS_HEAD_DONE);
}

static hd_metrics_route route(const char *line)
{
    return hd_metrics_route_of(line, strlen(line));
}

static void test_routes(void)
{
    CU_ASSERT_EQUAL(route("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), HD_METRICS_ROUTE_METRICS);
    CU_ASSERT_EQUAL(route("GET /metrics?name[]=x HTTP/1.0\n\n"), HD_METRICS_ROUTE_METRICS);
    CU_ASSERT_EQUAL(route("GET /ready HTTP/1.1\r\n\r\n"), HD_METRICS_ROUTE_READY);
    CU_ASSERT_EQUAL(route("GET /up HTTP/1.1\r\n\r\n"), HD_METRICS_ROUTE_UP);
    CU_ASSERT_EQUAL(route("GET /up/app-id HTTP/1.1\r\n\r\n"), HD_METRICS_ROUTE_UP);
    CU_ASSERT_EQUAL(route("GET /metricsx HTTP/1.1\r\n\r\n"), HD_METRICS_ROUTE_NOT_FOUND);
    CU_ASSERT_EQUAL(route("GET /upx HTTP/1.1\r\n\r\n"), HD_METRICS_ROUTE_NOT_FOUND);
    CU_ASSERT_EQUAL(route("GET / HTTP/1.1\r\n\r\n"), HD_METRICS_ROUTE_NOT_FOUND);
    CU_ASSERT_EQUAL(route("POST /metrics HTTP/1.1\r\n\r\n"), HD_METRICS_ROUTE_NOT_FOUND);
    CU_ASSERT_EQUAL(route("GETX /metrics HTTP/1.1\r\n\r\n"), HD_METRICS_ROUTE_NOT_FOUND);
}

static void test_bad_request_lines(void)
{
    CU_ASSERT_EQUAL(route("hello\r\n\r\n"), HD_METRICS_ROUTE_BAD);
    CU_ASSERT_EQUAL(route("GET /metrics\r\n\r\n"), HD_METRICS_ROUTE_BAD);
    CU_ASSERT_EQUAL(route("GET  /metrics HTTP/1.1\r\n\r\n"), HD_METRICS_ROUTE_BAD);
    CU_ASSERT_EQUAL(route(" /metrics HTTP/1.1\r\n\r\n"), HD_METRICS_ROUTE_BAD);
    CU_ASSERT_EQUAL(route("GET /metrics FTP/1.1\r\n\r\n"), HD_METRICS_ROUTE_BAD);
    CU_ASSERT_EQUAL(route("GET /metrics HTTP\r\n\r\n"), HD_METRICS_ROUTE_BAD);
    CU_ASSERT_EQUAL(route("\r\n\r\n"), HD_METRICS_ROUTE_BAD);
    CU_ASSERT_EQUAL(hd_metrics_route_of("", 0), HD_METRICS_ROUTE_BAD);
    /* the version must be on the request line, not further down */
    CU_ASSERT_EQUAL(route("GET /metrics\r\nX: y HTTP/1.1\r\n\r\n"), HD_METRICS_ROUTE_BAD);
}

static void test_responses(void)
{
    hd_buf b;
    hd_buf_init(&b);
    hd_metrics_response(&b, 200, "application/json", "{\"ok\":true}", 11);
    CU_ASSERT_STRING_EQUAL(b.data, "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n"
                                   "Connection: close\r\n\r\n{\"ok\":true}");
    hd_buf_deinit(&b);
    hd_metrics_error_response(&b, 431, "too \"large\"");
    CU_ASSERT_STRING_EQUAL(b.data, "HTTP/1.0 431 Request Header Fields Too Large\r\nContent-Type: application/json\r\n"
                                   "Content-Length: 25\r\nConnection: close\r\n\r\n{\"error\":\"too \\\"large\\\"\"}");
    hd_buf_deinit(&b);
    hd_metrics_response(&b, 408, "text/plain", NULL, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "HTTP/1.0 408 Request Timeout\r\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(b.data, "Content-Length: 0\r\n"));
    hd_buf_deinit(&b);
}

/* ---- series.h: fixed label sets and buckets ---- */

static void test_close_slots(void)
{
    static const unsigned known[] = {1000, 1001, 1002, 1003, 1005, 1006, 1007, 1008, 1009, 1011,
                                     4001, 4003, 4004, 4005, 4007, 4009, 4100, 4200, 4201};
    char want[8];
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        unsigned slot = hd_series_close_slot(known[i]);
        CU_ASSERT_TRUE(slot < HD_SERIES_CLOSE_SLOTS - 1);
        snprintf(want, sizeof want, "%u", known[i]);
        CU_ASSERT_STRING_EQUAL(hd_series_close_label(slot), want);
    }
    /* whatever else a client sends shares one series */
    static const unsigned unknown[] = {0, 999, 1004, 1010, 1012, 2000, 3000, 3999, 4000, 4002, 4999, 65535};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++)
        CU_ASSERT_EQUAL(hd_series_close_slot(unknown[i]), HD_SERIES_CLOSE_SLOTS - 1);
    CU_ASSERT_STRING_EQUAL(hd_series_close_label(HD_SERIES_CLOSE_SLOTS - 1), "other");
    CU_ASSERT_STRING_EQUAL(hd_series_close_label(1000), "other"); /* out of range: never past the table */
}

static void test_ws_kinds(void)
{
    CU_ASSERT_EQUAL(hd_series_ws_kind("pusher:subscribe"), HD_WS_KIND_SUBSCRIBE);
    CU_ASSERT_EQUAL(hd_series_ws_kind("pusher:unsubscribe"), HD_WS_KIND_UNSUBSCRIBE);
    CU_ASSERT_EQUAL(hd_series_ws_kind("pusher:signin"), HD_WS_KIND_SIGNIN);
    CU_ASSERT_EQUAL(hd_series_ws_kind("pusher:ping"), HD_WS_KIND_PING);
    CU_ASSERT_EQUAL(hd_series_ws_kind("pusher:pong"), HD_WS_KIND_PONG);
    CU_ASSERT_EQUAL(hd_series_ws_kind("client-x"), HD_WS_KIND_CLIENT_EVENT);
    CU_ASSERT_EQUAL(hd_series_ws_kind("client-"), HD_WS_KIND_CLIENT_EVENT);
    CU_ASSERT_EQUAL(hd_series_ws_kind(NULL), HD_WS_KIND_OTHER);
    CU_ASSERT_EQUAL(hd_series_ws_kind(""), HD_WS_KIND_OTHER);
    CU_ASSERT_EQUAL(hd_series_ws_kind("pusher:subscribed"), HD_WS_KIND_OTHER);
    CU_ASSERT_EQUAL(hd_series_ws_kind("pusher:"), HD_WS_KIND_OTHER);
    CU_ASSERT_EQUAL(hd_series_ws_kind("pusher_internal:subscription_succeeded"), HD_WS_KIND_OTHER);
    CU_ASSERT_EQUAL(hd_series_ws_kind("Pusher:ping"), HD_WS_KIND_OTHER);
    CU_ASSERT_EQUAL(hd_series_ws_kind("my-event"), HD_WS_KIND_OTHER);
    CU_ASSERT_STRING_EQUAL(hd_series_ws_kind_label(HD_WS_KIND_CLIENT_EVENT), "client_event");
    CU_ASSERT_STRING_EQUAL(hd_series_ws_kind_label(HD_WS_KIND_OTHER), "other");
    CU_ASSERT_STRING_EQUAL(hd_series_frame_kind_label(HD_FRAME_CHANNEL), "channel");
    CU_ASSERT_STRING_EQUAL(hd_series_frame_kind_label(HD_FRAME_DIRECT), "direct");
}

static hd_http_route route_of(const char *target)
{
    return hd_series_http_route(target, strlen(target));
}

static void test_http_routes(void)
{
    CU_ASSERT_EQUAL(route_of("/apps/1/events"), HD_ROUTE_EVENTS);
    CU_ASSERT_EQUAL(route_of("/apps/1/events?auth_key=k&body_md5=x"), HD_ROUTE_EVENTS);
    CU_ASSERT_EQUAL(route_of("/apps/app-id/batch_events"), HD_ROUTE_BATCH_EVENTS);
    CU_ASSERT_EQUAL(route_of("/apps/1/channels"), HD_ROUTE_CHANNELS);
    CU_ASSERT_EQUAL(route_of("/apps/1/channels?filter_by_prefix=presence-"), HD_ROUTE_CHANNELS);
    CU_ASSERT_EQUAL(route_of("/apps/1/channels/presence-x"), HD_ROUTE_CHANNEL);
    CU_ASSERT_EQUAL(route_of("/apps/1/channels/presence-x/users"), HD_ROUTE_CHANNEL_USERS);
    CU_ASSERT_EQUAL(route_of("/apps/1/users/u1/terminate_connections"), HD_ROUTE_TERMINATE);
    CU_ASSERT_EQUAL(route_of("/up"), HD_ROUTE_UP);
    CU_ASSERT_EQUAL(route_of("/up/app-id"), HD_ROUTE_UP);
    CU_ASSERT_EQUAL(route_of("/ready"), HD_ROUTE_READY);
    CU_ASSERT_EQUAL(route_of("/ready?x=1"), HD_ROUTE_READY);
    /* the shape decides, as in http_api.c: no trailing slash, no prefixes */
    CU_ASSERT_EQUAL(route_of("/apps/1/events/"), HD_ROUTE_OTHER);
    CU_ASSERT_EQUAL(route_of("/apps/1/Events"), HD_ROUTE_OTHER);
    CU_ASSERT_EQUAL(route_of("/apps/1/channels/x/members"), HD_ROUTE_OTHER);
    CU_ASSERT_EQUAL(route_of("/apps/1/users/u1"), HD_ROUTE_OTHER);
    CU_ASSERT_EQUAL(route_of("/apps/1/users/u1/terminate"), HD_ROUTE_OTHER);
    CU_ASSERT_EQUAL(route_of("/apps/1"), HD_ROUTE_OTHER);
    CU_ASSERT_EQUAL(route_of("/apps/1/channels/a/users/b"), HD_ROUTE_OTHER);
    CU_ASSERT_EQUAL(route_of("/up/a/b"), HD_ROUTE_OTHER);
    CU_ASSERT_EQUAL(route_of("/readyz"), HD_ROUTE_OTHER);
    CU_ASSERT_EQUAL(route_of("/"), HD_ROUTE_OTHER);
    CU_ASSERT_EQUAL(route_of(""), HD_ROUTE_OTHER);
    CU_ASSERT_EQUAL(route_of("*"), HD_ROUTE_OTHER);
    CU_ASSERT_EQUAL(route_of("apps/1/events"), HD_ROUTE_OTHER);
    CU_ASSERT_EQUAL(route_of("/a/b/c/d/e/f/g/h"), HD_ROUTE_OTHER);
    CU_ASSERT_EQUAL(hd_series_http_route(NULL, 0), HD_ROUTE_OTHER);
    /* only target[0, len) is looked at: a pipelined request may follow */
    CU_ASSERT_EQUAL(hd_series_http_route("/readyGET /up", 6), HD_ROUTE_READY);
    CU_ASSERT_STRING_EQUAL(hd_series_http_route_label(HD_ROUTE_CHANNEL_USERS), "channel_users");
    CU_ASSERT_STRING_EQUAL(hd_series_http_route_label(HD_ROUTE_TERMINATE), "terminate");
    CU_ASSERT_STRING_EQUAL(hd_series_http_route_label(HD_ROUTE_OTHER), "other");
}

static void test_http_statuses(void)
{
    static const int known[] = {200, 204, 400, 401, 403, 404, 405, 408, 413, 429, 500, 503};
    char want[8];
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        unsigned slot = hd_series_status_slot(known[i]);
        CU_ASSERT_TRUE(slot < HD_SERIES_STATUS_SLOTS - 1);
        snprintf(want, sizeof want, "%d", known[i]);
        CU_ASSERT_STRING_EQUAL(hd_series_status_label(slot), want);
    }
    CU_ASSERT_EQUAL(hd_series_status_slot(201), HD_SERIES_STATUS_SLOTS - 1);
    CU_ASSERT_EQUAL(hd_series_status_slot(-1), HD_SERIES_STATUS_SLOTS - 1);
    CU_ASSERT_EQUAL(hd_series_status_slot(0), HD_SERIES_STATUS_SLOTS - 1);
    CU_ASSERT_STRING_EQUAL(hd_series_status_label(HD_SERIES_STATUS_SLOTS - 1), "other");
}

static void test_http_buckets(void)
{
    /* bounds are inclusive (Prometheus' le), ascending, and 1 s is the last finite one */
    for (unsigned b = 1; b < HD_SERIES_HTTP_BUCKETS - 1; b++)
        CU_ASSERT_TRUE(hd_series_http_le_us[b - 1] < hd_series_http_le_us[b]);
    CU_ASSERT_EQUAL(hd_series_http_le_us[0], 100);
    CU_ASSERT_EQUAL(hd_series_http_le_us[HD_SERIES_HTTP_BUCKETS - 2], 1000000);
    CU_ASSERT_EQUAL(hd_series_http_bucket(0), 0);
    CU_ASSERT_EQUAL(hd_series_http_bucket(100), 0);
    CU_ASSERT_EQUAL(hd_series_http_bucket(101), 1);
    CU_ASSERT_EQUAL(hd_series_http_bucket(250), 1);
    CU_ASSERT_EQUAL(hd_series_http_bucket(999), 3);
    CU_ASSERT_EQUAL(hd_series_http_bucket(1000), 3);
    CU_ASSERT_EQUAL(hd_series_http_bucket(1000000), HD_SERIES_HTTP_BUCKETS - 2);
    CU_ASSERT_EQUAL(hd_series_http_bucket(1000001), HD_SERIES_HTTP_BUCKETS - 1);
    CU_ASSERT_EQUAL(hd_series_http_bucket(UINT64_MAX), HD_SERIES_HTTP_BUCKETS - 1);
    for (unsigned b = 0; b < HD_SERIES_HTTP_BUCKETS - 1; b++) {
        CU_ASSERT_EQUAL(hd_series_http_bucket(hd_series_http_le_us[b]), b);
        CU_ASSERT_EQUAL(hd_series_http_bucket(hd_series_http_le_us[b] + 1), b + 1);
    }
}

/* ---- prom.c: the exposition format every renderer writes through ---- */

static void test_prom_family_and_samples(void)
{
    hd_buf b;
    hd_buf_init(&b);
    hd_metrics_family(&b, "herald_x_total", "counter", "Things done.");
    hd_metrics_sample(&b, "herald_x_total", "io_thread=\"0\"", 12);
    hd_metrics_sample(&b, "herald_x_total", NULL, 9007199254740992.0); /* 2^53 prints exactly */
    hd_metrics_sample(&b, "herald_x_total", "", 0.5);
    CU_ASSERT_STRING_EQUAL(b.data, "# HELP herald_x_total Things done.\n# TYPE herald_x_total counter\n"
                                   "herald_x_total{io_thread=\"0\"} 12\nherald_x_total 9007199254740992\n"
                                   "herald_x_total 0.5\n");
    hd_buf_deinit(&b);
}

/* Label values a user configured (app ids, webhook URLs) are escaped as
 * the text format requires: backslash, double quote and newline. */
static void test_prom_label_escaping(void)
{
    hd_buf b;
    hd_buf_init(&b);
    hd_metrics_label(&b, "app", "plain-id");
    hd_buf_append(&b, ",", 1);
    hd_metrics_label(&b, "url", "http://h/a\"b\\c\nd");
    CU_ASSERT_STRING_EQUAL(b.data, "app=\"plain-id\",url=\"http://h/a\\\"b\\\\c\\nd\"");
    hd_buf_deinit(&b);
    hd_metrics_label(&b, "app", "");
    CU_ASSERT_STRING_EQUAL(b.data, "app=\"\"");
    hd_buf_deinit(&b);
}

/* Buckets are printed cumulative, the last one +Inf, _count equals it. */
static void test_prom_histogram(void)
{
    hd_buf b;
    hd_buf_init(&b);
    const uint64_t counts[3] = {2, 0, 5};
    const double le[2] = {0.001, 2.5};
    hd_metrics_histogram(&b, "h_seconds", "route=\"up\"", counts, le, 3, 1.25, 6);
    CU_ASSERT_STRING_EQUAL(b.data, "h_seconds_bucket{route=\"up\",le=\"0.001\"} 2\n"
                                   "h_seconds_bucket{route=\"up\",le=\"2.5\"} 2\n"
                                   "h_seconds_bucket{route=\"up\",le=\"+Inf\"} 7\n"
                                   "h_seconds_sum{route=\"up\"} 1.250000\n"
                                   "h_seconds_count{route=\"up\"} 7\n");
    hd_buf_deinit(&b);
    const uint64_t one[2] = {1, 1};
    const double le1[1] = {10};
    hd_metrics_histogram(&b, "n", NULL, one, le1, 2, 42, 0);
    CU_ASSERT_STRING_EQUAL(b.data, "n_bucket{le=\"10\"} 1\nn_bucket{le=\"+Inf\"} 2\nn_sum 42\nn_count 2\n");
    hd_buf_deinit(&b);
}

void hd_test_suite_metrics(void)
{
    CU_pSuite s = CU_add_suite("metrics", NULL, NULL);
    CU_add_test(s, "head complete", test_head_complete);
    CU_add_test(s, "head fed byte by byte", test_head_incremental);
    CU_add_test(s, "head too large", test_head_too_large);
    CU_add_test(s, "routes", test_routes);
    CU_add_test(s, "bad request lines", test_bad_request_lines);
    CU_add_test(s, "responses", test_responses);
    CU_add_test(s, "series: close codes", test_close_slots);
    CU_add_test(s, "series: inbound message kinds", test_ws_kinds);
    CU_add_test(s, "series: HTTP routes", test_http_routes);
    CU_add_test(s, "series: HTTP statuses", test_http_statuses);
    CU_add_test(s, "series: request duration buckets", test_http_buckets);
    CU_add_test(s, "prom: family headers and samples", test_prom_family_and_samples);
    CU_add_test(s, "prom: label escaping", test_prom_label_escaping);
    CU_add_test(s, "prom: histogram", test_prom_histogram);
}
