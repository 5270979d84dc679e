/* config_redis.c - the Redis adapter's address: the URL form
 * (adapter.redis.url, HERALD_ADAPTER_REDIS_URL, REDIS_URL, sockudo's
 * redis_pub_options.url) and which source gives each field.
 *
 * DESIGN
 * ------
 * The address is five fields: host, port, username, password, db. Each one
 * is taken from the first of these sources that gives it:
 *
 *   1. HERALD_ADAPTER_REDIS_<FIELD>          environment, that field
 *   2. HERALD_ADAPTER_REDIS_URL              environment, all five
 *   3. adapter.redis.<field>                 file, that field
 *   4. adapter.redis.url                     file, all five
 *   5. adapter.redis.redis_pub_options.url   file (sockudo), all five
 *   6. database.redis.<field>                file (sockudo), the fields given
 *   7. REDIS_URL                             environment, all five; read only
 *      when adapter.driver is "redis" and 1-6 give no host
 *   8. the defaults (config_table.c).
 *
 * The environment beats the file, as for every key; within a layer a key
 * beats a URL, so a URL can hold the address while the password comes from
 * its own variable. A URL is a whole address: what it leaves out is the
 * default (port 6379, no user, no password, db 0), never a weaker source's
 * value. REDIS_URL is a fallback that platforms often set for other
 * programs: it is read only when herald is told nothing about where Redis
 * is, so it can neither move nor break a configured herald, nor a
 * single-node one (which never parses it). 4 and 5 together are refused: two
 * URLs in one file.
 *
 * A URL never appears in a message, since it may hold a password: errors
 * name the key, what is wrong and the expected shape.
 *
 * THREADING
 * ---------
 * Called only by the loader, on one thread.
 */
#include "config_internal.h"
#include "protocol/protocol.h"

#include "common/common.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define URL_SHAPE "redis://[[user]:password@]host[:port][/db]"
#define DEFAULT_PORT 6379u

static const char *const field_keys[HD_CFG_REDIS_NFIELDS] = {
    [HD_CFG_REDIS_HOST] = "adapter.redis.host",         [HD_CFG_REDIS_PORT] = "adapter.redis.port",
    [HD_CFG_REDIS_USERNAME] = "adapter.redis.username", [HD_CFG_REDIS_PASSWORD] = "adapter.redis.password",
    [HD_CFG_REDIS_DB] = "adapter.redis.db",
};

static const hd_cfg_row *field_row(hd_cfg_redis_field f)
{
    const hd_cfg_row *row = hd_config__row(field_keys[f]);
    hd_assert(row);
    return row;
}

void hd_config__redis_addr_free(hd_cfg_redis_addr *a)
{
    hd_free(a->host);
    hd_free(a->username);
    hd_free(a->password);
    memset(a, 0, sizeof *a);
}

/* ---- the URL ---- */

static int url_fail(hd_cfg_ctx *ctx, const char *name, const char *why)
{
    return hd_config__fail(ctx, "%s: %s (expected " URL_SHAPE ")", name, why);
}

/* s[0, len) with %XX escapes decoded, as a new string; NULL on a broken
 * escape or an escaped NUL. */
static char *pct_decode(const char *s, size_t len)
{
    char *out = NULL;
    hd_url_decode(s, len, false, &out);
    return out;
}

/* [user]:password, len bytes of s (len 0: no credentials). */
static int parse_userinfo(hd_cfg_ctx *ctx, const char *s, size_t len, const char *name, hd_cfg_redis_addr *out)
{
    if (len == 0)
        return 0;
    const char *colon = memchr(s, ':', len);
    if (!colon)
        return url_fail(ctx, name, "a password alone is written :password@, a user and a password user:password@");
    out->username = pct_decode(s, (size_t)(colon - s));
    out->password = pct_decode(colon + 1, (size_t)(s + len - colon - 1));
    if (!out->username || !out->password)
        return url_fail(ctx, name, "bad %-escape in the user or password (%XX, not %00)");
    if (out->username[0] && !out->password[0])
        return url_fail(ctx, name, "a user needs a password");
    if (strlen(out->username) > field_row(HD_CFG_REDIS_USERNAME)->max ||
        strlen(out->password) > field_row(HD_CFG_REDIS_PASSWORD)->max)
        return url_fail(ctx, name, "the user (at most 255 characters) or the password (at most 1024) is too long");
    return 0;
}

static bool is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
           c == '_';
}

static bool is_ipv6_char(char c)
{
    return isxdigit((unsigned char)c) || c == ':' || c == '.';
}

static bool all_chars(const char *s, size_t len, bool (*ok)(char))
{
    for (size_t i = 0; i < len; i++)
        if (!ok(s[i]))
            return false;
    return true;
}

