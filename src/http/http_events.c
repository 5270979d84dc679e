/* http_events.c - triggering events over HTTP: POST /apps/{id}/events and
 * POST /apps/{id}/batch_events (PUSHER_PROTOCOL.md §9.2, §9.3).
 *
 * DESIGN
 * ------
 * The body is parsed with cJSON and every event is checked into an
 * ev_item whose strings point into the cJSON tree, using the app's limits
 * (hd_app_config): name (1..max_event_name_length characters), data (a
 * string of at most max_event_payload_in_kb KB, else 413), channels
 * (`channels` array, or a single `channel`; 1..max_event_channels_at_once
 * valid names, duplicates dropped), socket_id (\d+\.\d+) and info. A JSON
 * null counts as absent for the optional fields. A batch is validated in
 * full before anything is published, so a bad item publishes nothing.
 *
 * Every string that goes into the published frame must be valid UTF-8
 * (hd_utf8_valid, after JSON decoding): cJSON copies raw bytes as they
 * are, and subscribers' browsers drop the whole connection (1007) on a
 * text frame that is not UTF-8. The error names the field.
 *
 * Then each channel gets one hd_server_publish(); when `info` was given,
 * the counts are read afterwards with hd_server_channel_counts():
 * user_count for presence channels, subscription_count for any channel.
 * Batch items carry one channel each (`channel`, or a one-name `channels`).
 *
 * THREADING
 * ---------
 * Runs on the io thread that received the request; the cJSON tree and the
 * items are local to the call. Only thread-safe hd_server_* calls are made.
 */
#include "http_internal.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define ERR_MSG_MAX 160

typedef struct ev_item {
    const char *name;
    const char *data;
    size_t data_len;
    const char *socket_id;  /* NULL = exclude nobody */
    const char **channels;  /* distinct names, pointing into the cJSON tree */
    hd_channel_kind *kinds; /* kinds[i] is the kind of channels[i] */
    size_t n_channels;
    bool has_info;
    unsigned info; /* HD_HTTP_INFO_* */
} ev_item;

typedef struct ev_err {
    int status;
    long item; /* index of the failing batch item, or -1 */
    char msg[ERR_MSG_MAX];
} ev_err;

static int fail(ev_err *e, int status, const char *msg)
{
    e->status = status;
    snprintf(e->msg, sizeof e->msg, "%s", msg);
    return status;
}

static void err_reply(hd_http_ctx *c, const ev_err *e)
{
    if (e->item >= 0)
        hd_http__error(c->res, e->status, "batch[%ld]: %s", e->item, e->msg);
    else
        hd_http__error(c->res, e->status, "%s", e->msg);
}

static void item_free(ev_item *it)
{
    hd_free(it->channels);
    hd_free(it->kinds);
    it->channels = NULL;
    it->kinds = NULL;
    it->n_channels = 0;
}

/* Member key of o, treating JSON null as absent. */
static const cJSON *field(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNull(v) ? NULL : v;
}

/* Code points of a UTF-8 string (bytes that are not continuation bytes). */
static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

/* Parse the body: it must be exactly one JSON object (whitespace around it
 * allowed). Returns the tree, or NULL after replying 400. */
