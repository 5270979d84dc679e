/* metrics_test.c - CUnit suite "metrics": the HTTP pieces of the metrics
 * port (src/metrics/metrics_http.c): when a request head is complete or too
 * large, which page a request line asks for, and the HTTP/1.0 answers.
 *
 * THREADING: run by the single-threaded unit test runner.
 */
#include <CUnit/CUnit.h>
#include <string.h>

#include "metrics/metrics_internal.h"

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

void hd_test_suite_metrics(void)
{
    CU_pSuite s = CU_add_suite("metrics", NULL, NULL);
    CU_add_test(s, "head complete", test_head_complete);
    CU_add_test(s, "head fed byte by byte", test_head_incremental);
    CU_add_test(s, "head too large", test_head_too_large);
    CU_add_test(s, "routes", test_routes);
    CU_add_test(s, "bad request lines", test_bad_request_lines);
    CU_add_test(s, "responses", test_responses);
}
