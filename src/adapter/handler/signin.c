/* signin.c - pusher:signin (§6.3): user authentication, the user's
 * #server-to-user-{id} membership (server-to-user delivery, terminate) and
 * the watchlist (§4.5).
 *
 * DESIGN
 * ------
 * A signed-in socket joins the registry channel #server-to-user-{id}
 * itself, so sendToUser is an ordinary publish on that channel, terminate
 * is a fan-out on it, and its subscriber count is the user's number of
 * signed-in connections (0 <-> 1 drives watchlist online/offline). A
 * watcher joins the internal channel #watch-{id} of each watched user.
 * '#' names other than #server-to-user- are invalid from clients, so
 * internal channels cannot be subscribed to or published on from outside.
 *
 * THREADING: the session's io thread only.
 */
#include <cjson/cJSON.h>
#include <string.h>

#include "adapter/adapter_internal.h"

#define WATCHLIST_MAX 100

static void signin_fail(hd_session *s, const char *why)
{
    hd_session_fail(s, HD_CLOSE_UNAUTHORIZED, why);
}

/* A wrong key or signature. Like a failed channel auth (subscribe.c) the
 * pusher:error shows the string that should have been signed, so the
 * mismatch can be found from the client; the close reason stays the short
 * fixed text (a close frame holds 123 bytes, and lws sends it later). */
static void signin_bad_signature(hd_session *s, const char *auth, const char *signed_str)
{
    hd_buf msg;
    hd_buf_init(&msg);
    int shown = (int)hd_utf8_prefix(auth, strlen(auth), 100); /* the frame must stay UTF-8 */
    hd_buf_printf(&msg, "Invalid signature for user authentication: Expected HMAC SHA256 hex digest of %s, but got %.*s",
                  signed_str, shown, auth);
    hd_session_fail_full(s, HD_CLOSE_UNAUTHORIZED, msg.data, "Invalid signature for user authentication", NULL);
    hd_buf_deinit(&msg);
}

/* Join an internal channel as a non-client membership; wait_token != 0
 * asks the cluster for a reply (the sign-in's). */
static void join_internal(hd_session *s, const char *prefix, const char *user_id, uint64_t wait_token)
{
    hd_buf name;
    hd_buf_init(&name);
    hd_buf_printf(&name, "%s%s", prefix, user_id);
    if (!hd_session_find_sub(s, name.data, name.len)) {
        hd_app *app = s->app;
        hd_channel *ch = hd_registry_acquire(app->registry, name.data, name.len, true);
        hd_join_result jr;
        hd_channel_order_lock(ch);
        hd_channel_join(ch, s->io->index, NULL, 0, NULL, &jr);
        hd_local_add(s, ch);
        hd_membership_joined(s, ch, &jr, NULL, wait_token);
        hd_channel_order_unlock(ch);
    }
    hd_buf_deinit(&name);
}

/* The initial state: who of ids ('\n'-separated) is online, from flags
 * (one '0' or '1' per id). It names who is online; offline is implied. */
static void send_online(hd_session *s, const char *ids, const char *flags, size_t n_flags)
{
    hd_buf online;
    hd_buf_init(&online);
    size_t i = 0;
    for (const char *p = ids; *p && i < n_flags; i++) {
        const char *end = strchr(p, '\n');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (flags[i] == '1') {
            if (online.len)
                hd_buf_append(&online, ",", 1);
            hd_buf_json_string(&online, p, len);
        }
        p += len + (end ? 1 : 0);
    }
    if (online.len) {
        hd_buf frame;
        hd_buf_init(&frame);
        hd_frame_watchlist_ids(&frame, true, online.data);
        hd_session_send_text(s, frame.data, frame.len);
        hd_buf_deinit(&frame);
    }
    hd_buf_deinit(&online);
}

void hd_signin_on_online(hd_session *s, const char *ids, const hd_ad_reply *r)
{
    s->watch_wait = 0;
    if (r->status == HD_AD_OK)
        send_online(s, ids, r->body.data ? r->body.data : "", r->body.len);
}

/* Join every watched user's #watch- channel, then send the current state
 * (at once from the registry, or when the cluster answers). */
static void watchlist_start(hd_session *s, cJSON *list)
{
    hd_buf ids;
    hd_buf_init(&ids);
    int n = 0;
    cJSON *id;
    cJSON_ArrayForEach(id, list)
    {
        if (n == WATCHLIST_MAX)
            break;
        if (!cJSON_IsString(id) || !hd_user_id_valid(id->valuestring, strlen(id->valuestring)))
            continue;
        n++;
        join_internal(s, HD_WATCH_CHANNEL_PREFIX, id->valuestring, 0);
        hd_buf_printf(&ids, "%s%s", ids.len ? "\n" : "", id->valuestring);
    }
    hd_adapter *a = s->io->srv->adapter;
    if (ids.len && a->ops->read_now) {
        hd_ad_reply *r = a->ops->read_now(a, s->app, HD_AD_READ_ONLINE, ids.data);
        send_online(s, ids.data, r->body.data ? r->body.data : "", r->body.len);
        hd_ad_reply_free(r);
    } else if (ids.len) {
        s->watch_wait = hd_wait_add(s->io, HD_WAIT_ONLINE, s, hd_strdup(ids.data));
        a->ops->read(a, s->app, HD_AD_READ_ONLINE, ids.data, (hd_ad_caller){s->io->index, s->watch_wait});
    }
    if (cJSON_GetArraySize(list) > WATCHLIST_MAX)
        hd_session_send_error(s, HD_ERROR_WATCHLIST_LIMIT, "Watchlist limit exceeded: only the first 100 user ids are watched");
    hd_buf_deinit(&ids);
}

