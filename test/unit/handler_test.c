/* handler_test.c - CUnit suite "handler": the Pusher protocol handlers of
 * the connection layer (src/adapter/handler: events.c, subscribe.c,
 * signin.c, membership.c) driven without a socket, the way broker test
 * suites drive their packet handlers: a real server (test_world.h: apps,
 * registries, the local adapter, cleanup) gets client messages through
 * hd_session_on_message, and the test reads the frames the handlers queued
 * on the session's outbound ring, byte for byte where the frame's bytes
 * are fixed, and the registry's counts where the handler changed state.
 *
 * Expected frames are written out by hand here, not built with the
 * hd_frame_* functions the product uses: a test that shares the
 * builder would not notice the builder going wrong.
 *
 * THREADING: the runner's thread only.
 */
#include <CUnit/CUnit.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "test_world.h"

#define MAX_FRAME 1024

/* ---- helpers ---- */

static hd_app *app_of(hd_tw *w, const char *key)
{
    return hd_server_app_by_key(w->srv, key);
}

/* Subscribers of channel in app-key's registry (0 when it does not
 * exist); *users gets its presence users when users is not NULL. */
static uint32_t subscribers(hd_tw *w, const char *channel, uint32_t *users)
{
    hd_registry *reg = app_of(w, "app-key")->registry;
    hd_channel *ch = hd_registry_acquire(reg, channel, strlen(channel), false);
    uint32_t subs = 0, u = 0;
    if (ch) {
        hd_channel_counts(ch, &subs, &u);
        hd_registry_release(reg, ch);
    }
    if (users)
        *users = u;
    return subs;
}

static void subscribe(hd_tw *w, unsigned i, const char *channel)
{
    char msg[MAX_FRAME];
    snprintf(msg, sizeof msg, "{\"event\":\"pusher:subscribe\",\"data\":{\"channel\":\"%s\"}}", channel);
    hd_tw_send(w, i, msg);
}

/* A private channel subscription signed as the app's auth endpoint would. */
static void subscribe_signed(hd_tw *w, unsigned i, const char *channel)
{
    char str[256], auth[256], msg[MAX_FRAME];
    snprintf(str, sizeof str, "%s:%s", hd_tw_session(w, i)->socket_id, channel);
    hd_tw_sign("app-key", "app-secret", str, auth, sizeof auth);
    snprintf(msg, sizeof msg, "{\"event\":\"pusher:subscribe\",\"data\":{\"channel\":\"%s\",\"auth\":\"%s\"}}",
             channel, auth);
    hd_tw_send(w, i, msg);
}

/* A presence subscription as user_id with user_info (a JSON text, or NULL). */
static void subscribe_presence(hd_tw *w, unsigned i, const char *channel, const char *user_id, const char *info)
{
    char data[256], escaped[300], str[512], auth[256], msg[MAX_FRAME];
    if (info)
        snprintf(data, sizeof data, "{\"user_id\":\"%s\",\"user_info\":%s}", user_id, info);
    else
        snprintf(data, sizeof data, "{\"user_id\":\"%s\"}", user_id);
    size_t o = 0; /* channel_data travels as a JSON string */
    for (const char *p = data; *p && o + 2 < sizeof escaped; p++) {
        if (*p == '"')
            escaped[o++] = '\\';
        escaped[o++] = *p;
    }
    escaped[o] = '\0';
    snprintf(str, sizeof str, "%s:%s:%s", hd_tw_session(w, i)->socket_id, channel, data);
    hd_tw_sign("app-key", "app-secret", str, auth, sizeof auth);
    snprintf(msg, sizeof msg,
             "{\"event\":\"pusher:subscribe\",\"data\":{\"channel\":\"%s\",\"auth\":\"%s\",\"channel_data\":\"%s\"}}",
             channel, auth, escaped);
    hd_tw_send(w, i, msg);
}

static char *expect_succeeded(char *out, size_t len, const char *channel)
{
    snprintf(out, len, "{\"event\":\"pusher_internal:subscription_succeeded\",\"channel\":\"%s\",\"data\":\"{}\"}",
             channel);
    return out;
}

static char *expect_error(char *out, size_t len, const char *code, const char *message)
{
    int n = snprintf(out, len, "{\"event\":\"pusher:error\",\"data\":{\"code\":%s,\"message\":\"%s\"}}", code,
                     message);
    CU_ASSERT_FATAL(n > 0 && (size_t)n < len);
    return out;
}

