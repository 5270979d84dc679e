/* fuzz_http_api.c - libFuzzer target: the HTTP API path - query parsing
 * (hd_params_parse_query), request authentication (hd_http_auth_verify,
 * §9.1) and the routes behind it (hd_http_api_handle: events,
 * batch_events, channel queries, users, terminate_connections) - on a
 * socket-less server (fuzz_server.h) where four WebSocket connections
 * already hold public, private, presence and cache subscriptions and two
 * are signed in, so triggers and terminations reach real subscribers.
 *
 * Input: requests separated by a line "===":
 *   [+]METHOD TARGET          TARGET = path[?query], e.g. POST /apps/app-id/events
 *   body...                   everything up to the next "===" line
 * A leading '+' signs the request as a Pusher server SDK does (auth_key,
 * auth_timestamp now, auth_version, body_md5, auth_signature, replacing
 * any the input gave), so the fuzzer gets past authentication. Without it
 * the query goes as given, except that the values NOW (auth_timestamp),
 * MD5 (body_md5) and SIGN (auth_signature) become the current time, the
 * body's MD5 and the right signature, so the checks after the timestamp
 * are reachable with any combination of the rest.
 *
 * Requests with a body go as http_front.c sends them: hd_http_api_admit on
 * the head, then hd_http_api_handle with head_admitted.
 *
 * Checked: every answer is one JSON object with a status of 200-599 and an
 * "error" string when >= 400; a request signed as above is never refused
 * with 401; answers are valid UTF-8 when the request was (and had no
 * %-escapes); every frame the server then writes is checked as in the
 * ws_message target, and nothing is left subscribed at the end.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "fuzz_server.h"
#include "http/http_api.h"

#define MAX_REQUESTS 16

static hd_config g_cfg;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    hd_fuzz_quiet();
    hd_fuzz_config(&g_cfg);
    return 0;
}

/* ---- the state requests act on ---- */

static const struct {
    unsigned conn;
    const char *json;
} scenario[] = {
    {0, "{\"event\":\"pusher:subscribe\",\"data\":{\"channel\":\"my-channel\"}}"},
    {0, "{\"event\":\"pusher:subscribe\",\"data\":{\"channel\":\"presence-room\","
        "\"channel_data\":\"{\\\"user_id\\\":\\\"1\\\",\\\"user_info\\\":{\\\"name\\\":\\\"Ann\\\"}}\"}}"},
    {0, "{\"event\":\"pusher:subscribe\",\"data\":{\"channel\":\"cache-news\"}}"},
    {0, "{\"event\":\"pusher:signin\",\"data\":{\"user_data\":\"{\\\"id\\\":\\\"u1\\\"}\"}}"},
    {1, "{\"event\":\"pusher:subscribe\",\"data\":{\"channel\":\"presence-room\","
        "\"channel_data\":\"{\\\"user_id\\\":2}\"}}"},
    {1, "{\"event\":\"pusher:subscribe\",\"data\":{\"channel\":\"private-chat\"}}"},
    {1, "{\"event\":\"pusher:subscribe\",\"data\":{\"channel\":\"presence-cache-x\","
        "\"channel_data\":\"{\\\"user_id\\\":\\\"3\\\"}\"}}"},
    {2, "{\"event\":\"pusher:subscribe\",\"data\":{\"channel\":\"my-channel\"}}"},
    {2, "{\"event\":\"pusher:subscribe\",\"data\":{\"channel\":\"private-encrypted-secret\"}}"},
    {3, "{\"event\":\"pusher:subscribe\",\"data\":{\"channel\":\"private-z\"}}"},
    {3, "{\"event\":\"pusher:signin\",\"data\":{\"user_data\":\"{\\\"id\\\":\\\"u9\\\",\\\"watchlist\\\":[\\\"u1\\\"]}\"}}"},
};

static void scenario_run(hd_fuzz_world *w)
{
    for (size_t i = 0; i < sizeof scenario / sizeof scenario[0]; i++) {
        char *text = hd_fuzz_sign_event(w, scenario[i].conn, scenario[i].json, strlen(scenario[i].json));
        hd_fuzz_frame(w, scenario[i].conn, text, strlen(text), true, false);
        hd_free(text);
        hd_fuzz_pump(w);
    }
}

/* ---- signing (§9.1), written apart from http_auth.c on purpose ---- */

static void lower(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s - 'A' + 'a');
}

static bool key_is(const char *key, const char *name)
{
    char *k = hd_strdup(key);
    lower(k);
    bool same = !strcmp(k, name);
    hd_free(k);
    return same;
}

static int pair_cmp(const void *a, const void *b)
{
    const hd_param *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : strcmp(x->value, y->value);
}