/* The port after ':' (len bytes), 1..65535. */
static int parse_port(hd_cfg_ctx *ctx, const char *s, size_t len, const char *name, hd_cfg_redis_addr *out)
{
    char text[8];
    uint64_t v = 0;
    if (len == 0 || len >= sizeof text)
        return url_fail(ctx, name, "the port must be a number 1..65535");
    memcpy(text, s, len);
    text[len] = '\0';
    if (!hd_config__parse_uint(text, &v) || v < 1 || v > 65535)
        return url_fail(ctx, name, "the port must be a number 1..65535");
    out->port = (uint32_t)v;
    return 0;
}

/* host[:port] or [v6]:port, len bytes of s. */
static int parse_host_port(hd_cfg_ctx *ctx, const char *s, size_t len, const char *name, hd_cfg_redis_addr *out)
{
    const char *end = s + len, *host = s, *port = NULL;
    size_t hlen;
    if (len && s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (!close)
            return url_fail(ctx, name, "an IPv6 address needs its closing ]");
        host = s + 1;
        hlen = (size_t)(close - host);
        if (close + 1 < end && close[1] != ':')
            return url_fail(ctx, name, "only :port may follow ]");
        port = close + 1 < end ? close + 2 : NULL;
        if (hlen && (!all_chars(host, hlen, is_ipv6_char) || !memchr(host, ':', hlen)))
            return url_fail(ctx, name, "[...] must hold an IPv6 address");
    } else {
        const char *colon = memchr(s, ':', len);
        if (colon && memchr(colon + 1, ':', (size_t)(end - colon - 1)))
            return url_fail(ctx, name, "an IPv6 address goes in brackets, as in redis://[::1]:6379");
        hlen = colon ? (size_t)(colon - s) : len;
        port = colon ? colon + 1 : NULL;
        if (!all_chars(host, hlen, is_name_char))
            return url_fail(ctx, name, "the host may hold only letters, digits, '-', '.' and '_'");
    }
    if (hlen == 0)
        return url_fail(ctx, name, "no host");
    if (hlen > field_row(HD_CFG_REDIS_HOST)->max)
        return url_fail(ctx, name, "the host is too long (at most 255 characters)");
    out->host = hd_strndup(host, hlen);
    return port ? parse_port(ctx, port, (size_t)(end - port), name, out) : 0;
}

/* What follows the host: nothing, "/" or "/<db>". */
static int parse_db(hd_cfg_ctx *ctx, const char *s, const char *name, hd_cfg_redis_addr *out)
{
    if (s[0] == '\0' || strcmp(s, "/") == 0)
        return 0;
    uint64_t v = 0;
    uint64_t max = field_row(HD_CFG_REDIS_DB)->max;
    if (!hd_config__parse_uint(s + 1, &v) || v > max)
        return url_fail(ctx, name, "the db after / must be a number 0..1000000");
    out->db = (uint32_t)v;
    return 0;
}

static int parse_url(hd_cfg_ctx *ctx, const char *url, const char *name, hd_cfg_redis_addr *out)
{
    if (strncasecmp(url, "rediss://", 9) == 0)
        return url_fail(ctx, name, "rediss:// is refused: TLS to Redis is not supported yet");
    if (strncasecmp(url, "redis://", 8) != 0)
        return url_fail(ctx, name, "not a redis:// URL (unix sockets and other schemes are not supported)");
    const char *rest = url + 8;
    if (strpbrk(rest, "?#"))
        return url_fail(ctx, name, "query strings (?...) and fragments (#...) are not supported; in a password, "
                                   "write ? as %3F and # as %23");
    size_t alen = strcspn(rest, "/");
    const char *at = NULL;
    for (size_t i = 0; i < alen; i++)
        if (rest[i] == '@')
            at = rest + i; /* the last one: an unescaped @ in a password still works */
    const char *hostport = at ? at + 1 : rest;
    int rc = parse_userinfo(ctx, rest, at ? (size_t)(at - rest) : 0, name, out);
    if (!rc)
        rc = parse_host_port(ctx, hostport, (size_t)(rest + alen - hostport), name, out);
    return rc ? rc : parse_db(ctx, rest + alen, name, out);
}

int hd_config__redis_url(hd_cfg_ctx *ctx, const char *url, const char *name, hd_cfg_redis_addr *out)
{
    hd_config__redis_addr_free(out);
    int rc = parse_url(ctx, url, name, out);
    if (rc) {
        hd_config__redis_addr_free(out);
        return rc;
    }
    /* a URL is a whole address: what it leaves out is the default */
    if (!out->port)
        out->port = DEFAULT_PORT;
    if (!out->username)
        out->username = hd_strdup("");
    if (!out->password)
        out->password = hd_strdup("");
    for (int f = 0; f < HD_CFG_REDIS_NFIELDS; f++)
        out->has[f] = true;
    return 0;
}

int hd_config__redis_url_key(hd_cfg_ctx *ctx, const cJSON *v, const char *path)
{
    if (cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsString(v)) {
        char got[40];
        hd_config__describe_kind(v, got, sizeof got);
        return hd_config__fail(ctx, "%s: expected a string " URL_SHAPE ", got %s", path, got);
    }
    return hd_config__redis_url(ctx, v->valuestring, path, &ctx->redis_url);
}