static cJSON *body_parse(hd_http_ctx *c)
{
    const char *body = c->req->body ? c->req->body : "";
    size_t len = c->req->body ? c->req->body_len : 0;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, false);
    if (root && end) {
        while (end < body + len && (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
            end++;
    }
    if (!cJSON_IsObject(root) || end != body + len) {
        cJSON_Delete(root);
        hd_http__error(c->res, 400, "Request body is not valid JSON");
        return NULL;
    }
    return root;
}

/* ---- validation ---- */

static int check_name(const cJSON *o, const hd_app_config *cfg, ev_item *it, ev_err *e)
{
    const cJSON *v = field(o, "name");
    if (!v)
        return fail(e, 400, "Missing required field: name");
    if (!cJSON_IsString(v))
        return fail(e, 400, "name must be a string");
    if (!hd_utf8_valid(v->valuestring, strlen(v->valuestring)))
        return fail(e, 400, "Invalid UTF-8 in name");
    size_t chars = utf8_chars(v->valuestring);
    if (chars == 0)
        return fail(e, 400, "name must not be empty");
    if (chars > cfg->max_event_name_length) {
        e->status = 400;
        snprintf(e->msg, sizeof e->msg, "Event name too long (max %u characters)",
                 (unsigned)cfg->max_event_name_length);
        return 400;
    }
    it->name = v->valuestring;
    return 0;
}

static int check_data(const cJSON *o, const hd_app_config *cfg, ev_item *it, ev_err *e)
{
    const cJSON *v = field(o, "data");
    if (!v)
        return fail(e, 400, "Missing required field: data");
    if (!cJSON_IsString(v))
        return fail(e, 400, "data must be a string");
    size_t len = strlen(v->valuestring);
    if (len > (size_t)cfg->max_event_payload_in_kb * 1024) {
        e->status = 413;
        snprintf(e->msg, sizeof e->msg, "Event data too large (max %u KB)", (unsigned)cfg->max_event_payload_in_kb);
        return 413;
    }
    if (!hd_utf8_valid(v->valuestring, len))
        return fail(e, 400, "Invalid UTF-8 in data");
    it->data = v->valuestring;
    it->data_len = len;
    return 0;
}

/* Validate one channel name (from the field `key`) and append it unless
 * it is already listed. */
static int add_channel(const cJSON *v, const char *key, const hd_app_config *cfg, ev_item *it, ev_err *e)
{
    if (!cJSON_IsString(v))
        return fail(e, 400, "Channel names must be strings");
    const char *name = v->valuestring;
    if (!hd_utf8_valid(name, strlen(name))) { /* the name check refuses it too, less precisely */
        e->status = 400;
        snprintf(e->msg, sizeof e->msg, "Invalid UTF-8 in %s", key);
        return 400;
    }
    hd_channel_type t;
    int rc = hd_channel_classify(name, strlen(name), cfg->max_channel_name_length, &t);
    if (rc == HD_ELIMIT) {
        e->status = 400;
        snprintf(e->msg, sizeof e->msg, "Channel name too long (max %u characters)",
                 (unsigned)cfg->max_channel_name_length);
        return 400;
    }
    if (rc != 0)
        return fail(e, 400, "Invalid channel name");
    for (size_t i = 0; i < it->n_channels; i++) {
        if (strcmp(it->channels[i], name) == 0)
            return 0;
    }
    it->channels[it->n_channels] = name;
    it->kinds[it->n_channels] = t.kind;
    it->n_channels++;
    return 0;
}

/* `channels` (array of 1..max) or `channel` (one string). */
static int check_channels(const cJSON *o, const hd_app_config *cfg, size_t max, ev_item *it, ev_err *e)
{
    const cJSON *list = field(o, "channels");
    const cJSON *one = list ? NULL : field(o, "channel");
    if (!list && !one)
        return fail(e, 400, "Missing required field: channels");
    if (list && !cJSON_IsArray(list))
        return fail(e, 400, "channels must be an array of channel names");
    size_t n = list ? (size_t)cJSON_GetArraySize(list) : 1;
    if (n == 0)
        return fail(e, 400, "channels must not be empty");
    if (n > max) {
        e->status = 400;
        snprintf(e->msg, sizeof e->msg, "Too many channels (max %zu)", max);
        return 400;
    }
    it->channels = hd_calloc(n, sizeof *it->channels);
    it->kinds = hd_calloc(n, sizeof *it->kinds);
    if (one)
        return add_channel(one, "channel", cfg, it, e);
    const cJSON *v;
    cJSON_ArrayForEach(v, list) {
        int rc = add_channel(v, "channels", cfg, it, e);
        if (rc)
            return rc;
    }
    return 0;
}

static int check_options(const cJSON *o, ev_item *it, ev_err *e)
{
    const cJSON *sid = field(o, "socket_id");
    if (sid && !cJSON_IsString(sid))
        return fail(e, 400, "socket_id must be a string");
    if (sid && !hd_utf8_valid(sid->valuestring, strlen(sid->valuestring)))
        return fail(e, 400, "Invalid UTF-8 in socket_id");
    if (sid && !hd_socket_id_valid(sid->valuestring, strlen(sid->valuestring)))
        return fail(e, 400, "Invalid socket_id");
    it->socket_id = sid ? sid->valuestring : NULL;
    const cJSON *info = field(o, "info");
    if (info && !cJSON_IsString(info))
        return fail(e, 400, "info must be a string");
    it->has_info = info != NULL;
    it->info = info ? hd_http__parse_info(info->valuestring) : 0;
    return 0;
}

/* Check one event object into it. On error it holds nothing to free. */
static int item_parse(const cJSON *o, const hd_app_config *cfg, size_t max_channels, ev_item *it, ev_err *e)
{
    memset(it, 0, sizeof *it);
    int rc = check_name(o, cfg, it, e);
    if (rc == 0)
        rc = check_data(o, cfg, it, e);
    if (rc == 0)
        rc = check_channels(o, cfg, max_channels, it, e);
    if (rc == 0)
        rc = check_options(o, it, e);
    if (rc)
        item_free(it);
    return rc;
}

/* ---- publishing and replies ---- */

static void item_publish(hd_http_ctx *c, const ev_item *it)
{
    for (size_t i = 0; i < it->n_channels; i++)
        hd_server_publish(c->srv, c->app, it->channels[i], it->name, it->data, it->data_len, it->socket_id);
}

/* Append the attributes object of one channel for the info flags. */
static void attrs_write(hd_http_ctx *c, const char *channel, hd_channel_kind kind, unsigned info, hd_buf *out)
{
    bool users = (info & HD_HTTP_INFO_USER_COUNT) && kind == HD_CHANNEL_PRESENCE;
    bool subs = (info & HD_HTTP_INFO_SUBSCRIPTION_COUNT) != 0;
    uint32_t n_subs = 0, n_users = 0;
    if (users || subs)
        hd_server_channel_counts(c->srv, c->app, channel, &n_subs, &n_users);
    hd_buf_puts(out, "{");
    if (users)
        hd_buf_printf(out, "\"user_count\":%u", (unsigned)n_users);
    if (subs)
        hd_buf_printf(out, "%s\"subscription_count\":%u", users ? "," : "", (unsigned)n_subs);
    hd_buf_puts(out, "}");
}

/* {"channels":{"c":{attrs},...}} for an event that asked for info. */
static void channels_info_write(hd_http_ctx *c, const ev_item *it, hd_buf *out)
{
    hd_buf_puts(out, "{\"channels\":{");
    for (size_t i = 0; i < it->n_channels; i++) {
        if (i)
            hd_buf_puts(out, ",");
        hd_buf_json_string(out, it->channels[i], strlen(it->channels[i]));
        hd_buf_puts(out, ":");
        attrs_write(c, it->channels[i], it->kinds[i], it->info, out);
    }
    hd_buf_puts(out, "}}");
}

void hd_http__events(hd_http_ctx *c)
{
    cJSON *root = body_parse(c);
    if (!root)
        return;
    ev_item it;
    ev_err e = {.item = -1};
    if (item_parse(root, c->cfg, c->cfg->max_event_channels_at_once, &it, &e)) {
        err_reply(c, &e);
        cJSON_Delete(root);
        return;
    }
    item_publish(c, &it);
    hd_http__begin(c->res, 200);
    if (it.has_info)
        channels_info_write(c, &it, &c->res->body);
    else
        hd_buf_puts(&c->res->body, "{}");
    item_free(&it);
    cJSON_Delete(root);
}

/* ---- batches ---- */

/* Check every item of {"batch":[...]}; on success *items has *n entries
 * the caller frees with batch_free(). */
static int batch_parse(const cJSON *root, const hd_app_config *cfg, ev_item **items, size_t *n, ev_err *e)
{
    const cJSON *batch = field(root, "batch");
    if (!batch)
        return fail(e, 400, "Missing required field: batch");
    if (!cJSON_IsArray(batch))
        return fail(e, 400, "batch must be an array of events");
    size_t count = (size_t)cJSON_GetArraySize(batch);
    if (count == 0)
        return fail(e, 400, "batch must not be empty");
    if (count > cfg->max_event_batch_size) {
        e->status = 400;
        snprintf(e->msg, sizeof e->msg, "Batch too large (max %u events)", (unsigned)cfg->max_event_batch_size);
        return 400;
    }
    *items = hd_calloc(count, sizeof **items);
    *n = 0;
    const cJSON *o;
    cJSON_ArrayForEach(o, batch) {
        int rc = cJSON_IsObject(o) ? item_parse(o, cfg, 1, &(*items)[*n], e)
                                   : fail(e, 400, "an event must be an object");
        if (rc) {
            e->item = (long)*n;
            return rc;
        }
        (*n)++;
    }
    return 0;
}

static void batch_free(ev_item *items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        item_free(&items[i]);
    hd_free(items);
}

/* {"batch":[{attrs of item 0},{},...]}, index-aligned with the request. */
static void batch_info_write(hd_http_ctx *c, const ev_item *items, size_t n, hd_buf *out)
{
    hd_buf_puts(out, "{\"batch\":[");
    for (size_t i = 0; i < n; i++) {
        const ev_item *it = &items[i];
        if (i)
            hd_buf_puts(out, ",");
        attrs_write(c, it->channels[0], it->kinds[0], it->has_info ? it->info : 0, out);
    }
    hd_buf_puts(out, "]}");
}

void hd_http__batch_events(hd_http_ctx *c)
{
    cJSON *root = body_parse(c);
    if (!root)
        return;
    ev_item *items = NULL;
    size_t n = 0;
    ev_err e = {.item = -1};
    if (batch_parse(root, c->cfg, &items, &n, &e)) {
        err_reply(c, &e);
        batch_free(items, n);
        cJSON_Delete(root);
        return;
    }
    bool any_info = false;
    for (size_t i = 0; i < n; i++) {
        item_publish(c, &items[i]);
        any_info = any_info || items[i].has_info;
    }
    hd_http__begin(c->res, 200);
    if (any_info)
        batch_info_write(c, items, n, &c->res->body);
    else
        hd_buf_puts(&c->res->body, "{}");
    batch_free(items, n);
    cJSON_Delete(root);
}
