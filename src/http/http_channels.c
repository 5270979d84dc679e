/* http_channels.c - channel queries and user termination over HTTP:
 * GET /apps/{id}/channels, GET /apps/{id}/channels/{channel},
 * GET /apps/{id}/channels/{channel}/users and
 * POST /apps/{id}/users/{user_id}/terminate_connections
 * (PUSHER_PROTOCOL.md §9.4-§9.7).
 *
 * DESIGN
 * ------
 * Each handler validates the query (info list, channel name, user id) and
 * answers from the cluster-wide views of adapter.h: the channel list from
 * hd_server_foreach_channel() (occupied, client-visible channels only),
 * counts from hd_server_channel_counts() (0 for unknown channels, which
 * are then reported {"occupied":false}), members from
 * hd_server_channel_users() and cached events from
 * hd_server_channel_cache(). user_count is only valid for presence
 * channels (400 otherwise); cache is reported for cache channels only and
 * silently left out for others.
 *
 * THREADING
 * ---------
 * Runs on the io thread that received the request; only thread-safe
 * hd_server_* calls are made and all buffers are local to the call.
 */
#include "http_internal.h"

#include <stdbool.h>
#include <string.h>

#define PRESENCE_PREFIX "presence-"

/* ---- GET /apps/{id}/channels ---- */

typedef struct list_state {
    hd_buf *out;
    bool first;
    unsigned info;
} list_state;

static void list_visit(const char *name, uint32_t subscribers, uint32_t users, void *arg)
{
    list_state *st = arg;
    bool want_users = (st->info & HD_HTTP_INFO_USER_COUNT) != 0;
    bool want_subs = (st->info & HD_HTTP_INFO_SUBSCRIPTION_COUNT) != 0;
    if (!st->first)
        hd_buf_puts(st->out, ",");
    st->first = false;
    hd_buf_json_string(st->out, name, strlen(name));
    hd_buf_puts(st->out, ":{");
    if (want_users)
        hd_buf_printf(st->out, "\"user_count\":%u", (unsigned)users);
    if (want_subs)
        hd_buf_printf(st->out, "%s\"subscription_count\":%u", want_users ? "," : "", (unsigned)subscribers);
    hd_buf_puts(st->out, "}");
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
    if (prefix && prefix[0] == '\0')
        prefix = NULL;
    hd_http__begin(c->res, 200);
    list_state st = {.out = &c->res->body, .first = true, .info = info};
    hd_buf_puts(st.out, "{\"channels\":{");
    hd_server_foreach_channel(c->srv, c->app, prefix, list_visit, &st);
    hd_buf_puts(st.out, "}}");
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

/* Append ,"cache":{"data":"...","ttl":N} or ,"cache":null. */
static void cache_write(hd_http_ctx *c, hd_buf *out)
{
    hd_buf data;
    hd_buf_init(&data);
    uint32_t ttl = 0;
    if (hd_server_channel_cache(c->srv, c->app, c->arg, &data, &ttl)) {
        hd_buf_puts(out, ",\"cache\":{\"data\":");
        hd_buf_json_string(out, data.data ? data.data : "", data.len);
        hd_buf_printf(out, ",\"ttl\":%u}", (unsigned)ttl);
    } else {
        hd_buf_puts(out, ",\"cache\":null");
    }
    hd_buf_deinit(&data);
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
    uint32_t subs = 0, users = 0;
    hd_server_channel_counts(c->srv, c->app, c->arg, &subs, &users);
    hd_buf *out = &c->res->body;
    hd_http__begin(c->res, 200);
    hd_buf_printf(out, "{\"occupied\":%s", subs > 0 ? "true" : "false");
    if (info & HD_HTTP_INFO_USER_COUNT)
        hd_buf_printf(out, ",\"user_count\":%u", (unsigned)users);
    if (info & HD_HTTP_INFO_SUBSCRIPTION_COUNT)
        hd_buf_printf(out, ",\"subscription_count\":%u", (unsigned)subs);
    if ((info & HD_HTTP_INFO_CACHE) && t.cache)
        cache_write(c, out);
    hd_buf_puts(out, "}");
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
    hd_http__begin(c->res, 200);
    hd_server_channel_users(c->srv, c->app, c->arg, &c->res->body);
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
