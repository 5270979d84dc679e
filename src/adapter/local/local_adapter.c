/* local_adapter.c - the single-node adapter: cluster state is this node's
 * registry, publishing is the local fan-out through io-thread inboxes.
 * Also the hd_server_* operations, which route through the adapter so a
 * Redis adapter can replace this one without touching callers.
 *
 * THREADING: any thread.
 */
#include <cjson/cJSON.h>
#include <string.h>

#include "adapter/adapter_internal.h"

#define USER_PREFIX "#server-to-user-"

static void local_publish(hd_adapter *a, hd_app *app, const char *channel, const char *frame, size_t len,
                          const char *except)
{
    hd_fanout_local(a->srv, app, channel, strlen(channel), frame, len, except);
}

static void local_terminate(hd_adapter *a, hd_app *app, const char *user_id)
{
    hd_buf name;
    hd_buf_init(&name);
    hd_buf_printf(&name, USER_PREFIX "%s", user_id);
    hd_terminate_local(a->srv, app, name.data, name.len);
    hd_buf_deinit(&name);
}

static void local_counts(hd_adapter *a, hd_app *app, const char *channel, uint32_t *subs, uint32_t *users)
{
    (void)a;
    *subs = *users = 0;
    hd_channel *ch = hd_registry_acquire(app->registry, channel, strlen(channel), false);
    if (ch)
        hd_channel_counts(ch, subs, users);
    hd_registry_release(app->registry, ch);
}

static void local_users(hd_adapter *a, hd_app *app, const char *channel, hd_buf *out)
{
    (void)a;
    hd_channel *ch = hd_registry_acquire(app->registry, channel, strlen(channel), false);
    if (ch)
        hd_channel_users_json(ch, out);
    else
        hd_buf_puts(out, "{\"users\":[]}");
    hd_registry_release(app->registry, ch);
}

static bool local_member_present(hd_adapter *a, hd_app *app, const char *channel, const char *user_id)
{
    (void)a;
    hd_channel *ch = hd_registry_acquire(app->registry, channel, strlen(channel), false);
    bool present = ch && hd_channel_has_member(ch, user_id, strlen(user_id));
    hd_registry_release(app->registry, ch);
    return present;
}

typedef struct visit_ctx {
    hd_channel_visit_fn fn;
    void *arg;
} visit_ctx;

static void visit(hd_channel *ch, void *arg)
{
    visit_ctx *v = arg;
    if (hd_channel_name(ch)[0] == '#') /* internal and per-user channels are not listed */
        return;
    uint32_t subs, users;
    hd_channel_counts(ch, &subs, &users);
    if (subs)
        v->fn(hd_channel_name(ch), subs, users, v->arg);
}

static void local_foreach(hd_adapter *a, hd_app *app, const char *prefix, hd_channel_visit_fn fn, void *arg)
{
    (void)a;
    visit_ctx v = {fn, arg};
    hd_registry_foreach_occupied(app->registry, prefix, visit, &v);
}

static void local_destroy(hd_adapter *a)
{
    hd_free(a);
}

static const hd_adapter_ops local_ops = {
    .abi = HD_ADAPTER_ABI,
    .name = "local",
    .publish = local_publish,
    .terminate_user = local_terminate,
    .channel_counts = local_counts,
    .channel_users = local_users,
    .member_present = local_member_present,
    .foreach_channel = local_foreach,
    .destroy = local_destroy,
};

hd_adapter *hd_adapter_local_create(hd_server *srv)
{
    hd_adapter *a = hd_calloc(1, sizeof *a);
    a->ops = &local_ops;
    a->srv = srv;
    return a;
}

/* ---- hd_server_* operations ---- */

void hd_server_publish_frame(hd_server *srv, hd_app *app, const char *channel, const char *frame, size_t len,
                             const char *except_socket_id)
{
    srv->adapter->ops->publish(srv->adapter, app, channel, frame, len, except_socket_id);
}

static void cache_store(hd_server *srv, hd_app *app, const char *channel, const hd_buf *frame)
{
    hd_channel *ch = hd_registry_acquire(app->registry, channel, strlen(channel), true);
    uint64_t ttl_ms = (uint64_t)srv->cfg->channel_limits.cache_ttl * 1000u;
    hd_channel_cache_store(ch, frame->data, frame->len, hd_mono_ms() + ttl_ms);
    hd_registry_release(app->registry, ch);
}

void hd_server_publish(hd_server *srv, hd_app *app, const char *channel, const char *name, const char *data,
                       size_t data_len, const char *except_socket_id)
{
    hd_buf frame;
    hd_buf_init(&frame);
    hd_frame_event(&frame, name, channel, data, data_len);
    hd_channel_type t;
    if (hd_channel_classify(channel, strlen(channel), strlen(channel), &t) == 0 && t.cache)
        cache_store(srv, app, channel, &frame);
    hd_server_publish_frame(srv, app, channel, frame.data, frame.len, except_socket_id);
    hd_buf_deinit(&frame);
}

void hd_server_terminate_user(hd_server *srv, hd_app *app, const char *user_id)
{
    srv->adapter->ops->terminate_user(srv->adapter, app, user_id);
}

void hd_server_channel_counts(hd_server *srv, hd_app *app, const char *channel, uint32_t *subscribers,
                              uint32_t *users)
{
    uint32_t s = 0, u = 0;
    srv->adapter->ops->channel_counts(srv->adapter, app, channel, &s, &u);
    if (subscribers)
        *subscribers = s;
    if (users)
        *users = u;
}

void hd_server_channel_users(hd_server *srv, hd_app *app, const char *channel, hd_buf *out)
{
    srv->adapter->ops->channel_users(srv->adapter, app, channel, out);
}

bool hd_server_member_present(hd_server *srv, hd_app *app, const char *channel, const char *user_id)
{
    return srv->adapter->ops->member_present(srv->adapter, app, channel, user_id);
}

void hd_server_foreach_channel(hd_server *srv, hd_app *app, const char *prefix, hd_channel_visit_fn fn, void *arg)
{
    srv->adapter->ops->foreach_channel(srv->adapter, app, prefix, fn, arg);
}

bool hd_server_channel_cache(hd_server *srv, hd_app *app, const char *channel, hd_buf *out, uint32_t *ttl_s)
{
    (void)srv;
    hd_channel *ch = hd_registry_acquire(app->registry, channel, strlen(channel), false);
    hd_buf frame;
    hd_buf_init(&frame);
    uint64_t ttl_ms = 0;
    bool hit = ch && hd_channel_cache_load(ch, hd_mono_ms(), &frame, &ttl_ms);
    hd_registry_release(app->registry, ch);
    if (hit) {
        cJSON *root = cJSON_ParseWithLength(frame.data, frame.len);
        cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "data");
        hit = cJSON_IsString(data);
        if (hit)
            hd_buf_puts(out, data->valuestring);
        cJSON_Delete(root);
        if (ttl_s)
            *ttl_s = (uint32_t)((ttl_ms + 999) / 1000);
    }
    hd_buf_deinit(&frame);
    return hit;
}
