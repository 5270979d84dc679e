/* http_parse.c - the HTTP/1.x request-head parser of the connection
 * layer's own HTTP front end (adapter/http_front.c).
 *
 * DESIGN
 * ------
 * A pure function over the bytes received so far: it says "need more",
 * "complete, N bytes long", or which status to answer. It never copies:
 * method and target are offsets into the caller's buffer. Only the
 * headers herald acts on are interpreted; the rest are checked for shape
 * and counted.
 *
 * Strict where leniency has been abused elsewhere (request smuggling,
 * header injection): a Content-Length must be plain digits and agree with
 * any repeat of itself, Content-Length together with Transfer-Encoding is
 * refused, obsolete line folding and bare CR are refused. Lenient where
 * RFC 9112 asks for it: a bare LF ends a line, and so does CRLF.
 *
 * THREADING: none; reentrant.
 */
#include <string.h>

#include "http_api.h"

#define MAX_METHOD 7

static bool is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static bool ieq(const char *a, size_t a_len, const char *b)
{
    size_t n = strlen(b);
    if (a_len != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z')
            x = (char)(x - 'A' + 'a');
        if (x != y)
            return false;
    }
    return true;
}

/* Does the comma-separated list contain word (case-insensitive)? */
static bool list_has(const char *v, size_t len, const char *word)
{
    size_t i = 0;
    while (i < len) {
        while (i < len && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t start = i;
        while (i < len && v[i] != ',')
            i++;
        size_t end = i;
        while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
            end--;
        if (end > start && ieq(v + start, end - start, word))
            return true;
    }
    return false;
}

/* One line [p, eol) without its terminator; NULL when none is complete.
 * A CR anywhere but right before the LF makes *bad_cr true. */
static const char *line_end(const char *p, const char *end, bool *bad_cr)
{
    const char *lf = memchr(p, '\n', (size_t)(end - p));
    const char *stop = lf ? lf : end;
    const char *cr = memchr(p, '\r', (size_t)(stop - p));
    if (cr && cr != stop - 1)
        *bad_cr = true;
    if (cr && !lf && cr != end - 1)
        *bad_cr = true;
    if (!lf)
        return NULL;
    return lf > p && lf[-1] == '\r' ? lf - 1 : lf;
}

static const char *after_line(const char *eol)
{
    return *eol == '\r' ? eol + 2 : eol + 1;
}

static int parse_request_line(const char *buf, const char *eol, const hd_http_head_limits *lim, hd_http_head *h)
{
    const char *sp1 = memchr(buf, ' ', (size_t)(eol - buf));
    if (!sp1 || sp1 == buf || sp1 - buf > MAX_METHOD)
        return -400;
    for (const char *c = buf; c < sp1; c++)
        if (!is_tchar((unsigned char)*c))
            return -400;
    const char *target = sp1 + 1;
    const char *sp2 = memchr(target, ' ', (size_t)(eol - target));
    if (!sp2 || sp2 == target)
        return -400;
    if ((size_t)(sp2 - target) > lim->max_target)
        return -414;
    for (const char *c = target; c < sp2; c++)
        if ((unsigned char)*c <= 0x20 || *c == 0x7f)
            return -400;
    const char *ver = sp2 + 1;
    if (eol - ver != 8 || memcmp(ver, "HTTP/1.", 7) != 0)
        return eol - ver == 8 && memcmp(ver, "HTTP/", 5) == 0 ? -505 : -400;
    if (ver[7] != '0' && ver[7] != '1')
        return -505;
    h->method_len = (size_t)(sp1 - buf);
    memcpy(h->method, buf, h->method_len);
    h->method[h->method_len] = '\0';
    h->target_off = (size_t)(target - buf);
    h->target_len = (size_t)(sp2 - target);
    h->http_minor = ver[7] - '0';
    return 0;
}

static int parse_content_length(const char *v, size_t len, hd_http_head *h)
{
    if (len == 0 || len > 18)
        return -400;
    long long n = 0;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -400;
        n = n * 10 + (v[i] - '0');
    }
    if (h->content_length >= 0 && h->content_length != n)
        return -400; /* two lengths that disagree: a smuggling attempt */
    h->content_length = n;
    return 0;
}

