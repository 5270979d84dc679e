/* config_sockudo.c - sockudo's way of giving the Redis address, mapped onto
 * adapter.redis.host / port.
 *
 * DESIGN
 * ------
 * sockudo takes the adapter's Redis address from database.redis.host/port,
 * or from adapter.redis.redis_pub_options.url when that is set (the URL
 * wins); its prefix is adapter.redis.prefix, which is herald's key too.
 * herald's own adapter.redis.host / port win over both. The rest of
 * database is ignored with one warning, like the other sockudo sections.
 *
 * THREADING
 * ---------
 * Called only by the loader, on one thread.
 */
#include "config_internal.h"

#include "common/common.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* database.redis keys herald uses; they are stored in the load context. */
static const hd_cfg_row db_rows[] = {
    {.path = "host", .type = HD_CFG_STR, .offset = offsetof(hd_cfg_ctx, db_redis_host), .min = 1, .max = 255},
    {.path = "port", .type = HD_CFG_U32, .offset = offsetof(hd_cfg_ctx, db_redis_port), .min = 1, .max = 65535},
    {0},
};

int hd_config__sockudo_database(hd_cfg_ctx *ctx, const cJSON *v, const char *path)
{
    if (cJSON_IsNull(v))
        return 0;
    char got[80];
    hd_config__describe(v, got, sizeof got);
    if (!cJSON_IsObject(v))
        return hd_config__fail(ctx, "%s: expected an object, got %s", path, got);
    const cJSON *redis = cJSON_GetObjectItemCaseSensitive(v, "redis");
    bool used = false;
    for (const hd_cfg_row *row = db_rows; cJSON_IsObject(redis) && row->path; row++) {
        const cJSON *item = cJSON_GetObjectItemCaseSensitive(redis, row->path);
        if (!item || cJSON_IsNull(item))
            continue;
        char name[64];
        snprintf(name, sizeof name, "%s.redis.%s", path, row->path);
        int rc = hd_config__set_json(ctx, row, ctx, item, name);
        if (rc)
            return rc;
        used = true;
    }
    hd_config__warn_ignored(ctx, path, used ? "; database.redis.host/port are used as the redis adapter's address"
                                            : NULL);
    return 0;
}

/* host[:port] or [v6]:port, len bytes of s. */
static int split_host_port(hd_cfg_ctx *ctx, const char *s, size_t len, const char *path)
{
    const char *host = s, *port = NULL;
    size_t hlen = len;
    if (len && s[0] == '[') {
        const char *close = memchr(s, ']', len);
        host = s + 1;
        hlen = close ? (size_t)(close - host) : 0;
        port = close && close + 1 < s + len && close[1] == ':' ? close + 2 : NULL;
    } else {
        for (size_t i = len; i-- > 0;)
            if (s[i] == ':') {
                hlen = i;
                port = s + i + 1;
                break;
            }
    }
    char ptext[16] = "6379";
    if (port)
        snprintf(ptext, sizeof ptext, "%.*s", (int)(s + len - port), port);
    uint64_t pv = 0;
    if (!hlen || !hd_config__parse_uint(ptext, &pv) || pv < 1 || pv > 65535)
        return hd_config__fail(ctx, "%s: cannot read host and port (1..65535) from the URL", path);
    hd_free(ctx->url_redis_host);
    ctx->url_redis_host = hd_strndup(host, hlen);
    ctx->url_redis_port = (uint32_t)pv;
    return 0;
}

/* redis://[user[:password]@]host[:port][/db] */
static int parse_url(hd_cfg_ctx *ctx, const cJSON *v, const char *path)
{
    const char *s = cJSON_IsString(v) ? v->valuestring : NULL;
    if (!s || strncasecmp(s, "redis://", 8) != 0)
        return hd_config__fail(ctx, "%s: expected redis://[user:password@]host[:port][/db] (rediss:// and unix "
                                    "sockets are not supported by herald)", path);
    const char *rest = s + 8;
    size_t alen = strcspn(rest, "/?#");
    const char *at = NULL;
    for (size_t i = 0; i < alen; i++)
        if (rest[i] == '@')
            at = rest + i;
    char what[300];
    if (at) {
        snprintf(what, sizeof what, "%s credentials", path);
        hd_config__warn_ignored(ctx, what, NULL);
    }
    const char *hp = at ? at + 1 : rest;
    int rc = split_host_port(ctx, hp, (size_t)(rest + alen - hp), path);
    const char *db = rest + alen;
    if (!rc && db[0] == '/' && db[1] && strcmp(db, "/0") != 0) {
        snprintf(what, sizeof what, "%s database number", path);
        hd_config__warn_ignored(ctx, what, NULL);
    }
    return rc;
}

int hd_config__sockudo_pub_options(hd_cfg_ctx *ctx, const cJSON *v, const char *path)
{
    if (cJSON_IsNull(v))
        return 0;
    char got[80];
    hd_config__describe(v, got, sizeof got);
    if (!cJSON_IsObject(v))
        return hd_config__fail(ctx, "%s: expected an object, got %s", path, got);
    int rc = hd_config__check_dupes(ctx, v, path);
    for (const cJSON *m = v->child; m && !rc; m = m->next) {
        char p[256];
        hd_config__join(p, sizeof p, path, m->string);
        if (strcmp(m->string, "url") == 0)
            rc = parse_url(ctx, m, p);
        else
            hd_config__warn_ignored(ctx, p, NULL);
    }
    return rc;
}

void hd_config__sockudo_finish(hd_cfg_ctx *ctx)
{
    hd_config *cfg = ctx->cfg;
    const hd_cfg_row *host = hd_config__row("adapter.redis.host");
    const hd_cfg_row *port = hd_config__row("adapter.redis.port");
    hd_assert(host && port);
    const char *h = ctx->url_redis_host ? ctx->url_redis_host : ctx->db_redis_host;
    uint32_t p = ctx->url_redis_host ? ctx->url_redis_port : ctx->db_redis_port;
    if (h && !ctx->set[hd_config__row_index(hd_config__rows, host)])
        hd_config__replace(&cfg->adapter.redis.host, h);
    if (p && !ctx->set[hd_config__row_index(hd_config__rows, port)])
        cfg->adapter.redis.port = (uint16_t)p;
}
