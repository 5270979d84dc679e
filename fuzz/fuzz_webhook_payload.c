/* fuzz_webhook_payload.c - libFuzzer target: the webhook payload builder
 * (src/webhooks/payload.c: event objects, request bodies, endpoint
 * filters) and the bounded endpoint queue the events wait in (queue.c).
 *
 * Input: lines of tab-separated fields:
 *   channel_occupied|channel_vacated|cache_miss <TAB> channel
 *   member_added|member_removed <TAB> channel <TAB> user_id
 *   client_event <TAB> channel <TAB> event <TAB> socket_id <TAB> data [<TAB> user_id]
 *   subscription_count <TAB> channel <TAB> count
 *   filter <TAB> mask <TAB> prefix <TAB> suffix      (checked against every later event)
 *   remove <TAB> index                               (an event leaves the queue)
 * data is JSON as a client sent it (or any text, sent as a JSON string),
 * re-printed by cJSON as events.c does. The queue's limit and protected
 * head come from the input's size.
 *
 * Checked: every event is one JSON object, compact exactly as cJSON (and
 * JSON.stringify) prints it, carrying back the strings it was built from;
 * the queue keeps the order a plain array model keeps; every body is
 * {"time_ms":T,"events":[...]} holding the queued events verbatim.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "webhooks/webhooks_internal.h"

#define MAX_FIELDS 6
#define MAX_QUEUE 8

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    hd_fuzz_quiet();
    return 0;
}

typedef struct filter {
    uint32_t mask;
    char *prefix, *suffix; /* NULL = any */
} filter;

typedef struct world {
    hd_wh_queue q;
    uint32_t protect;
    hd_wh_event *model[MAX_QUEUE]; /* what the queue should hold, oldest first */
    uint32_t n_model;
    filter f;
} world;

/* ---- checks ---- */

static void expect_member(cJSON *root, const char *key, const char *want, const hd_buf *b)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    bool ok = want ? cJSON_IsString(v) && !strcmp(v->valuestring, want) : v == NULL;
    if (!ok) {
        char msg[96];
        snprintf(msg, sizeof msg, "event member \"%s\" does not carry back its input", key);
        hd_fuzz_fail(msg, b->data, b->len);
    }
}

/* One JSON object, printed exactly as cJSON prints it back (compact,
 * members in order, the same escapes). Returns the parsed tree. */
static cJSON *expect_canonical(const char *what, const hd_buf *b)
{
    hd_fuzz_expect_json_object(what, b->data, b->len);
    cJSON *root = cJSON_ParseWithLength(b->data, b->len);
    char *again = cJSON_PrintUnformatted(root);
    bool same = again && strlen(again) == b->len && !memcmp(again, b->data, b->len);
    cJSON_free(again);
    if (!same)
        hd_fuzz_fail("not compact canonical JSON", b->data, b->len);
    return root;
}

static bool ref_matches(const filter *f, hd_wh_type type, const char *channel)
{
    size_t n = strlen(channel);
    size_t lp = f->prefix ? strlen(f->prefix) : 0, ls = f->suffix ? strlen(f->suffix) : 0;
    return (f->mask >> type & 1u) && (!f->prefix || (n >= lp && !memcmp(channel, f->prefix, lp))) &&
           (!f->suffix || (n >= ls && !memcmp(channel + n - ls, f->suffix, ls)));
}

/* ---- the queue and its model ---- */

static void queue_check(const world *w)
{
    if (w->q.count != w->n_model)
        hd_fuzz_fail("queue count differs from the model", NULL, 0);
    for (uint32_t i = 0; i < w->n_model; i++)
        if (hd_webhooks__queue_at(&w->q, i) != w->model[i])
            hd_fuzz_fail("queue order differs from the model", NULL, 0);
}

static hd_wh_event *model_remove(world *w, uint32_t i)
{
    hd_wh_event *ev = w->model[i];
    memmove(&w->model[i], &w->model[i + 1], (w->n_model - i - 1) * sizeof *w->model);
    w->n_model--;
    return ev;
}

/* queue.c's policy: full -> drop the oldest unprotected, or refuse ev. */
static hd_wh_event *model_push(world *w, hd_wh_event *ev)
{
    hd_wh_event *dropped = NULL;
    if (w->n_model >= w->q.limit) {
        if (w->protect >= w->n_model)
            return ev;
        dropped = model_remove(w, w->protect);
    }
    w->model[w->n_model++] = ev;
    return dropped;
}

static void enqueue(world *w, const hd_buf *json)
{
    hd_wh_event *ev = hd_webhooks__event_new(json->data, json->len, 1);
    hd_wh_event *want = model_push(w, ev);
    hd_wh_event *got = hd_webhooks__queue_push(&w->q, ev, w->protect);
    if (got != want)
        hd_fuzz_fail("queue dropped another event than the model", json->data, json->len);
    hd_webhooks__event_unref(got);
    queue_check(w);
}

/* ---- events ---- */

static char *data_json_of(const char *text)
{
    cJSON *v = cJSON_Parse(text);
    if (!v)
        v = cJSON_CreateString(text);
    char *out = cJSON_PrintUnformatted(v);
    cJSON_Delete(v);
    return out;
}

