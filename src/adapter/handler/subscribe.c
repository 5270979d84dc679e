/* subscribe.c - pusher:subscribe and pusher:unsubscribe (§3, §4.1-§4.3, §5, §6).
 *
 * DESIGN
 * ------
 * Validate the name, then authorise (constant-time HMAC over the exact
 * channel_data bytes, verified before anything is parsed), then join the
 * registry under the channel's short lock, link the local index, reply,
 * and only then tell others (member_added, subscription_count, webhooks).
 * A failed subscription never closes the socket.
 *
 * THREADING: the session's io thread only.
 */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "adapter/adapter_internal.h"
#include "webhooks/webhooks.h"

static void subscription_error(hd_session *s, const char *channel, const char *type, const char *error, int status)
{
    hd_buf b;
    hd_buf_init(&b);
    hd_frame_subscription_error(&b, channel, type, error, status);
    hd_session_send_text(s, b.data, b.len);
    hd_buf_deinit(&b);
    char key[40]; /* type is one of four literals: the keys stay few */
    snprintf(key, sizeof key, "subscription %s", type);
    hd_session_log_refusal(s, key, channel, "%s (status %d)", error, status);
}

/* A subscribe request decoded and authorised, ready to join. */
typedef struct sub_request {
    const char *channel;
    size_t len;
    hd_channel_type type;
    char *user_key;       /* presence */
    char *user_id_json;   /* presence */
    char *user_info_json; /* presence, may stay NULL */
} sub_request;

static void sub_request_free(sub_request *r)
{
    hd_free(r->user_key);
    hd_free(r->user_id_json);
    cJSON_free(r->user_info_json);
}

static bool verify_auth(hd_session *s, const sub_request *r, cJSON *data, const char *channel_data)
{
    cJSON *auth = cJSON_GetObjectItemCaseSensitive(data, "auth");
    const char *a = cJSON_IsString(auth) ? auth->valuestring : "";
    hd_buf signed_str;
    hd_buf_init(&signed_str);
    hd_buf_printf(&signed_str, "%s:%s", s->socket_id, r->channel);
    if (channel_data)
        hd_buf_printf(&signed_str, ":%s", channel_data);
    const hd_app_config *cfg = hd_app_cfg(s->app); /* key and secret of one version */
    int rc = hd_auth_verify(a, strlen(a), cfg->key, cfg->secret, signed_str.data, signed_str.len);
    if (rc) {
        hd_buf msg;
        hd_buf_init(&msg);
        int shown = (int)hd_utf8_prefix(a, strlen(a), 100); /* the frame must stay UTF-8 */
        if (!*a)
            hd_buf_puts(&msg, "Auth value for subscription is missing");
        else if (rc == HD_EINVAL)
            hd_buf_printf(&msg, "Invalid key in subscription auth data: '%.*s'", shown, a);
        else
            hd_buf_printf(&msg, "Invalid signature: Expected HMAC SHA256 hex digest of %s, but got %.*s",
                          signed_str.data, shown, a);
        subscription_error(s, r->channel, "AuthError", msg.data, 401);
        hd_buf_deinit(&msg);
    }
    hd_buf_deinit(&signed_str);
    return rc == 0;
}

/* user_id as the dedup key (string form) and as raw JSON (type kept). */
static bool presence_user_id(cJSON *uid, sub_request *r)
{
    if (cJSON_IsString(uid) && uid->valuestring[0] && strlen(uid->valuestring) <= 128) {
        r->user_key = hd_strdup(uid->valuestring);
        r->user_id_json = cJSON_PrintUnformatted(uid);
    } else if (cJSON_IsNumber(uid) && isfinite(uid->valuedouble)) { /* 1e400 would print as null */
        /* the JSON text cJSON prints (integers as integers) is both the
         * echoed value and the dedup key */
        r->user_id_json = cJSON_PrintUnformatted(uid);
        r->user_key = r->user_id_json ? hd_strdup(r->user_id_json) : NULL;
    } else {
        return false;
    }
    if (!r->user_id_json) /* cJSON allocation failure */
        hd_assert(!"out of memory");
    return true;
}

