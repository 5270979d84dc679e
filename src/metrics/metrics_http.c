/* metrics_http.c - the little HTTP the metrics port speaks: when a request
 * head is complete, which page it asks for, and the HTTP/1.0 answer.
 * Kept apart from the socket loop in metrics.c so it is unit-tested alone.
 *
 * THREADING: pure functions; any thread.
 */
#include "metrics_internal.h"

#include <stdbool.h>
#include <string.h>

hd_metrics_head hd_metrics_head_state(const char *buf, size_t len, size_t from, size_t cap)
{
    /* The head ends at an empty line: LF LF, or LF CR LF (CRLF CRLF).
     * Start two bytes early: the previous read may have ended inside one. */
    for (size_t i = from > 2 ? from - 2 : 0; i < len; i++) {
        if (buf[i] != '\n')
            continue;
        if (i + 1 < len && buf[i + 1] == '\n')
            return HD_METRICS_HEAD_DONE;
        if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n')
            return HD_METRICS_HEAD_DONE;
    }
    return len >= cap ? HD_METRICS_HEAD_TOO_LARGE : HD_METRICS_HEAD_PARTIAL;
}

static bool is_path(const char *p, size_t n, const char *want)
{
    return n == strlen(want) && !memcmp(p, want, n);
}

hd_metrics_route hd_metrics_route_of(const char *head, size_t len)
{
    const char *eol = memchr(head, '\n', len);
    size_t line = eol ? (size_t)(eol - head) : len;
    if (line && head[line - 1] == '\r')
        line--;
    const char *sp1 = memchr(head, ' ', line);
    const char *target = sp1 ? sp1 + 1 : NULL;
    const char *sp2 = target ? memchr(target, ' ', line - (size_t)(target - head)) : NULL;
    if (!sp1 || sp1 == head || !sp2 || sp2 == target)
        return HD_METRICS_ROUTE_BAD;
    size_t rest = line - (size_t)(sp2 + 1 - head);
    if (rest < 5 || memcmp(sp2 + 1, "HTTP/", 5) != 0)
        return HD_METRICS_ROUTE_BAD;
    if (sp1 - head != 3 || memcmp(head, "GET", 3) != 0)
        return HD_METRICS_ROUTE_NOT_FOUND;
    const char *q = memchr(target, '?', (size_t)(sp2 - target));
    size_t n = (size_t)((q ? q : sp2) - target);
    if (is_path(target, n, "/metrics"))
        return HD_METRICS_ROUTE_METRICS;
    if (is_path(target, n, "/ready"))
        return HD_METRICS_ROUTE_READY;
    if (is_path(target, n, "/up") || (n >= 4 && !memcmp(target, "/up/", 4)))
        return HD_METRICS_ROUTE_UP;
    return HD_METRICS_ROUTE_NOT_FOUND;
}

static const char *reason_of(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 408: return "Request Timeout";
    case 431: return "Request Header Fields Too Large";
    case 503: return "Service Unavailable";
    default: return "Error";
    }
}

void hd_metrics_response(hd_buf *out, int status, const char *type, const char *body, size_t len)
{
    hd_buf_printf(out,
                  "HTTP/1.0 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                  status, reason_of(status), type, len);
    hd_buf_append(out, body ? body : "", len);
}

void hd_metrics_error_response(hd_buf *out, int status, const char *message)
{
    hd_buf body;
    hd_buf_init(&body);
    hd_buf_puts(&body, "{\"error\":");
    hd_buf_json_string(&body, message, strlen(message));
    hd_buf_puts(&body, "}");
    hd_metrics_response(out, status, "application/json", body.data, body.len);
    hd_buf_deinit(&body);
}