static void send_success(hd_session *s, const char *user_data)
{
    hd_buf b;
    hd_buf_init(&b);
    hd_frame_signin_success(&b, user_data);
    hd_session_send_text(s, b.data, b.len);
    hd_buf_deinit(&b);
}

/* The signed-in user's id as text into out (NUL-terminated): a string, or
 * an integer ({"id":1}, what Laravel apps send), accepted as its decimal
 * text as a numeric presence user_id is (subscribe.c). Fractions and
 * integers beyond 2^53 are refused. *numeric says which it was. */
static bool user_id_text(const cJSON *id, char *out, size_t out_len, bool *numeric)
{
    *numeric = cJSON_IsNumber(id);
    if (cJSON_IsString(id)) {
        size_t n = strlen(id->valuestring);
        if (n >= out_len)
            return false;
        memcpy(out, id->valuestring, n + 1);
    } else if (*numeric) {
        double v = id->valuedouble;
        if (!(v >= -9007199254740992.0 && v <= 9007199254740992.0) || v != (double)(long long)v)
            return false;
        snprintf(out, out_len, "%lld", (long long)v);
    } else {
        return false;
    }
    return hd_user_id_valid(out, strlen(out));
}

/* Returns the parsed user_data (caller deletes) with the user id in id_out,
 * or NULL after failing the signin. */
static cJSON *verified_user_data(hd_session *s, cJSON *data, char *id_out, size_t id_len, bool *numeric)
{
    cJSON *auth = cJSON_GetObjectItemCaseSensitive(data, "auth");
    cJSON *user_data = cJSON_GetObjectItemCaseSensitive(data, "user_data");
    if (!cJSON_IsString(auth) || !cJSON_IsString(user_data)) {
        signin_fail(s, "Invalid signin: auth and user_data must be strings");
        return NULL;
    }
    hd_buf str;
    hd_buf_init(&str);
    hd_buf_printf(&str, "%s::user::%s", s->socket_id, user_data->valuestring);
    const hd_app_config *cfg = hd_app_cfg(s->app); /* key and secret of one version */
    int rc = hd_auth_verify(auth->valuestring, strlen(auth->valuestring), cfg->key, cfg->secret, str.data, str.len);
    if (rc)
        signin_bad_signature(s, auth->valuestring, str.data);
    hd_buf_deinit(&str);
    if (rc)
        return NULL;
    cJSON *ud = cJSON_Parse(user_data->valuestring);
    if (!user_id_text(cJSON_GetObjectItemCaseSensitive(ud, "id"), id_out, id_len, numeric)) {
        signin_fail(s, "Invalid user_data: id must be a non-empty string of [-a-zA-Z0-9_=@,.;] or an integer");
        cJSON_Delete(ud);
        return NULL;
    }
    return ud;
}

static char *signin_arg(const char *user_data, const cJSON *watchlist);

void hd_handle_signin(hd_session *s, cJSON *data)
{
    char id[256];
    bool numeric = false;
    cJSON *ud = verified_user_data(s, data, id, sizeof id, &numeric);
    if (!ud)
        return;
    if (s->user_id && strcmp(s->user_id, id) != 0) {
        hd_session_send_error(s, 0, "Already signed in as another user");
        cJSON_Delete(ud);
        return;
    }
    bool first = !s->user_id;
    const char *user_data = cJSON_GetObjectItemCaseSensitive(data, "user_data")->valuestring;
    cJSON *watchlist = cJSON_GetObjectItemCaseSensitive(ud, "watchlist");
    if (first) {
        s->user_id = hd_strdup(id);
        s->user_id_numeric = numeric;
        cJSON *info = cJSON_GetObjectItemCaseSensitive(ud, "user_info");
        if (info && !cJSON_IsNull(info))
            s->user_info_json = cJSON_PrintUnformatted(info);
        if (hd_server_clustered(s->io->srv)) {
            /* signin_success once the cluster counted this connection: a
             * watcher then sees the user online before anything the user
             * does next (a close included) */
            s->watch_wait = hd_wait_add(s->io, HD_WAIT_SIGNIN, s, signin_arg(user_data, watchlist));
            join_internal(s, HD_USER_CHANNEL_PREFIX, id, s->watch_wait);
            cJSON_Delete(ud);
            return;
        }
        join_internal(s, HD_USER_CHANNEL_PREFIX, id, 0);
    }
    send_success(s, user_data);
    if (first && cJSON_IsArray(watchlist))
        watchlist_start(s, watchlist);
    cJSON_Delete(ud);
}

/* user_data, NUL, the watchlist as JSON ("" when none): what the sign-in
 * still has to do when the cluster answers. */
static char *signin_arg(const char *user_data, const cJSON *watchlist)
{
    char *list = cJSON_IsArray(watchlist) ? cJSON_PrintUnformatted(watchlist) : NULL;
    size_t ul = strlen(user_data), ll = list ? strlen(list) : 0;
    char *arg = hd_malloc(ul + ll + 2);
    memcpy(arg, user_data, ul + 1);
    memcpy(arg + ul + 1, list ? list : "", ll + 1);
    cJSON_free(list);
    return arg;
}

void hd_signin_on_joined(hd_session *s, const char *arg, const hd_ad_reply *r)
{
    (void)r; /* counted by the cluster, or by this node alone while Redis is away */
    s->watch_wait = 0;
    send_success(s, arg);
    cJSON *watchlist = cJSON_Parse(arg + strlen(arg) + 1);
    if (cJSON_IsArray(watchlist))
        watchlist_start(s, watchlist);
    cJSON_Delete(watchlist);
}