static bool presence_member(hd_session *s, sub_request *r, const char *channel_data)
{
    cJSON *cd = cJSON_Parse(channel_data);
    cJSON *uid = cJSON_GetObjectItemCaseSensitive(cd, "user_id");
    bool ok = cJSON_IsObject(cd) && presence_user_id(uid, r);
    if (!ok) {
        subscription_error(s, r->channel, "InvalidChannelData", "channel_data must be a JSON object with a user_id",
                           400);
        cJSON_Delete(cd);
        return false;
    }
    cJSON *info = cJSON_GetObjectItemCaseSensitive(cd, "user_info");
    if (info && !cJSON_IsNull(info))
        r->user_info_json = cJSON_PrintUnformatted(info);
    cJSON_Delete(cd);
    size_t max = (size_t)hd_app_cfg(s->app)->max_presence_member_size_in_kb * 1024u;
    if (r->user_info_json && strlen(r->user_info_json) > max) {
        subscription_error(s, r->channel, "LimitReached", "user_info is larger than the presence member limit",
                           HD_CLOSE_OVER_CAPACITY);
        return false;
    }
    return true;
}

/* Presence without channel_data from a signed-in socket (pusher-js >= 8):
 * signed like a private channel, the member is the signed-in user. */
static bool presence_from_signin(hd_session *s, sub_request *r)
{
    cJSON *uid = s->user_id_numeric ? cJSON_CreateNumber(strtod(s->user_id, NULL)) : cJSON_CreateString(s->user_id);
    bool ok = presence_user_id(uid, r);
    cJSON_Delete(uid);
    if (ok && s->user_info_json)
        r->user_info_json = hd_strdup(s->user_info_json);
    return ok;
}

static bool authorise(hd_session *s, sub_request *r, cJSON *data)
{
    switch (r->type.kind) {
    case HD_CHANNEL_PUBLIC:
        return true;
    case HD_CHANNEL_SERVER_TO_USER:
        if (s->user_id && !strcmp(s->user_id, hd_channel_user_id(r->channel)))
            return true;
        subscription_error(s, r->channel, "AuthError", "Not signed in as the user of this channel", 401);
        return false;
    case HD_CHANNEL_PRIVATE:
    case HD_CHANNEL_PRIVATE_ENCRYPTED:
        return verify_auth(s, r, data, NULL);
    case HD_CHANNEL_PRESENCE: {
        cJSON *cd = cJSON_GetObjectItemCaseSensitive(data, "channel_data");
        if (!cJSON_IsString(cd)) {
            if (!cd && s->user_id)
                return verify_auth(s, r, data, NULL) && presence_from_signin(s, r);
            subscription_error(s, r->channel, "InvalidChannelData", "Presence channels need channel_data", 400);
            return false;
        }
        return verify_auth(s, r, data, cd->valuestring) && presence_member(s, r, cd->valuestring);
    }
    }
    return false;
}

static void send_cache(hd_session *s, hd_channel *ch)
{
    hd_buf b;
    hd_buf_init(&b);
    if (hd_channel_cache_load(ch, hd_mono_ms(), &b, NULL)) {
        hd_session_send_text(s, b.data, b.len);
    } else {
        hd_frame_cache_miss(&b, hd_channel_name(ch));
        hd_session_send_text(s, b.data, b.len);
        if (hd_channel_cache_miss_first(ch))
            hd_webhooks_cache_miss(s->io->srv->webhooks, s->app->index, hd_channel_name(ch));
    }
    hd_buf_deinit(&b);
}

static void send_succeeded(hd_session *s, const char *channel, const hd_buf *presence)
{
    hd_buf b;
    hd_buf_init(&b);
    hd_frame_subscription_succeeded(&b, channel, presence->len ? presence->data : NULL, presence->len);
    hd_session_send_text(s, b.data, b.len);
    hd_buf_deinit(&b);
}

/* In a cluster (hd_server_clustered) every subscription waits for the cluster's reply
 * (hd_subscribe_on_reply): it carries the snapshot, the presence limit
 * and the cached event, it comes in order with the channel's messages
 * from other nodes (so none published after the join is missed), and the
 * webhooks the join crossed are reported before it. */