/* ---- which source wins ---- */

/* One source: a layer's keys (keys = that layer's row flags) or an address
 * (a URL, database.redis). */
typedef struct source {
    const bool *keys;
    const hd_cfg_redis_addr *addr;
} source;

static bool source_gives(const source *s, hd_cfg_redis_field f)
{
    if (s->keys)
        return s->keys[hd_config__row_index(hd_config__rows, field_row(f))];
    return s->addr->has[f];
}

static void store_field(hd_config *cfg, const hd_cfg_redis_addr *a, hd_cfg_redis_field f)
{
    switch (f) {
    case HD_CFG_REDIS_HOST:
        hd_config__replace(&cfg->adapter.redis.host, a->host);
        break;
    case HD_CFG_REDIS_PORT:
        cfg->adapter.redis.port = (uint16_t)a->port;
        break;
    case HD_CFG_REDIS_USERNAME:
        hd_config__replace(&cfg->adapter.redis.username, a->username);
        break;
    case HD_CFG_REDIS_PASSWORD:
        hd_config__replace(&cfg->adapter.redis.password, a->password);
        break;
    case HD_CFG_REDIS_DB:
        cfg->adapter.redis.db = a->db;
        break;
    case HD_CFG_REDIS_NFIELDS:
        break;
    }
}

/* Each field from the first source that gives it; a key source already
 * wrote its value into cfg, and nothing at all leaves the default. */
static void resolve(hd_config *cfg, const source *src, size_t n)
{
    for (int f = 0; f < HD_CFG_REDIS_NFIELDS; f++)
        for (size_t i = 0; i < n; i++) {
            if (!source_gives(&src[i], (hd_cfg_redis_field)f))
                continue;
            if (src[i].addr)
                store_field(cfg, src[i].addr, (hd_cfg_redis_field)f);
            break;
        }
}

static bool any_gives_host(const source *src, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (source_gives(&src[i], HD_CFG_REDIS_HOST))
            return true;
    return false;
}

static int read_env_url(hd_cfg_ctx *ctx, char *const *env, hd_cfg_redis_addr *out)
{
    const char *v = hd_config__env_get(env, "HERALD_ADAPTER_REDIS_URL");
    return v ? hd_config__redis_url(ctx, v, "HERALD_ADAPTER_REDIS_URL (adapter.redis.url)", out) : 0;
}

/* REDIS_URL; empty counts as unset, as deployments often export it empty. */
static int read_fallback_url(hd_cfg_ctx *ctx, char *const *env, hd_cfg_redis_addr *out)
{
    const char *v = hd_config__env_get(env, "REDIS_URL");
    if (!v || !v[0])
        return 0;
    return hd_config__redis_url(ctx, v,
                                "REDIS_URL (read because adapter.driver is redis and no adapter.redis address is "
                                "configured)",
                                out);
}

/* Redis AUTH takes a password alone or a user and a password. */
static int check_auth(hd_cfg_ctx *ctx)
{
    const hd_config *cfg = ctx->cfg;
    if (cfg->adapter.redis.username && cfg->adapter.redis.username[0] &&
        (!cfg->adapter.redis.password || !cfg->adapter.redis.password[0]))
        return hd_config__fail(ctx, "adapter.redis.username: a user needs a password too (adapter.redis.password)");
    return 0;
}

int hd_config__redis_finish(hd_cfg_ctx *ctx, char *const *env)
{
    if (ctx->redis_url.has[HD_CFG_REDIS_HOST] && ctx->redis_pub_url.has[HD_CFG_REDIS_HOST])
        return hd_config__fail(ctx, "adapter.redis.url: conflicts with adapter.redis.redis_pub_options.url (give "
                                    "only one of them)");
    hd_cfg_redis_addr env_url = {0}, fallback = {0};
    /* strongest first; REDIS_URL last (see the top of this file) */
    const source src[] = {
        {.keys = ctx->env_set}, {.addr = &env_url},           {.keys = ctx->set},
        {.addr = &ctx->redis_url}, {.addr = &ctx->redis_pub_url}, {.addr = &ctx->redis_db},
        {.addr = &fallback},
    };
    const size_t n = sizeof src / sizeof src[0];
    int rc = read_env_url(ctx, env, &env_url);
    bool clustered = ctx->cfg->adapter.driver && strcmp(ctx->cfg->adapter.driver, "redis") == 0;
    if (!rc && clustered && !any_gives_host(src, n - 1))
        rc = read_fallback_url(ctx, env, &fallback);
    if (!rc) {
        resolve(ctx->cfg, src, n);
        rc = check_auth(ctx);
    }
    hd_config__redis_addr_free(&env_url);
    hd_config__redis_addr_free(&fallback);
    return rc;
}