/* HMAC-SHA256(secret, "METHOD\npath\nk=v&...") over every parameter but
 * auth_signature, keys lower-cased, sorted by key then value. */
static void sign(const char *method, const char *path, const hd_params *p, const char *secret, char out[65])
{
    hd_param *pairs = hd_calloc(p->count ? p->count : 1, sizeof *pairs);
    size_t n = 0;
    for (size_t i = 0; i < p->count; i++) {
        if (key_is(p->items[i].key, "auth_signature"))
            continue;
        pairs[n].key = hd_strdup(p->items[i].key);
        lower(pairs[n].key);
        pairs[n++].value = p->items[i].value;
    }
    qsort(pairs, n, sizeof *pairs, pair_cmp);
    hd_buf s;
    hd_buf_init(&s);
    char *m = hd_strdup(method);
    for (char *c = m; *c; c++)
        if (*c >= 'a' && *c <= 'z')
            *c = (char)(*c - 'a' + 'A');
    hd_buf_printf(&s, "%s\n%s\n", m, path);
    for (size_t i = 0; i < n; i++) {
        hd_buf_printf(&s, "%s%s=%s", i ? "&" : "", pairs[i].key, pairs[i].value);
        hd_free(pairs[i].key);
    }
    hd_hmac_sha256_hex(secret, strlen(secret), s.data ? s.data : "", s.len, out);
    hd_buf_deinit(&s);
    hd_free(pairs);
    hd_free(m);
}

