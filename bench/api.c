/* api.c - herald_bench's signed Pusher HTTP API requests
 * (PUSHER_PROTOCOL.md §9.1): the string to sign is
 * "METHOD\nPATH\nsorted params", HMAC-SHA256 with the app secret, and a
 * body's MD5 travels as body_md5.
 *
 * DESIGN
 * ------
 * The parameters are written already sorted (auth_key < auth_timestamp <
 * auth_version < body_md5), and none needs URL-encoding, so the query
 * string is also the signed parameter string. Each request carries the
 * current unix time; servers accept 600 s of skew.
 *
 * THREADING
 * ---------
 * Reentrant; no state.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "protocol/protocol.h"

/* Append "path?params&auth_signature=..." to out. */
static void signed_target(hd_buf *out, const bench_target *t, const char *method, const char *path,
                          const char *body_md5)
{
    hd_buf params, to_sign;
    char sig[65];
    hd_buf_init(&params);
    hd_buf_init(&to_sign);
    hd_buf_printf(&params, "auth_key=%s&auth_timestamp=%lld&auth_version=1.0", t->app_key, (long long)time(NULL));
    if (body_md5)
        hd_buf_printf(&params, "&body_md5=%s", body_md5);
    hd_buf_printf(&to_sign, "%s\n%s\n%s", method, path, params.data);
    hd_hmac_sha256_hex(t->app_secret, strlen(t->app_secret), to_sign.data, to_sign.len, sig);
    hd_buf_printf(out, "%s?%s&auth_signature=%s", path, params.data, sig);
    hd_buf_deinit(&params);
    hd_buf_deinit(&to_sign);
}

/* A signed POST of a JSON body to /apps/{id}<what>. */
static void api_post(hd_buf *out, const bench_target *t, const char *what, const char *body, size_t len)
{
    char md5[33], path[300];
    hd_md5_hex(body, len, md5);
    snprintf(path, sizeof path, "/apps/%s%s", t->app_id, what);
    out->len = 0;
    hd_buf_puts(out, "POST ");
    signed_target(out, t, "POST", path, md5);
    hd_buf_printf(out,
                  " HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                  t->host, t->port, len);
    hd_buf_append(out, body, len);
}

void bench_api_events(hd_buf *out, const bench_target *t, const char *body, size_t len)
{
    api_post(out, t, "/events", body, len);
}

void bench_api_batch_events(hd_buf *out, const bench_target *t, const char *body, size_t len)
{
    api_post(out, t, "/batch_events", body, len);
}

void bench_api_get(hd_buf *out, const bench_target *t, const char *path)
{
    out->len = 0;
    hd_buf_puts(out, "GET ");
    signed_target(out, t, "GET", path, NULL);
    hd_buf_printf(out, " HTTP/1.1\r\nHost: %s:%d\r\n\r\n", t->host, t->port);
}
