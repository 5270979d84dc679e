/* http_channels.c - channel queries and user termination over HTTP:
 * GET /apps/{id}/channels, GET /apps/{id}/channels/{channel},
 * GET /apps/{id}/channels/{channel}/users and
 * POST /apps/{id}/users/{user_id}/terminate_connections
 * (PUSHER_PROTOCOL.md §9.4-§9.7).
 *
 * DESIGN
 * ------
 * Each handler validates the query (info list, channel name, user id) and
 * answers from the adapter's reads (adapter.h, HD_AD_READ_*): the same
 * answer on every node of a cluster. The local adapter answers at once;
 * a cluster adapter later, and the front end parks the request until
 * then (hd_http_response.pending, finished by the *_finish functions).
 * Unknown channels are reported {"occupied":false}; user_count is only
 * valid for presence channels (400 otherwise); cache is reported for
 * cache channels only and silently left out for others; a cluster that
 * cannot answer gives 503 with Retry-After.
 *
 * THREADING
 * ---------
 * Runs on the io thread that received the request; only thread-safe
 * hd_server_* calls are made and all buffers are local to the call.
 */
#include "http_internal.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define PRESENCE_PREFIX "presence-"

/* ---- the cluster's answer ---- */

/* Ask the adapter: at once when it can (local), else the front end parks
 * the request and calls finish with the reply (hd_http_api_finish). */
static void cluster_read(hd_http_ctx *c, enum hd_ad_read what, const char *arg, unsigned info,
                         void (*finish)(hd_http_response *res, const hd_ad_reply *r))
{
    hd_adapter *a = hd_server_adapter(c->srv);
    c->res->read_info = info;
    c->res->read_arg = hd_strdup(arg ? arg : "");
    if (a->ops->read_now) {
        hd_ad_reply *r = a->ops->read_now(a, c->app, what, c->res->read_arg);
        finish(c->res, r);
        hd_ad_reply_free(r);
        hd_free(c->res->read_arg);
        c->res->read_arg = NULL;
        return;
    }
    c->res->pending = true;
    c->res->read_app = c->app;
    c->res->read_what = what;
    c->res->finish = finish;
}

/* false after answering 503: the cluster could not answer. */
static bool reply_ok(hd_http_response *res, const hd_ad_reply *r)
{
    if (r->status == HD_AD_OK)
        return true;
    hd_http__error(res, 503, "Cluster state unavailable: try again shortly");
    res->retry_after_s = 1;
    return false;
}

/* ---- GET /apps/{id}/channels ---- */

/* The reply's body: one "name\tsubscribers\tusers\n" per channel. */
static void channels_finish(hd_http_response *res, const hd_ad_reply *r)
{
    if (!reply_ok(res, r))
        return;
    bool want_users = (res->read_info & HD_HTTP_INFO_USER_COUNT) != 0;
    bool want_subs = (res->read_info & HD_HTTP_INFO_SUBSCRIPTION_COUNT) != 0;
    hd_http__begin(res, 200);
    hd_buf *out = &res->body;
    hd_buf_puts(out, "{\"channels\":{");
    const char *p = r->body.data ? r->body.data : "", *end = p + r->body.len;
    bool first = true;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *tab = memchr(p, '\t', (size_t)((nl ? nl : end) - p));
        if (!tab)
            break;
        unsigned subs = 0, users = 0;
        sscanf(tab + 1, "%u\t%u", &subs, &users);
        hd_buf_puts(out, first ? "" : ",");
        first = false;
        hd_buf_json_string(out, p, (size_t)(tab - p));
        hd_buf_puts(out, ":{");
        if (want_users)
            hd_buf_printf(out, "\"user_count\":%u", users);
        if (want_subs)
            hd_buf_printf(out, "%s\"subscription_count\":%u", want_users ? "," : "", subs);
        hd_buf_puts(out, "}");
        p = nl ? nl + 1 : end;
    }
    hd_buf_puts(out, "}}");
}

void hd_http__channels(hd_http_ctx *c)
{
    const char *prefix = hd_params_get(c->params, "filter_by_prefix");
    unsigned info = hd_http__parse_info(hd_params_get(c->params, "info"));
    bool presence_filter = prefix && strncmp(prefix, PRESENCE_PREFIX, strlen(PRESENCE_PREFIX)) == 0;
    if ((info & HD_HTTP_INFO_USER_COUNT) && !presence_filter) {
        hd_http__error(c->res, 400, "user_count may only be requested with filter_by_prefix=presence-");
        return;
    }
    cluster_read(c, HD_AD_READ_CHANNELS, prefix, info, channels_finish);
}