static int apply_header(const char *name, size_t name_len, const char *v, size_t v_len, hd_http_head *h,
                        const char *buf)
{
    if (ieq(name, name_len, "origin")) {
        h->origin_off = (size_t)(v - buf);
        h->origin_len = v_len;
        return 0;
    }
    if (ieq(name, name_len, "access-control-request-headers")) {
        h->acrh_off = (size_t)(v - buf);
        h->acrh_len = v_len;
        return 0;
    }
    if (ieq(name, name_len, "content-length"))
        return parse_content_length(v, v_len, h);
    if (ieq(name, name_len, "transfer-encoding")) {
        h->has_transfer_encoding = true;
        h->chunked |= list_has(v, v_len, "chunked");
    } else if (ieq(name, name_len, "connection")) {
        h->conn_close |= list_has(v, v_len, "close");
        h->conn_keep_alive |= list_has(v, v_len, "keep-alive");
        h->conn_upgrade |= list_has(v, v_len, "upgrade");
    } else if (ieq(name, name_len, "upgrade")) {
        h->upgrade_websocket |= list_has(v, v_len, "websocket");
    } else if (ieq(name, name_len, "expect")) {
        h->expect_continue |= ieq(v, v_len, "100-continue");
    }
    return 0;
}

static int parse_header_line(const char *p, const char *eol, hd_http_head *h, const char *buf)
{
    if (*p == ' ' || *p == '\t')
        return -400; /* obsolete line folding */
    const char *colon = memchr(p, ':', (size_t)(eol - p));
    if (!colon || colon == p)
        return -400;
    for (const char *c = p; c < colon; c++)
        if (!is_tchar((unsigned char)*c))
            return -400;
    const char *v = colon + 1, *vend = eol;
    while (v < vend && (*v == ' ' || *v == '\t'))
        v++;
    while (vend > v && (vend[-1] == ' ' || vend[-1] == '\t'))
        vend--;
    for (const char *c = v; c < vend; c++)
        if (((unsigned char)*c < 0x20 && *c != '\t') || *c == 0x7f)
            return -400;
    return apply_header(p, (size_t)(colon - p), v, (size_t)(vend - v), h, buf);
}

static int finish(hd_http_head *h)
{
    if (h->has_transfer_encoding && h->content_length >= 0)
        return -400;
    if (h->has_transfer_encoding)
        return h->chunked ? -411 : -501;
    h->keep_alive = h->http_minor == 1 ? !h->conn_close : (h->conn_keep_alive && !h->conn_close);
    return 0;
}

/* A head that is not complete yet may already be hopeless. */
static int incomplete(const char *buf, size_t len, const hd_http_head_limits *lim, bool first_line_done)
{
    if (!first_line_done && len > lim->max_target + MAX_METHOD + 16)
        return -414;
    return len >= lim->max_head ? -431 : 0;
}

int hd_http_parse_head(const char *buf, size_t len, const hd_http_head_limits *lim, hd_http_head *h)
{
    memset(h, 0, sizeof *h);
    h->content_length = -1;
    const char *end = buf + len, *p = buf;
    while (p < end && (*p == '\r' || *p == '\n')) /* RFC 9112 2.2: ignore leading empty lines */
        p++;
    size_t lead = (size_t)(p - buf);
    bool bad_cr = false;
    const char *eol = line_end(p, end, &bad_cr);
    if (bad_cr)
        return -400;
    if (!eol)
        return incomplete(p, len - lead, lim, false);
    int rc = parse_request_line(p, eol, lim, h);
    if (rc)
        return rc;
    h->target_off += lead;
    for (p = after_line(eol);;) {
        eol = line_end(p, end, &bad_cr);
        if (bad_cr)
            return -400;
        if (!eol)
            return incomplete(buf, len, lim, true);
        if (eol == p)
            break;
        if (++h->n_headers > lim->max_headers)
            return -431;
        if ((rc = parse_header_line(p, eol, h, buf)) != 0)
            return rc;
        p = after_line(eol);
    }
    size_t head_len = (size_t)(after_line(eol) - buf);
    if (head_len > lim->max_head)
        return -431;
    if ((rc = finish(h)) != 0)
        return rc;
    h->head_len = head_len;
    return (int)head_len;
}