static char *expect_sub_error(char *out, size_t len, const char *channel, const char *type, const char *error,
                              int status)
{
    int n = snprintf(out, len,
                     "{\"event\":\"pusher:subscription_error\",\"channel\":\"%s\",\"data\":{\"type\":\"%s\","
                     "\"error\":\"%s\",\"status\":%d}}",
                     channel, type, error, status);
    CU_ASSERT_FATAL(n > 0 && (size_t)n < len);
    return out;
}

/* ---- connection ---- */

static void test_connection_established(void)
{
    hd_tw *w = hd_tw_new(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    hd_session *s = hd_tw_open(w, 0, NULL);
    CU_ASSERT_TRUE(s->established);
    CU_ASSERT_FALSE(s->closing);
    CU_ASSERT_TRUE(hd_socket_id_valid(s->socket_id, strlen(s->socket_id)));
    CU_ASSERT_EQUAL(strncmp(s->socket_id, "123456789012345.", 16), 0);
    char want[MAX_FRAME];
    snprintf(want, sizeof want,
             "{\"event\":\"pusher:connection_established\",\"data\":\"{\\\"socket_id\\\":\\\"%s\\\","
             "\\\"activity_timeout\\\":120}\"}",
             s->socket_id);
    CU_ASSERT_STRING_EQUAL(w->conns[0].established_frame, want);
    CU_ASSERT_EQUAL(hd_tw_queued(s), 0); /* written at once, nothing left queued */
    hd_session *s2 = hd_tw_open(w, 1, NULL);
    CU_ASSERT_STRING_NOT_EQUAL(s->socket_id, s2->socket_id);
    hd_tw_free(w);
}

static void test_unknown_app_refused(void)
{
    hd_tw *w = hd_tw_new(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    hd_session *s = hd_tw_open(w, 0, "/app/no-such-key?protocol=7");
    char want[MAX_FRAME];
    CU_ASSERT_FALSE(s->established);
    CU_ASSERT_TRUE(s->closing);
    CU_ASSERT_EQUAL(s->close_code, HD_CLOSE_APP_NOT_FOUND);
    CU_ASSERT_STRING_EQUAL(hd_tw_last(s), expect_error(want, sizeof want, "4001", "Application does not exist"));
    CU_ASSERT_TRUE(w->conns[0].want_writable); /* the close goes out on the next writable turn */
    hd_tw_free(w);
}

/* ---- messages ---- */

static void test_ping_pong(void)
{
    hd_tw *w = hd_tw_new(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    hd_session *s = hd_tw_open(w, 0, NULL);
    hd_tw_send(w, 0, "{\"event\":\"pusher:ping\",\"data\":{}}");
    CU_ASSERT_EQUAL(hd_tw_queued(s), 1);
    CU_ASSERT_STRING_EQUAL(hd_tw_last(s), "{\"event\":\"pusher:pong\",\"data\":\"{}\"}");
    hd_tw_send(w, 0, "{\"event\":\"pusher:pong\",\"data\":{}}"); /* activity only: no answer */
    CU_ASSERT_EQUAL(hd_tw_queued(s), 1);
    hd_tw_free(w);
}

static void test_invalid_messages(void)
{
    hd_tw *w = hd_tw_new(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    hd_session *s = hd_tw_open(w, 0, NULL);
    char want[MAX_FRAME];
    hd_tw_send(w, 0, "not json");
    CU_ASSERT_STRING_EQUAL(hd_tw_last(s), expect_error(want, sizeof want, "null",
                                                       "Invalid message format: expected a JSON object with an event"));
    hd_tw_send(w, 0, "{\"event\":\"pusher:nope\",\"data\":{}}");
    CU_ASSERT_STRING_EQUAL(hd_tw_last(s), expect_error(want, sizeof want, "null", "Unknown event: pusher:nope"));
    hd_tw_send(w, 0, "{\"event\":\"pusher:subscribe\",\"data\":[1]}");
    CU_ASSERT_STRING_EQUAL(hd_tw_last(s), expect_error(want, sizeof want, "null",
                                                       "Invalid message format: data must be an object"));
    hd_tw_send(w, 0, "{\"event\":\"other\"}");
    CU_ASSERT_STRING_EQUAL(hd_tw_last(s), expect_error(want, sizeof want, "null",
                                                       "Unknown event: only pusher: and client- events may be sent"));
    CU_ASSERT_EQUAL(hd_tw_queued(s), 4);
    CU_ASSERT_FALSE(s->closing); /* refused, not disconnected */
    hd_tw_free(w);
}

/* ---- subscribe / unsubscribe ---- */

static void test_subscribe_public(void)
{
    hd_tw *w = hd_tw_new(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    hd_session *s = hd_tw_open(w, 0, NULL);
    char want[MAX_FRAME];
    subscribe(w, 0, "my-channel");
    CU_ASSERT_TRUE_FATAL(hd_tw_queued(s) >= 1);
    CU_ASSERT_STRING_EQUAL(hd_tw_frame(s, 0), expect_succeeded(want, sizeof want, "my-channel"));
    CU_ASSERT_EQUAL(s->n_subs, 1);
    CU_ASSERT_EQUAL(subscribers(w, "my-channel", NULL), 1);
    /* a second subscribe to the same channel changes nothing */
    hd_tw_drop(s);
    subscribe(w, 0, "my-channel");
    CU_ASSERT_EQUAL(s->n_subs, 1);
    CU_ASSERT_EQUAL(subscribers(w, "my-channel", NULL), 1);
    hd_tw_free(w);
}

/* app-key has enable_subscription_count: the count goes to the channel's
 * subscribers through the io threads' inboxes. */
static void test_subscription_count(void)
{
    hd_tw *w = hd_tw_new(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    hd_session *a = hd_tw_open(w, 0, NULL);
    hd_tw_open(w, 1, NULL);
    subscribe(w, 0, "counted");
    subscribe(w, 1, "counted");
    hd_tw_pump(w);
    CU_ASSERT_TRUE(hd_tw_has_frame(a, "{\"event\":\"pusher_internal:subscription_count\",\"channel\":\"counted\","
                                      "\"data\":\"{\\\"subscription_count\\\":2}\"}"));
    hd_tw_free(w);
}

static void test_subscribe_bad_name(void)
{
    hd_tw *w = hd_tw_new(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    hd_session *s = hd_tw_open(w, 0, NULL);
    char want[MAX_FRAME];
    subscribe(w, 0, "bad channel!");
    CU_ASSERT_EQUAL(hd_tw_queued(s), 1);
    CU_ASSERT_STRING_EQUAL(hd_tw_last(s), expect_sub_error(want, sizeof want, "bad channel!", "InvalidChannel",
                                                           "Invalid channel name", 400));
    subscribe(w, 0, "#watch-u1"); /* internal channels cannot be named by clients */
    CU_ASSERT_STRING_EQUAL(hd_tw_last(s), expect_sub_error(want, sizeof want, "#watch-u1", "InvalidChannel",
                                                           "Invalid channel name", 400));
    CU_ASSERT_EQUAL(s->n_subs, 0);
    CU_ASSERT_EQUAL(subscribers(w, "#watch-u1", NULL), 0);
    hd_tw_send(w, 0, "{\"event\":\"pusher:subscribe\",\"data\":{\"channel\":7}}");
    CU_ASSERT_STRING_EQUAL(hd_tw_last(s), expect_error(want, sizeof want, "null",
                                                       "Invalid subscribe: channel must be a string"));
    hd_tw_free(w);
}

static void test_subscribe_private_bad_auth(void)
{
    hd_tw *w = hd_tw_new(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    hd_session *s = hd_tw_open(w, 0, NULL);
    char want[MAX_FRAME], msg[MAX_FRAME];
    hd_tw_send(w, 0, "{\"event\":\"pusher:subscribe\",\"data\":{\"channel\":\"private-x\",\"auth\":\"app-key:deadbeef\"}}");
    snprintf(msg, sizeof msg, "Invalid signature: Expected HMAC SHA256 hex digest of %s:private-x, but got app-key:deadbeef",
             s->socket_id);
    CU_ASSERT_STRING_EQUAL(hd_tw_last(s), expect_sub_error(want, sizeof want, "private-x", "AuthError", msg, 401));
    hd_tw_send(w, 0, "{\"event\":\"pusher:subscribe\",\"data\":{\"channel\":\"private-x\"}}");
    CU_ASSERT_STRING_EQUAL(hd_tw_last(s), expect_sub_error(want, sizeof want, "private-x", "AuthError",
                                                           "Auth value for subscription is missing", 401));
    hd_tw_send(w, 0, "{\"event\":\"pusher:subscribe\",\"data\":{\"channel\":\"private-x\",\"auth\":\"key-2:00\"}}");
    CU_ASSERT_STRING_EQUAL(hd_tw_last(s), expect_sub_error(want, sizeof want, "private-x", "AuthError",
                                                           "Invalid key in subscription auth data: 'key-2:00'", 401));
    CU_ASSERT_EQUAL(s->n_subs, 0);
    CU_ASSERT_EQUAL(subscribers(w, "private-x", NULL), 0);
    /* the same channel with the right signature */
    hd_tw_drop(s);
    subscribe_signed(w, 0, "private-x");
    CU_ASSERT_STRING_EQUAL(hd_tw_frame(s, 0), expect_succeeded(want, sizeof want, "private-x"));
    CU_ASSERT_EQUAL(subscribers(w, "private-x", NULL), 1);
    hd_tw_free(w);
}

/* The presence snapshot names every member; the members already there
 * hear member_added (the joiner does not). */
static void test_subscribe_presence_snapshot(void)
{
    hd_tw *w = hd_tw_new(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    hd_session *a = hd_tw_open(w, 0, NULL);
    hd_session *b = hd_tw_open(w, 1, NULL); /* the other io thread */
    subscribe_presence(w, 0, "presence-room", "u1", "{\"name\":\"Ann\"}");
    hd_tw_pump(w);
    hd_tw_drop(a);
    subscribe_presence(w, 1, "presence-room", "u2", NULL);
    hd_tw_pump(w);
    CU_ASSERT_TRUE_FATAL(hd_tw_queued(b) >= 1);
    cJSON *frame = cJSON_Parse(hd_tw_frame(b, 0));
    cJSON *event = cJSON_GetObjectItemCaseSensitive(frame, "event");
    cJSON *channel = cJSON_GetObjectItemCaseSensitive(frame, "channel");
    cJSON *data = cJSON_GetObjectItemCaseSensitive(frame, "data");
    CU_ASSERT_TRUE_FATAL(cJSON_IsString(event) && cJSON_IsString(channel) && cJSON_IsString(data));
    CU_ASSERT_STRING_EQUAL(event->valuestring, "pusher_internal:subscription_succeeded");
    CU_ASSERT_STRING_EQUAL(channel->valuestring, "presence-room");
    cJSON *snap = cJSON_Parse(data->valuestring); /* data is a JSON string holding the snapshot */
    cJSON *presence = cJSON_GetObjectItemCaseSensitive(snap, "presence");
    cJSON *ids = cJSON_GetObjectItemCaseSensitive(presence, "ids");
    cJSON *hash = cJSON_GetObjectItemCaseSensitive(presence, "hash");
    cJSON *count = cJSON_GetObjectItemCaseSensitive(presence, "count");
    CU_ASSERT_TRUE_FATAL(cJSON_IsArray(ids) && cJSON_IsObject(hash) && cJSON_IsNumber(count));
    CU_ASSERT_EQUAL(count->valueint, 2);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(ids), 2);
    bool has_u1 = false, has_u2 = false;
    cJSON *id;
    cJSON_ArrayForEach(id, ids) {
        has_u1 = has_u1 || (cJSON_IsString(id) && !strcmp(id->valuestring, "u1"));
        has_u2 = has_u2 || (cJSON_IsString(id) && !strcmp(id->valuestring, "u2"));
    }
    CU_ASSERT_TRUE(has_u1 && has_u2);
    cJSON *ann = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(hash, "u1"), "name");
    CU_ASSERT_TRUE(cJSON_IsString(ann) && !strcmp(ann->valuestring, "Ann"));
    CU_ASSERT_TRUE(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(hash, "u2")));
    cJSON_Delete(snap);
    cJSON_Delete(frame);
    CU_ASSERT_TRUE(hd_tw_has_frame(a, "{\"event\":\"pusher_internal:member_added\",\"channel\":\"presence-room\","
                                      "\"data\":\"{\\\"user_id\\\":\\\"u2\\\"}\"}"));
    for (size_t k = 0; k < hd_tw_queued(b); k++)
        CU_ASSERT_PTR_NULL(strstr(hd_tw_frame(b, k), "member_added"));
    uint32_t users = 0;
    CU_ASSERT_EQUAL(subscribers(w, "presence-room", &users), 2);
    CU_ASSERT_EQUAL(users, 2);
    /* leaving: the other member hears member_removed */
    hd_tw_drop(a);
    hd_tw_close(w, 1);
    hd_tw_pump(w);
    CU_ASSERT_TRUE(hd_tw_has_frame(a, "{\"event\":\"pusher_internal:member_removed\",\"channel\":\"presence-room\","
                                      "\"data\":\"{\\\"user_id\\\":\\\"u2\\\"}\"}"));
    CU_ASSERT_EQUAL(subscribers(w, "presence-room", &users), 1);
    CU_ASSERT_EQUAL(users, 1);
    hd_tw_free(w);
}

static void test_presence_full(void)
{
    hd_tw *w = hd_tw_new(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    char want[MAX_FRAME];
    for (unsigned i = 0; i < 4; i++) {
        char uid[8];
        snprintf(uid, sizeof uid, "u%u", i);
        hd_tw_open(w, i, NULL);
        subscribe_presence(w, i, "presence-full", uid, NULL);
    }
    hd_session *last = hd_tw_session(w, 3);
    CU_ASSERT_STRING_EQUAL(hd_tw_last(last), expect_sub_error(want, sizeof want, "presence-full", "LimitReached",
                                                              "The presence channel is full", 4100));
    uint32_t users = 0;
    CU_ASSERT_EQUAL(subscribers(w, "presence-full", &users), 3);
    CU_ASSERT_EQUAL(users, 3);
    CU_ASSERT_EQUAL(last->n_subs, 0);
    hd_tw_free(w);
}

static void test_unsubscribe(void)
{
    hd_tw *w = hd_tw_new(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    hd_session *a = hd_tw_open(w, 0, NULL);
    hd_tw_open(w, 1, NULL);
    subscribe(w, 0, "news");
    subscribe(w, 1, "news");
    CU_ASSERT_EQUAL(subscribers(w, "news", NULL), 2);
    hd_tw_drop(a);
    hd_tw_send(w, 0, "{\"event\":\"pusher:unsubscribe\",\"data\":{\"channel\":\"news\"}}");
    CU_ASSERT_EQUAL(subscribers(w, "news", NULL), 1);
    CU_ASSERT_EQUAL(a->n_subs, 0);
    CU_ASSERT_EQUAL(hd_tw_queued(a), 0); /* §3: no answer */
    /* unsubscribing from a channel it is not in: nothing, silently */
    hd_tw_send(w, 0, "{\"event\":\"pusher:unsubscribe\",\"data\":{\"channel\":\"news\"}}");
    CU_ASSERT_EQUAL(subscribers(w, "news", NULL), 1);
    CU_ASSERT_EQUAL(hd_tw_queued(a), 0);
    hd_tw_send(w, 1, "{\"event\":\"pusher:unsubscribe\",\"data\":{\"channel\":\"news\"}}");
    CU_ASSERT_EQUAL(subscribers(w, "news", NULL), 0);
    hd_tw_free(w);
}

/* max_subscriptions_per_connection is 4 in the world: the fifth is refused. */
static void test_subscription_limit(void)
{
    hd_tw *w = hd_tw_new(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    hd_session *s = hd_tw_open(w, 0, NULL);
    char want[MAX_FRAME];
    const char *names[] = {"c1", "c2", "c3", "c4", "c5"};
    for (unsigned k = 0; k < 5; k++)
        subscribe(w, 0, names[k]);
    CU_ASSERT_EQUAL(s->n_subs, 4);
    CU_ASSERT_STRING_EQUAL(hd_tw_last(s), expect_sub_error(want, sizeof want, "c5", "LimitReached",
                                                           "Too many subscriptions on this connection", 4100));
    CU_ASSERT_EQUAL(subscribers(w, "c4", NULL), 1);
    CU_ASSERT_EQUAL(subscribers(w, "c5", NULL), 0);
    hd_tw_free(w);
}

/* ---- client events ---- */

static void test_client_event_public_refused(void)
{
    hd_tw *w = hd_tw_new(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    hd_session *a = hd_tw_open(w, 0, NULL);
    hd_session *b = hd_tw_open(w, 1, NULL);
    subscribe(w, 0, "chat");
    subscribe(w, 1, "chat");
    hd_tw_pump(w);
    hd_tw_drop(a);
    hd_tw_drop(b);
    char want[MAX_FRAME];
    hd_tw_send(w, 0, "{\"event\":\"client-hi\",\"channel\":\"chat\",\"data\":{}}");
    hd_tw_pump(w);
    CU_ASSERT_EQUAL(hd_tw_queued(a), 1);
    CU_ASSERT_STRING_EQUAL(hd_tw_last(a), expect_error(want, sizeof want, "null",
                                                       "Client event rejected - only supported on private and presence channels"));
    CU_ASSERT_EQUAL(hd_tw_queued(b), 0); /* not relayed */
    hd_tw_send(w, 0, "{\"event\":\"client-hi\",\"data\":{}}");
    CU_ASSERT_STRING_EQUAL(hd_tw_last(a), expect_error(want, sizeof want, "null",
                                                       "Client event rejected - channel is required"));
    hd_tw_send(w, 0, "{\"event\":\"client-hi\",\"channel\":\"private-nope\",\"data\":{}}");
    CU_ASSERT_STRING_EQUAL(hd_tw_last(a), expect_error(want, sizeof want, "null",
                                                       "Client event rejected - not subscribed to the channel"));
    hd_tw_free(w);
}

static void test_client_event_disabled_app(void)
{
    hd_tw *w = hd_tw_new(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    hd_session *s = hd_tw_open(w, 0, "/app/key-2?protocol=7");
    CU_ASSERT_TRUE_FATAL(s->established);
    char want[MAX_FRAME];
    hd_tw_send(w, 0, "{\"event\":\"client-hi\",\"channel\":\"private-c\",\"data\":{}}");
    CU_ASSERT_STRING_EQUAL(hd_tw_last(s), expect_error(want, sizeof want, "null",
                                                       "To send client events, you must enable this feature in the "
                                                       "Settings page of your dashboard."));
    hd_tw_free(w);
}

/* Relayed to the other subscribers as the client sent its data (raw JSON),
 * never echoed to the sender. */
static void test_client_event_private_relayed(void)
{
    hd_tw *w = hd_tw_new(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    hd_session *a = hd_tw_open(w, 0, NULL);
    hd_session *b = hd_tw_open(w, 1, NULL);
    subscribe_signed(w, 0, "private-c");
    subscribe_signed(w, 1, "private-c");
    hd_tw_pump(w);
    hd_tw_drop(a);
    hd_tw_drop(b);
    hd_tw_send(w, 0, "{\"event\":\"client-hi\",\"channel\":\"private-c\",\"data\":{\"text\":\"x\\\"y\",\"n\":1}}");
    hd_tw_pump(w);
    CU_ASSERT_EQUAL(hd_tw_queued(a), 0);
    CU_ASSERT_EQUAL(hd_tw_queued(b), 1);
    CU_ASSERT_STRING_EQUAL(hd_tw_last(b),
                           "{\"event\":\"client-hi\",\"channel\":\"private-c\",\"data\":{\"text\":\"x\\\"y\",\"n\":1}}");
    hd_tw_free(w);
}

/* On a presence channel the relayed event names its sender (§4.4). */
static void test_client_event_presence_user_id(void)
{
    hd_tw *w = hd_tw_new(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    hd_tw_open(w, 0, NULL);
    hd_session *b = hd_tw_open(w, 1, NULL);
    subscribe_presence(w, 0, "presence-p", "u1", NULL);
    subscribe_presence(w, 1, "presence-p", "u2", NULL);
    hd_tw_pump(w);
    hd_tw_drop(b);
    hd_tw_send(w, 0, "{\"event\":\"client-typing\",\"channel\":\"presence-p\",\"data\":\"plain\"}");
    hd_tw_pump(w);
    CU_ASSERT_STRING_EQUAL(hd_tw_last(b),
                           "{\"event\":\"client-typing\",\"channel\":\"presence-p\",\"data\":\"plain\",\"user_id\":\"u1\"}");
    hd_tw_free(w);
}

/* ---- signin ---- */

static void test_signin_bad_signature(void)
{
    hd_tw *w = hd_tw_new(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    hd_session *s = hd_tw_open(w, 0, NULL);
    char want[MAX_FRAME], msg[MAX_FRAME];
    hd_tw_send(w, 0, "{\"event\":\"pusher:signin\",\"data\":{\"auth\":\"app-key:bad\","
                     "\"user_data\":\"{\\\"id\\\":\\\"u1\\\"}\"}}");
    snprintf(msg, sizeof msg, "Invalid signature for user authentication: Expected HMAC SHA256 hex digest of "
             "%s::user::{\\\"id\\\":\\\"u1\\\"}, but got app-key:bad", s->socket_id);
    CU_ASSERT_STRING_EQUAL(hd_tw_last(s), expect_error(want, sizeof want, "4009", msg));
    CU_ASSERT_TRUE(s->closing);
    CU_ASSERT_EQUAL(s->close_code, HD_CLOSE_UNAUTHORIZED);
    CU_ASSERT_STRING_EQUAL(s->close_reason, "Invalid signature for user authentication");
    CU_ASSERT_PTR_NULL(s->user_id);
    CU_ASSERT_EQUAL(subscribers(w, "#server-to-user-u1", NULL), 0);
    /* a closing session ignores what else the client sends */
    size_t queued = hd_tw_queued(s);
    hd_tw_send(w, 0, "{\"event\":\"pusher:ping\",\"data\":{}}");
    CU_ASSERT_EQUAL(hd_tw_queued(s), queued);
    hd_tw_free(w);
}

static void test_signin_success(void)
{
    hd_tw *w = hd_tw_new(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    hd_session *s = hd_tw_open(w, 0, NULL);
    const char *user_data = "{\"id\":\"u1\",\"user_info\":{\"name\":\"Ann\"}}";
    char str[256], auth[256], msg[MAX_FRAME];
    snprintf(str, sizeof str, "%s::user::%s", s->socket_id, user_data);
    hd_tw_sign("app-key", "app-secret", str, auth, sizeof auth);
    snprintf(msg, sizeof msg, "{\"event\":\"pusher:signin\",\"data\":{\"auth\":\"%s\",\"user_data\":"
             "\"{\\\"id\\\":\\\"u1\\\",\\\"user_info\\\":{\\\"name\\\":\\\"Ann\\\"}}\"}}", auth);
    hd_tw_send(w, 0, msg);
    CU_ASSERT_STRING_EQUAL(hd_tw_last(s), "{\"event\":\"pusher:signin_success\",\"data\":{\"user_data\":"
                                          "\"{\\\"id\\\":\\\"u1\\\",\\\"user_info\\\":{\\\"name\\\":\\\"Ann\\\"}}\"}}");
    CU_ASSERT_FALSE(s->closing);
    CU_ASSERT_STRING_EQUAL(s->user_id, "u1");
    CU_ASSERT_EQUAL(subscribers(w, "#server-to-user-u1", NULL), 1); /* the user's own channel */
    hd_tw_close(w, 0);
    CU_ASSERT_EQUAL(subscribers(w, "#server-to-user-u1", NULL), 0);
    hd_tw_free(w);
}

void hd_test_suite_handler(void)
{
    CU_pSuite s = CU_add_suite("handler", NULL, NULL);
    CU_add_test(s, "connection_established, unique socket ids", test_connection_established);
    CU_add_test(s, "unknown app: pusher:error 4001 and close", test_unknown_app_refused);
    CU_add_test(s, "pusher:ping -> pusher:pong", test_ping_pong);
    CU_add_test(s, "invalid messages: pusher:error, no close", test_invalid_messages);
    CU_add_test(s, "subscribe public -> subscription_succeeded", test_subscribe_public);
    CU_add_test(s, "subscription_count to the channel", test_subscription_count);
    CU_add_test(s, "bad channel name -> InvalidChannel 400", test_subscribe_bad_name);
    CU_add_test(s, "private with bad auth -> AuthError 401", test_subscribe_private_bad_auth);
    CU_add_test(s, "presence with good auth -> snapshot, member_added/removed", test_subscribe_presence_snapshot);
    CU_add_test(s, "presence channel full -> LimitReached", test_presence_full);
    CU_add_test(s, "unsubscribe: registry count drops", test_unsubscribe);
    CU_add_test(s, "too many subscriptions -> LimitReached", test_subscription_limit);
    CU_add_test(s, "client event on a public channel refused", test_client_event_public_refused);
    CU_add_test(s, "client event on an app without client events refused", test_client_event_disabled_app);
    CU_add_test(s, "client event relayed to the others, not echoed", test_client_event_private_relayed);
    CU_add_test(s, "client event on presence carries user_id", test_client_event_presence_user_id);
    CU_add_test(s, "signin with a bad signature: pusher:error 4009 and close", test_signin_bad_signature);
    CU_add_test(s, "signin: signin_success, the user's channel joined and left", test_signin_success);
}