/* ---- GET /apps/{id}/channels/{channel}[/users] ---- */

/* Validate the {channel} segment into *t; false after replying 400. */
static bool channel_arg(hd_http_ctx *c, hd_channel_type *t)
{
    int rc = c->arg ? hd_channel_classify(c->arg, strlen(c->arg), c->cfg->max_channel_name_length, t) : HD_EINVAL;
    if (rc == HD_ELIMIT) {
        hd_http__error(c->res, 400, "Channel name too long (max %u characters)",
                       (unsigned)c->cfg->max_channel_name_length);
        return false;
    }
    if (rc != 0 || t->kind == HD_CHANNEL_SERVER_TO_USER) { /* per-user channels are not channels to query */
        hd_http__error(c->res, 400, "Invalid channel name");
        return false;
    }
    return true;
}

/* Append ,"cache":{"data":"...","ttl":N} from the cached frame, or ,"cache":null. */
static void cache_write(const hd_ad_reply *r, hd_buf *out)
{
    cJSON *root = r->cache.len ? cJSON_ParseWithLength(r->cache.data, r->cache.len) : NULL;
    cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "data");
    if (cJSON_IsString(data)) {
        hd_buf_puts(out, ",\"cache\":{\"data\":");
        hd_buf_json_string(out, data->valuestring, strlen(data->valuestring));
        hd_buf_printf(out, ",\"ttl\":%u}", (unsigned)r->cache_ttl_s);
    } else {
        hd_buf_puts(out, ",\"cache\":null");
    }
    cJSON_Delete(root);
}

#define INFO_CACHE_CHANNEL (1u << 30) /* read_info: the channel is a cache channel */

static void channel_finish(hd_http_response *res, const hd_ad_reply *r)
{
    if (!reply_ok(res, r))
        return;
    unsigned info = res->read_info;
    hd_http__begin(res, 200);
    hd_buf *out = &res->body;
    hd_buf_printf(out, "{\"occupied\":%s", r->subscribers > 0 ? "true" : "false");
    if (info & HD_HTTP_INFO_USER_COUNT)
        hd_buf_printf(out, ",\"user_count\":%u", (unsigned)r->users);
    if (info & HD_HTTP_INFO_SUBSCRIPTION_COUNT)
        hd_buf_printf(out, ",\"subscription_count\":%u", (unsigned)r->subscribers);
    if ((info & HD_HTTP_INFO_CACHE) && (info & INFO_CACHE_CHANNEL))
        cache_write(r, out);
    hd_buf_puts(out, "}");
}

void hd_http__channel(hd_http_ctx *c)
{
    hd_channel_type t;
    if (!channel_arg(c, &t))
        return;
    unsigned info = hd_http__parse_info(hd_params_get(c->params, "info"));
    if ((info & HD_HTTP_INFO_USER_COUNT) && t.kind != HD_CHANNEL_PRESENCE) {
        hd_http__error(c->res, 400, "user_count may only be requested for presence channels");
        return;
    }
    cluster_read(c, HD_AD_READ_CHANNEL, c->arg, info | (t.cache ? INFO_CACHE_CHANNEL : 0), channel_finish);
}

static void users_finish(hd_http_response *res, const hd_ad_reply *r)
{
    if (!reply_ok(res, r))
        return;
    hd_http__begin(res, 200);
    if (r->body.len)
        hd_buf_append(&res->body, r->body.data, r->body.len);
    else
        hd_buf_puts(&res->body, "{\"users\":[]}");
}

void hd_http__channel_users(hd_http_ctx *c)
{
    hd_channel_type t;
    if (!channel_arg(c, &t))
        return;
    if (t.kind != HD_CHANNEL_PRESENCE) {
        hd_http__error(c->res, 400, "Users can only be retrieved for presence channels");
        return;
    }
    cluster_read(c, HD_AD_READ_USERS, c->arg, 0, users_finish);
}

/* ---- POST /apps/{id}/users/{user_id}/terminate_connections ---- */

void hd_http__terminate(hd_http_ctx *c)
{
    if (!c->arg || !hd_user_id_valid(c->arg, strlen(c->arg))) {
        hd_http__error(c->res, 400, "Invalid user id");
        return;
    }
    hd_server_terminate_user(c->srv, c->app, c->arg);
    hd_http__reply(c->res, 200, "{}");
}