static void join(hd_session *s, sub_request *r)
{
    hd_app *app = s->app;
    bool clustered = hd_server_clustered(s->io->srv);
    hd_channel *ch = hd_registry_acquire(app->registry, r->channel, r->len, true);
    hd_member m = {r->user_key, r->user_key ? strlen(r->user_key) : 0, r->user_id_json,
                   r->user_id_json ? strlen(r->user_id_json) : 0, r->user_info_json,
                   r->user_info_json ? strlen(r->user_info_json) : 0};
    /* in a cluster the registry holds this node's members only: the limit is the cluster's */
    uint32_t max_members = clustered ? 0 : hd_app_cfg(app)->max_presence_members_per_channel;
    hd_buf presence;
    hd_buf_init(&presence);
    hd_join_result jr;
    hd_channel_order_lock(ch);
    if (hd_channel_join(ch, s->io->index, &m, max_members, clustered ? NULL : &presence, &jr)) {
        hd_channel_order_unlock(ch);
        subscription_error(s, r->channel, "LimitReached", "The presence channel is full", HD_CLOSE_OVER_CAPACITY);
        hd_registry_release(app->registry, ch);
        hd_buf_deinit(&presence);
        return;
    }
    hd_sub *sub = hd_local_add(s, ch);
    sub->by_client = true;
    sub->user_key = r->user_key;
    sub->user_id_json = r->user_id_json;
    r->user_key = r->user_id_json = NULL;
    if (clustered) {
        sub->wait_token = hd_wait_add(s->io, HD_WAIT_JOIN, sub, NULL);
    } else {
        send_succeeded(s, r->channel, &presence);
        if (r->type.cache)
            send_cache(s, ch);
    }
    hd_membership_joined(s, ch, &jr, m.user_key ? &m : NULL, sub->wait_token);
    hd_channel_order_unlock(ch); /* the subscription's reference keeps ch alive */
    hd_buf_deinit(&presence);
}

static void leave_sub(hd_sub *sub)
{
    hd_session *s = sub->session;
    hd_channel *ch = sub->ch;
    char *user_key = sub->user_key, *user_id_json = sub->user_id_json;
    sub->user_key = sub->user_id_json = NULL;
    hd_local_remove(sub);
    hd_membership_leave(s->io->srv, s->app, s->io->index, ch, user_key, user_id_json);
    hd_free(user_key);
    hd_free(user_id_json);
}

void hd_subscribe_on_reply(hd_sub *sub, const hd_ad_reply *r)
{
    hd_session *s = sub->session;
    sub->wait_token = 0;
    const char *channel = hd_channel_name(sub->ch);
    if (r->status == HD_AD_LIMIT) {
        subscription_error(s, channel, "LimitReached", "The presence channel is full", HD_CLOSE_OVER_CAPACITY);
        leave_sub(sub);
        return;
    }
    send_succeeded(s, channel, &r->presence);
    if (!hd_channel_get_type(sub->ch).cache)
        return;
    if (r->cache.len) {
        hd_session_send_text(s, r->cache.data, r->cache.len);
    } else {
        hd_buf b;
        hd_buf_init(&b);
        hd_frame_cache_miss(&b, channel);
        hd_session_send_text(s, b.data, b.len);
        hd_buf_deinit(&b);
    }
}

void hd_handle_subscribe(hd_session *s, cJSON *data)
{
    cJSON *channel = cJSON_GetObjectItemCaseSensitive(data, "channel");
    if (!cJSON_IsString(channel))
        return hd_session_send_error(s, 0, "Invalid subscribe: channel must be a string");
    sub_request r = {.channel = channel->valuestring, .len = strlen(channel->valuestring)};
    if (hd_channel_classify(r.channel, r.len, hd_app_cfg(s->app)->max_channel_name_length, &r.type) != 0)
        return subscription_error(s, r.channel, "InvalidChannel", "Invalid channel name", 400);
    hd_sub *existing = hd_session_find_sub(s, r.channel, r.len);
    if (existing && existing->by_client) {
        hd_buf msg;
        hd_buf_init(&msg);
        hd_buf_printf(&msg, "Existing subscription to channel %s", r.channel);
        hd_session_send_error(s, 0, msg.data);
        hd_buf_deinit(&msg);
        return;
    }
    if (!existing && s->n_subs >= s->io->srv->cfg->max_subscriptions_per_connection) {
        subscription_error(s, r.channel, "LimitReached", "Too many subscriptions on this connection", HD_CLOSE_OVER_CAPACITY);
        return;
    }
    if (authorise(s, &r, data)) {
        if (existing) { /* #server-to-user-{id}: already joined by signin */
            existing->by_client = true;
            hd_buf none = {0};
            send_succeeded(s, r.channel, &none);
        } else {
            join(s, &r);
        }
    }
    sub_request_free(&r);
}

void hd_handle_unsubscribe(hd_session *s, cJSON *data)
{
    cJSON *channel = cJSON_GetObjectItemCaseSensitive(data, "channel");
    if (!cJSON_IsString(channel))
        return hd_session_send_error(s, 0, "Invalid unsubscribe: channel must be a string");
    hd_sub *sub = hd_session_find_sub(s, channel->valuestring, strlen(channel->valuestring));
    if (!sub || !sub->by_client)
        return; /* §3: nothing, silently */
    if (hd_channel_get_type(sub->ch).kind == HD_CHANNEL_SERVER_TO_USER) {
        sub->by_client = false; /* still signed in: keep receiving as the user */
        return;
    }
    leave_sub(sub);
}
