/* http_auth.c - HTTP API request authentication: the string to sign and the
 * checks of PUSHER_PROTOCOL.md §9.1, in [SIGGEM] order.
 *
 * DESIGN
 * ------
 * The string to sign is METHOD "\n" path "\n" k=v&k=v..., keys lower-cased
 * (ASCII), sorted bytewise by key then value, auth_signature left out,
 * values written decoded and unescaped. It is built in an hd_buf (the sort
 * needs a temporary index array too); both are freed before returning.
 * Failures return an HTTP status and a human message truncated to err_len
 * without splitting a UTF-8 sequence.
 *
 * THREADING
 * ---------
 * No global state; reentrant and safe from any thread as long as the
 * request's params are not modified concurrently.
 */
#include "protocol.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "protocol/protocol_internal.h"

#define HTTP_BAD_REQUEST 400
#define HTTP_UNAUTHORIZED 401
#define TIMESTAMP_MAX_DIGITS 18

/* ---- string to sign ---- */

static int param_cmp(const void *pa, const void *pb)
{
    const hd_param *a = *(const hd_param *const *)pa;
    const hd_param *b = *(const hd_param *const *)pb;
    int c = hd_protocol__ascii_casecmp(a->key, b->key);
    return c ? c : strcmp(a->value, b->value);
}

static void append_lower(hd_buf *b, const char *s)
{
    for (; *s; s++) {
        char c = (*s >= 'A' && *s <= 'Z') ? (char)(*s - 'A' + 'a') : *s;
        hd_buf_append(b, &c, 1);
    }
}

static void append_upper(hd_buf *b, const char *s)
{
    for (; *s; s++) {
        char c = (*s >= 'a' && *s <= 'z') ? (char)(*s - 'a' + 'A') : *s;
        hd_buf_append(b, &c, 1);
    }
}

static void string_to_sign_buf(hd_buf *b, const char *method, const char *path, const hd_params *params)
{
    size_t count = params ? params->count : 0, n = 0;
    const hd_param **sorted = hd_malloc((count ? count : 1) * sizeof *sorted);
    for (size_t i = 0; i < count; i++) {
        if (hd_protocol__ascii_casecmp(params->items[i].key, "auth_signature") != 0)
            sorted[n++] = &params->items[i];
    }
    qsort(sorted, n, sizeof *sorted, param_cmp);
    append_upper(b, method ? method : "");
    hd_buf_append(b, "\n", 1);
    hd_buf_puts(b, path ? path : "");
    hd_buf_append(b, "\n", 1);
    for (size_t i = 0; i < n; i++) {
        if (i)
            hd_buf_append(b, "&", 1);
        append_lower(b, sorted[i]->key);
        hd_buf_append(b, "=", 1);
        hd_buf_puts(b, sorted[i]->value);
    }
    hd_free(sorted);
}

size_t hd_http_string_to_sign(const char *method, const char *path, const hd_params *params, char *out,
                              size_t out_len)
{
    hd_buf b;
    hd_buf_init(&b);
    string_to_sign_buf(&b, method, path, params);
    size_t len = b.len;
    if (out && out_len) {
        size_t n = len < out_len ? len : out_len - 1;
        memcpy(out, b.data, n);
        out[n] = '\0';
    }
    hd_buf_deinit(&b);
    return len;
}

/* ---- error messages ---- */

/* Cut s (NUL at s[len]) before a trailing incomplete UTF-8 sequence. */
static void trim_partial_utf8(char *s, size_t len)
{
    size_t i = len, cont = 0;
    while (i > 0 && cont < 4 && ((unsigned char)s[i - 1] & 0xC0) == 0x80) {
        i--;
        cont++;
    }
    if (i == 0)
        return;
    unsigned char lead = (unsigned char)s[i - 1];
    size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    if (need > cont + 1)
        s[i - 1] = '\0';
}

static int fail(char *err, size_t err_len, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t err_len, int status, const char *fmt, ...)
{
    if (!err || err_len == 0)
        return status;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
    if (n < 0)
        err[0] = '\0';
    else if ((size_t)n >= err_len)
        trim_partial_utf8(err, err_len - 1);
    return status;
}

/* ---- the checks, in order ---- */

static const char *const required_params[] = {"auth_key", "auth_timestamp", "auth_version", "auth_signature"};

static size_t param_count(const hd_params *p, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < p->count; i++)
        n += hd_protocol__ascii_casecmp(p->items[i].key, name) == 0;
    return n;
}

static int check_present(const hd_params *p, char *err, size_t err_len)
{
    size_t nreq = sizeof required_params / sizeof required_params[0];
    for (size_t i = 0; i < nreq; i++) {
        if (!hd_params_get(p, required_params[i]))
            /* an unauthenticated request: 401, as for any other auth failure */
            return fail(err, err_len, HTTP_UNAUTHORIZED, "Missing parameter: %s", required_params[i]);
    }
    for (size_t i = 0; i <= nreq; i++) {
        const char *name = i < nreq ? required_params[i] : "body_md5";
        if (param_count(p, name) > 1)
            return fail(err, err_len, HTTP_BAD_REQUEST, "Duplicate parameter: %s", name);
    }
    return 0;
}

static int check_version(const hd_params *p, char *err, size_t err_len)
{
    const char *v = hd_params_get(p, "auth_version");
    if (strcmp(v, "1.0") != 0)
        return fail(err, err_len, HTTP_UNAUTHORIZED, "Unsupported auth_version: expected \"1.0\", got \"%s\"", v);
    return 0;
}

