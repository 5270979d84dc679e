/* payload.c - webhook events and request bodies as PUSHER_PROTOCOL.md §10
 * shapes them, and which endpoint takes which event.
 *
 * DESIGN
 * ------
 * Each event is serialised once, at report time, into compact JSON that is
 * byte-for-byte what JSON.stringify gives for the same object: keys in the
 * order §10 lists them, no spaces, strings escaped by hd_buf_json_string.
 * A client event's data is the JSON text the server parsed from the
 * client (an object stays an object). user_id is always a JSON string,
 * also when the presence channel_data gave a number (Pusher sends strings;
 * the server passes the string form).
 *
 * A request body is {"time_ms":<unix ms>,"events":[...]} with the events'
 * JSON pasted in order; the body is what gets signed, so it is built once
 * per attempt and never re-serialised.
 *
 * THREADING
 * ---------
 * Pure functions and reference counts (atomic): any thread.
 */
#include <inttypes.h>
#include <string.h>

#include "webhooks_internal.h"

const char *const hd_webhooks__type_names[HD_WH_NTYPES] = {
    "channel_occupied", "channel_vacated", "member_added",      "member_removed",
    "client_event",     "cache_miss",      "subscription_count",
};

int hd_webhooks__type_of(const char *name)
{
    for (int t = 0; t < HD_WH_NTYPES; t++)
        if (strcmp(name, hd_webhooks__type_names[t]) == 0)
            return t;
    return -1;
}

hd_wh_event *hd_webhooks__event_new(const char *json, size_t len, uint64_t reported_ms)
{
    hd_wh_event *ev = hd_malloc(sizeof *ev + len + 1);
    atomic_init(&ev->refs, 1);
    ev->reported_ms = reported_ms;
    ev->len = len;
    memcpy(ev->json, json, len);
    ev->json[len] = '\0';
    return ev;
}

void hd_webhooks__event_ref(hd_wh_event *ev)
{
    atomic_fetch_add_explicit(&ev->refs, 1, memory_order_relaxed);
}

void hd_webhooks__event_unref(hd_wh_event *ev)
{
    if (ev && atomic_fetch_sub_explicit(&ev->refs, 1, memory_order_acq_rel) == 1)
        hd_free(ev);
}

static void put_string(hd_buf *b, const char *key, const char *value)
{
    hd_buf_printf(b, ",\"%s\":", key);
    hd_buf_json_string(b, value, strlen(value));
}

void hd_webhooks__event_simple(hd_buf *b, hd_wh_type type, const char *channel, const char *user_id)
{
    hd_buf_printf(b, "{\"name\":\"%s\"", hd_webhooks__type_names[type]);
    put_string(b, "channel", channel);
    if (user_id)
        put_string(b, "user_id", user_id);
    hd_buf_append(b, "}", 1);
}

void hd_webhooks__event_client(hd_buf *b, const char *channel, const char *event, const char *data_json,
                               const char *socket_id, const char *user_id)
{
    hd_buf_puts(b, "{\"name\":\"client_event\"");
    put_string(b, "channel", channel);
    put_string(b, "event", event);
    hd_buf_puts(b, ",\"data\":");
    hd_buf_puts(b, data_json && *data_json ? data_json : "null");
    put_string(b, "socket_id", socket_id);
    if (user_id)
        put_string(b, "user_id", user_id);
    hd_buf_append(b, "}", 1);
}

void hd_webhooks__event_count(hd_buf *b, const char *channel, uint32_t count)
{
    hd_buf_puts(b, "{\"name\":\"subscription_count\"");
    put_string(b, "channel", channel);
    hd_buf_printf(b, ",\"subscription_count\":%" PRIu32 "}", count);
}

void hd_webhooks__body(hd_buf *b, uint64_t time_ms, const hd_wh_queue *q, uint32_t n)
{
    size_t need = 40;
    for (uint32_t i = 0; i < n; i++)
        need += hd_webhooks__queue_at(q, i)->len + 1;
    hd_buf_reserve(b, need);
    hd_buf_printf(b, "{\"time_ms\":%" PRIu64 ",\"events\":[", time_ms);
    for (uint32_t i = 0; i < n; i++) {
        const hd_wh_event *ev = hd_webhooks__queue_at(q, i);
        if (i)
            hd_buf_append(b, ",", 1);
        hd_buf_append(b, ev->json, ev->len);
    }
    hd_buf_append(b, "]}", 2);
}

static bool has_suffix(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

bool hd_webhooks__matches(uint32_t mask, const char *prefix, const char *suffix, hd_wh_type type,
                          const char *channel)
{
    if (!(mask & HD_WH_BIT(type)))
        return false;
    if (prefix && strncmp(channel, prefix, strlen(prefix)) != 0)
        return false;
    return !suffix || has_suffix(channel, suffix);
}