static void build(world *w, hd_wh_type type, char **f, size_t n)
{
    hd_buf b;
    hd_buf_init(&b);
    const char *user_id = NULL;
    char *data_json = NULL;
    uint32_t count = 0;
    if (type == HD_WH_CLIENT_EVENT) {
        if (n < 5)
            goto out;
        data_json = data_json_of(f[4]);
        user_id = n > 5 ? f[5] : NULL;
        hd_webhooks__event_client(&b, f[1], f[2], data_json, f[3], user_id);
    } else if (type == HD_WH_SUBSCRIPTION_COUNT) {
        if (n < 3)
            goto out;
        count = (uint32_t)strtoul(f[2], NULL, 10);
        hd_webhooks__event_count(&b, f[1], count);
    } else {
        user_id = (type == HD_WH_MEMBER_ADDED || type == HD_WH_MEMBER_REMOVED) && n > 2 ? f[2] : NULL;
        hd_webhooks__event_simple(&b, type, f[1], user_id);
    }
    cJSON *root = expect_canonical("webhook event", &b);
    expect_member(root, "name", hd_webhooks__type_names[type], &b);
    expect_member(root, "channel", f[1], &b);
    expect_member(root, "user_id", user_id, &b);
    if (type == HD_WH_CLIENT_EVENT) {
        expect_member(root, "event", f[2], &b);
        expect_member(root, "socket_id", f[3], &b);
        char *data = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(root, "data"));
        if (!data || strcmp(data, data_json))
            hd_fuzz_fail("client_event data is not the client's JSON", b.data, b.len);
        cJSON_free(data);
    }
    if (type == HD_WH_SUBSCRIPTION_COUNT &&
        cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(root, "subscription_count")) != (double)count)
        hd_fuzz_fail("subscription_count differs", b.data, b.len);
    cJSON_Delete(root);
    if (hd_webhooks__matches(w->f.mask, w->f.prefix, w->f.suffix, type, f[1]) != ref_matches(&w->f, type, f[1]))
        hd_fuzz_fail("endpoint filter disagrees with prefix/suffix matching", f[1], strlen(f[1]));
    enqueue(w, &b);
out:
    cJSON_free(data_json);
    hd_buf_deinit(&b);
}

static void set_filter(world *w, char **f, size_t n)
{
    hd_free(w->f.prefix);
    hd_free(w->f.suffix);
    w->f.mask = n > 1 ? (uint32_t)strtoul(f[1], NULL, 0) : 0;
    w->f.prefix = n > 2 && f[2][0] ? hd_strdup(f[2]) : NULL;
    w->f.suffix = n > 3 && f[3][0] ? hd_strdup(f[3]) : NULL;
}

static void line(world *w, const char *rec, size_t len)
{
    char *copy = hd_strndup(rec, len), *f[MAX_FIELDS];
    size_t n = 0;
    for (char *p = copy; n < MAX_FIELDS && p; n++) {
        f[n] = p;
        p = strchr(p, '\t');
        if (p)
            *p++ = '\0';
    }
    int type = hd_webhooks__type_of(f[0]);
    if (type >= 0 && strcmp(hd_webhooks__type_names[type], f[0]))
        hd_fuzz_fail("type_of names another type", f[0], strlen(f[0]));
    if (type >= 0 && n > 1) {
        build(w, (hd_wh_type)type, f, n);
    } else if (!strcmp(f[0], "filter")) {
        set_filter(w, f, n);
    } else if (!strcmp(f[0], "remove") && n > 1) {
        uint32_t i = (uint32_t)strtoul(f[1], NULL, 10);
        if (i < w->q.count) {
            hd_wh_event *want = model_remove(w, i);
            if (hd_webhooks__queue_remove(&w->q, i) != want)
                hd_fuzz_fail("queue removed another event than the model", NULL, 0);
            hd_webhooks__event_unref(want);
            queue_check(w);
        }
    }
    hd_free(copy);
}

/* ---- request bodies ---- */

static void check_body(const world *w, uint32_t n, uint64_t time_ms)
{
    hd_buf b;
    hd_buf_init(&b);
    hd_webhooks__body(&b, time_ms, &w->q, n);
    cJSON *root = expect_canonical("webhook request body", &b);
    cJSON *events = cJSON_GetObjectItemCaseSensitive(root, "events");
    if (cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(root, "time_ms")) != (double)time_ms ||
        cJSON_GetArraySize(events) != (int)n)
        hd_fuzz_fail("body time_ms or event count differs", b.data, b.len);
    uint32_t i = 0;
    cJSON *ev;
    cJSON_ArrayForEach(ev, events)
    {
        char *text = cJSON_PrintUnformatted(ev);
        if (strcmp(text, hd_webhooks__queue_at(&w->q, i++)->json))
            hd_fuzz_fail("body event differs from the queued event", b.data, b.len);
        cJSON_free(text);
    }
    cJSON_Delete(root);
    hd_buf_deinit(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    world w = {.protect = (uint32_t)(size / MAX_QUEUE % 3), .f = {.mask = 0x7f}};
    hd_webhooks__queue_init(&w.q, 1 + (uint32_t)(size % MAX_QUEUE));
    const char *p = (const char *)data, *end = p + size, *rec;
    size_t len;
    while (hd_fuzz_next_record(&p, end, "\n", &rec, &len))
        line(&w, rec, len);
    uint64_t time_ms = 1700000000000ull + size; /* exact in a double, as a real clock is */
    check_body(&w, w.q.count, time_ms);
    check_body(&w, w.q.count / 2, time_ms);
    hd_webhooks__queue_deinit(&w.q);
    hd_free(w.f.prefix);
    hd_free(w.f.suffix);
    return 0;
}