/* 1..TIMESTAMP_MAX_DIGITS decimal digits, nothing else. */
static bool parse_timestamp(const char *s, int64_t *out)
{
    size_t len = strlen(s);
    if (len == 0 || len > TIMESTAMP_MAX_DIGITS)
        return false;
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

static int check_timestamp(const hd_http_auth_request *req, char *err, size_t err_len)
{
    const char *s = hd_params_get(req->params, "auth_timestamp");
    int64_t ts;
    if (!parse_timestamp(s, &ts))
        return fail(err, err_len, HTTP_BAD_REQUEST, "Invalid auth_timestamp: \"%s\" is not a unix time in seconds", s);
    int64_t skew = req->now_s > ts ? req->now_s - ts : ts - req->now_s;
    if (skew >= req->max_skew_s)
        return fail(err, err_len, HTTP_UNAUTHORIZED,
                    "Timestamp expired: Given timestamp (%" PRId64 ") not within %" PRId64
                    "s of server time (%" PRId64 ")",
                    ts, req->max_skew_s, req->now_s);
    return 0;
}

static int check_key(const hd_http_auth_request *req, char *err, size_t err_len)
{
    const char *key = hd_params_get(req->params, "auth_key");
    if (!req->app_key || strcmp(key, req->app_key) != 0)
        return fail(err, err_len, HTTP_UNAUTHORIZED, "Unknown auth_key");
    return 0;
}

static int check_body_md5(const hd_http_auth_request *req, char *err, size_t err_len)
{
    const char *given = hd_params_get(req->params, "body_md5");
    if (!given) {
        if (req->body_len == 0)
            return 0;
        return fail(err, err_len, HTTP_UNAUTHORIZED,
                    "Missing body_md5: a request with a body must sign the MD5 of its body");
    }
    if (req->mode == HD_AUTH_HEAD && req->body_len)
        return 0; /* compared once the body is in (HD_AUTH_BODY) */
    char expected[33];
    hd_md5_hex(req->body, req->body_len, expected);
    if (hd_protocol__ascii_casecmp(given, expected) != 0)
        return fail(err, err_len, HTTP_UNAUTHORIZED,
                    "Invalid body_md5: the MD5 of the body is \"%s\", but you sent \"%s\"", expected, given);
    return 0;
}

static bool signature_matches(const hd_http_auth_request *req, const char *path, const char *sig)
{
    hd_buf b;
    hd_buf_init(&b);
    string_to_sign_buf(&b, req->method, path, req->params);
    char expected[65];
    const char *secret = req->app_secret ? req->app_secret : "";
    hd_hmac_sha256_hex(secret, strlen(secret), b.data, b.len, expected);
    hd_buf_deinit(&b);
    return hd_const_time_equal(sig, strlen(sig), expected, 64);
}

/* The path as encodeURIComponent would send it, segment by segment: the
 * form a client signed when it percent-encoded a channel name and the
 * connection layer handed us the path already decoded. NULL when no
 * character needs encoding (the path itself is that form). */
static char *path_component_encoded(const char *path)
{
    static const char keep[] = "-_.!~*'()/";
    static const char hex[] = "0123456789ABCDEF";
    hd_buf b;
    hd_buf_init(&b);
    bool changed = false;
    for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || strchr(keep, *p)) {
            hd_buf_append(&b, p, 1);
            continue;
        }
        char esc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
        hd_buf_append(&b, esc, 3);
        changed = true;
    }
    if (!changed) {
        hd_buf_deinit(&b);
        return NULL;
    }
    return hd_buf_steal(&b, NULL);
}

/* §9.1: accept the path as received, percent-decoded (as poxa does), or
 * percent-encoded component by component (when it reached us decoded). */
static bool signature_matches_any_path(const hd_http_auth_request *req, const char *sig)
{
    const char *path = req->path ? req->path : "";
    if (signature_matches(req, path, sig))
        return true;
    char *other = NULL;
    bool ok = false;
    if (strchr(path, '%') && hd_url_decode(path, strlen(path), false, &other) == 0)
        ok = signature_matches(req, other, sig);
    hd_free(other);
    if (!ok && (other = path_component_encoded(path)) != NULL) {
        ok = signature_matches(req, other, sig);
        hd_free(other);
    }
    return ok;
}

static int check_signature(const hd_http_auth_request *req, char *err, size_t err_len)
{
    const char *sig = hd_params_get(req->params, "auth_signature");
    if (signature_matches_any_path(req, sig))
        return 0;
    hd_buf sts, escaped;
    hd_buf_init(&sts);
    hd_buf_init(&escaped);
    string_to_sign_buf(&sts, req->method, req->path, req->params);
    for (size_t i = 0; i < sts.len; i++) {
        if (sts.data[i] == '\n')
            hd_buf_append(&escaped, "\\n", 2);
        else
            hd_buf_append(&escaped, &sts.data[i], 1);
    }
    int status = fail(err, err_len, HTTP_UNAUTHORIZED,
                      "Invalid signature: you should have sent HmacSHA256Hex(\"%s\", your_secret_key), but you sent \"%s\"",
                      escaped.data, sig);
    hd_buf_deinit(&sts);
    hd_buf_deinit(&escaped);
    return status;
}

int hd_http_auth_verify(const hd_http_auth_request *req, char *err, size_t err_len)
{
    static const hd_params no_params = {NULL, 0, 0};
    hd_http_auth_request r = *req;
    if (!r.params)
        r.params = &no_params;
    if (err && err_len)
        err[0] = '\0';
    if (r.mode == HD_AUTH_BODY)
        return check_body_md5(&r, err, err_len);
    int status = check_present(r.params, err, err_len);
    if (!status)
        status = check_version(r.params, err, err_len);
    if (!status)
        status = check_timestamp(&r, err, err_len);
    if (!status)
        status = check_key(&r, err, err_len);
    if (!status)
        status = check_body_md5(&r, err, err_len);
    if (!status)
        status = check_signature(&r, err, err_len);
    return status;
}