static int hex(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* The app a path names (/apps/{id}/..., {id} percent-decoded), else app 0. */
static const hd_app_config *app_of_path(const char *path)
{
    const hd_app_config *fallback = &g_cfg.apps[0];
    if (strncmp(path, "/apps/", 6) != 0)
        return fallback;
    const char *s = path + 6;
    size_t len = strcspn(s, "/");
    char *id = hd_malloc(len + 1);
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int hi = s[i] == '%' && i + 2 < len ? hex(s[i + 1]) : -1, lo = hi >= 0 ? hex(s[i + 2]) : -1;
        if (lo >= 0) {
            id[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            id[o++] = s[i];
        }
    }
    id[o] = '\0';
    const hd_app_config *app = hd_config_app_by_id(&g_cfg, id);
    hd_free(id);
    return app ? app : fallback;
}

static void params_drop_auth(hd_params *p)
{
    static const char *const names[] = {"auth_key", "auth_timestamp", "auth_version", "auth_signature", "body_md5"};
    hd_params kept;
    hd_params_init(&kept);
    for (size_t i = 0; i < p->count; i++) {
        bool drop = false;
        for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
            drop = drop || key_is(p->items[i].key, names[k]);
        if (!drop)
            hd_params_add(&kept, p->items[i].key, strlen(p->items[i].key), p->items[i].value,
                          strlen(p->items[i].value));
    }
    hd_params_free(p);
    *p = kept;
}

static void params_add_str(hd_params *p, const char *key, const char *value)
{
    hd_params_add(p, key, strlen(key), value, strlen(value));
}

/* '+' requests: signed in full, as the server SDKs do. */
static void sign_request(hd_params *p, const char *method, const char *path, const char *body, size_t body_len)
{
    const hd_app_config *app = app_of_path(path);
    char now[24], md5[33], sig[65];
    snprintf(now, sizeof now, "%lld", (long long)time(NULL));
    params_drop_auth(p);
    params_add_str(p, "auth_key", app->key);
    params_add_str(p, "auth_timestamp", now);
    params_add_str(p, "auth_version", "1.0");
    if (body_len) {
        hd_md5_hex(body, body_len, md5);
        params_add_str(p, "body_md5", md5);
    }
    sign(method, path, p, app->secret, sig);
    params_add_str(p, "auth_signature", sig);
}

/* Raw requests: the placeholders NOW, MD5 and SIGN, in that order. */
static void fill_placeholders(hd_params *p, const char *method, const char *path, const char *body, size_t body_len)
{
    char now[24], md5[33], sig[65];
    snprintf(now, sizeof now, "%lld", (long long)time(NULL));
    hd_md5_hex(body, body_len, md5);
    const char *const names[] = {"auth_timestamp", "body_md5", "auth_signature"};
    const char *const marks[] = {"NOW", "MD5", "SIGN"};
    for (size_t k = 0; k < 3; k++) {
        if (k == 2)
            sign(method, path, p, app_of_path(path)->secret, sig);
        const char *value = k == 0 ? now : k == 1 ? md5 : sig;
        for (size_t i = 0; i < p->count; i++) {
            if (!key_is(p->items[i].key, names[k]) || strcmp(p->items[i].value, marks[k]))
                continue;
            hd_free(p->items[i].value);
            p->items[i].value = hd_strdup(value);
        }
    }
}

/* ---- one request ---- */

typedef struct request {
    bool signed_;
    char *method, *path, *body;
    const char *query;
    size_t query_len, body_len;
    bool plain; /* UTF-8 throughout and no %-escapes: the answer must be UTF-8 */
} request;

static bool request_split(const char *rec, size_t len, request *r)
{
    const char *nl = memchr(rec, '\n', len);
    size_t line_len = nl ? (size_t)(nl - rec) : len;
    const char *line = rec;
    r->signed_ = line_len && line[0] == '+';
    if (r->signed_)
        line++, line_len--;
    const char *sp = memchr(line, ' ', line_len);
    if (!sp)
        return false;
    r->method = hd_strndup(line, (size_t)(sp - line) < 7 ? (size_t)(sp - line) : 7); /* method[8] in the server */
    const char *target = sp + 1, *target_end = line + line_len;
    const char *q = memchr(target, '?', (size_t)(target_end - target));
    r->path = hd_strndup(target, (size_t)((q ? q : target_end) - target));
    r->query = q ? q + 1 : target_end;
    r->query_len = (size_t)(target_end - r->query);
    r->body_len = nl ? (size_t)(rec + len - (nl + 1)) : 0;
    r->body = hd_strndup(nl ? nl + 1 : "", r->body_len);
    r->plain = hd_fuzz_utf8_valid(rec, len, false) && !memchr(target, '%', (size_t)(target_end - target));
    return true;
}

static void request_free(request *r)
{
    hd_free(r->method);
    hd_free(r->path);
    hd_free(r->body);
}

static void check_response(const request *r, const hd_http_response *res)
{
    const char *body = res->body.data ? res->body.data : "";
    if (res->status < 200 || res->status > 599)
        hd_fuzz_fail("status outside 200-599", body, res->body.len);
    hd_fuzz_expect_json_object("an HTTP API answer", body, res->body.len);
    if (res->status >= 400) {
        cJSON *root = cJSON_ParseWithLength(body, res->body.len);
        bool has_error = cJSON_IsString(cJSON_GetObjectItemCaseSensitive(root, "error"));
        cJSON_Delete(root);
        if (!has_error)
            hd_fuzz_fail("an error answer without an \"error\" string", body, res->body.len);
    }
    if (r->signed_ && res->status == 401)
        hd_fuzz_fail("a request signed per §9.1 was refused with 401", body, res->body.len);
    if (r->plain && !hd_fuzz_utf8_valid(body, res->body.len, false))
        hd_fuzz_fail("answer to a UTF-8 request is not UTF-8", body, res->body.len);
}

/* As http_front.c does: a request with a body is admitted on its head
 * first (signature, app, route), and only then handled, its body's MD5
 * being all that is left to check. */
static void answer(hd_fuzz_world *w, const request *r, const hd_params *params)
{
    if (r->body_len > (size_t)w->srv->cfg->max_http_body_kb * 1024u)
        return; /* 413 from the front end */
    hd_http_request req = {.method = r->method, .path = r->path, .params = params, .body = r->body,
                           .body_len = r->body_len};
    hd_http_response res = {0};
    hd_buf_init(&res.body);
    bool admitted = true;
    if (r->body_len) {
        hd_http_request head = {.method = r->method, .path = r->path, .params = params, .body = ""};
        admitted = hd_http_api_admit(w->srv, &head, r->body_len, &res);
        req.head_admitted = admitted;
    }
    if (admitted)
        hd_http_api_handle(w->srv, &req, &res);
    check_response(r, &res);
    hd_buf_deinit(&res.body);
}

static void handle(hd_fuzz_world *w, const char *rec, size_t len)
{
    request r = {0};
    if (!request_split(rec, len, &r))
        return;
    hd_params params;
    hd_params_init(&params);
    if (hd_params_parse_query(&params, r.query, r.query_len) != 0) {
        if (params.count)
            hd_fuzz_fail("a refused query left parameters behind", r.query, r.query_len);
        hd_params_free(&params);
        request_free(&r); /* the front end answers 400 itself */
        return;
    }
    if (r.signed_)
        sign_request(&params, r.method, r.path, r.body, r.body_len);
    else
        fill_placeholders(&params, r.method, r.path, r.body, r.body_len);
    answer(w, &r, &params);
    hd_params_free(&params);
    request_free(&r);
    hd_fuzz_pump(w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hd_fuzz_world *w = hd_fuzz_world_new(&g_cfg);
    scenario_run(w);
    const char *p = (const char *)data, *end = p + size, *rec;
    size_t len;
    for (int n = 0; n < MAX_REQUESTS && hd_fuzz_next_record(&p, end, "\n===\n", &rec, &len); n++)
        handle(w, rec, len);
    hd_fuzz_world_free(w);
    return 0;
}
