/* http_conn.c - the lws side of the HTTP API: collect one request (method,
 * path, decoded query parameters, body bounded by max_http_body_kb), hand
 * it to hd_http_api_handle(), write the JSON answer with keep-alive.
 *
 * THREADING: the io thread that owns the connection.
 */
#include <string.h>

#include "adapter_internal.h"
#include "http/http_api.h"

static void http_state_free(hd_session *s)
{
    if (!s || !s->http)
        return;
    hd_buf_deinit(&s->http->body);
    hd_free(s->http->path);
    hd_free(s->http);
    s->http = NULL;
}

/* Write the whole answer and complete the transaction; the per-session
 * data may be freed by lws when this returns, so callers touch it no more. */
static int respond(struct lws *wsi, int status, const char *body, size_t len)
{
    unsigned char hdr[LWS_PRE + 512];
    unsigned char *start = hdr + LWS_PRE, *p = start, *end = hdr + sizeof hdr - 1;
    if (lws_add_http_common_headers(wsi, (unsigned)status, "application/json", len, &p, end) ||
        lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    unsigned char *out = hd_malloc(LWS_PRE + len);
    memcpy(out + LWS_PRE, body, len);
    int n = lws_write(wsi, out + LWS_PRE, len, LWS_WRITE_HTTP_FINAL);
    hd_free(out);
    if (n < 0)
        return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static void collect_params(struct lws *wsi, hd_params *params)
{
    char frag[2048];
    for (int i = 0;; i++) {
        int n = lws_hdr_copy_fragment(wsi, frag, sizeof frag, WSI_TOKEN_HTTP_URI_ARGS, i);
        if (n < 0)
            break;
        const char *eq = memchr(frag, '=', (size_t)n);
        if (eq)
            hd_params_add(params, frag, (size_t)(eq - frag), eq + 1, (size_t)(n - (eq - frag) - 1));
        else
            hd_params_add(params, frag, (size_t)n, "", 0);
    }
}

static int dispatch(struct lws *wsi, hd_session *s)
{
    hd_io_thread *io = lws_context_user(lws_get_context(wsi));
    hd_http_state *h = s->http;
    hd_params params;
    hd_params_init(&params);
    collect_params(wsi, &params);
    hd_http_request req = {h->method, h->path, &params, h->body.data ? h->body.data : "", h->body.len};
    hd_http_response res = {0};
    hd_buf_init(&res.body);
    hd_http_api_handle(io->srv, &req, &res);
    HD_STAT_ADD(io, http_requests, 1);
    hd_log(HD_LOG_DEBUG, "http", "%s %s (%zu body bytes) -> %d", h->method, h->path, h->body.len, res.status);
    hd_params_free(&params);
    http_state_free(s); /* before respond(): completing the transaction frees s itself */
    int rc = respond(wsi, res.status, res.body.data ? res.body.data : "", res.body.len);
    hd_buf_deinit(&res.body);
    return rc;
}

static const char *method_of(struct lws *wsi)
{
    static const struct {
        enum lws_token_indexes tok;
        const char *name;
    } methods[] = {
        {WSI_TOKEN_GET_URI, "GET"},       {WSI_TOKEN_POST_URI, "POST"},     {WSI_TOKEN_PUT_URI, "PUT"},
        {WSI_TOKEN_PATCH_URI, "PATCH"},   {WSI_TOKEN_DELETE_URI, "DELETE"}, {WSI_TOKEN_OPTIONS_URI, "OPTIONS"},
        {WSI_TOKEN_HEAD_URI, "HEAD"},
    };
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (lws_hdr_total_length(wsi, methods[i].tok) > 0)
            return methods[i].name;
    return "GET";
}

static int on_request(struct lws *wsi, hd_session *s, const char *path)
{
    hd_io_thread *io = lws_context_user(lws_get_context(wsi));
    http_state_free(s);
    s->kind = HD_CONN_HTTP;
    s->http = hd_calloc(1, sizeof *s->http);
    snprintf(s->http->method, sizeof s->http->method, "%s", method_of(wsi));
    s->http->path = hd_strdup(path ? path : "/");
    char cl[24];
    long content_length = 0;
    if (lws_hdr_copy(wsi, cl, sizeof cl, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0)
        content_length = atol(cl);
    if (content_length > (long)io->srv->cfg->max_http_body_kb * 1024) {
        static const char body[] = "{\"error\":\"Request body too large\"}";
        http_state_free(s);
        respond(wsi, 413, body, sizeof body - 1);
        return -1;
    }
    char te[32] = "";
    lws_hdr_copy(wsi, te, sizeof te, WSI_TOKEN_HTTP_TRANSFER_ENCODING);
    if (strstr(te, "chunked")) { /* lws 4.1 does not decode chunked request bodies */
        static const char body[] = "{\"error\":\"Content-Length required: chunked request bodies are not supported\"}";
        http_state_free(s);
        respond(wsi, 411, body, sizeof body - 1);
        return -1;
    }
    if (content_length > 0)
        return 0; /* wait for LWS_CALLBACK_HTTP_BODY_COMPLETION */
    return dispatch(wsi, s);
}

static int on_body(struct lws *wsi, hd_session *s, const char *in, size_t len)
{
    hd_io_thread *io = lws_context_user(lws_get_context(wsi));
    if (!s->http)
        return -1;
    if (s->http->body.len + len > (size_t)io->srv->cfg->max_http_body_kb * 1024u) {
        static const char body[] = "{\"error\":\"Request body too large\"}";
        http_state_free(s);
        respond(wsi, 413, body, sizeof body - 1);
        return -1;
    }
    hd_buf_append(&s->http->body, in, len);
    return 0;
}

int hd_http_conn_callback(struct lws *wsi, enum lws_callback_reasons reason, hd_session *s, void *in, size_t len)
{
    switch (reason) {
    case LWS_CALLBACK_HTTP:
        return on_request(wsi, s, in);
    case LWS_CALLBACK_HTTP_BODY:
        return on_body(wsi, s, in, len);
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        return s && s->http ? dispatch(wsi, s) : -1;
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
    case LWS_CALLBACK_CLOSED_HTTP:
        http_state_free(s);
        return 0;
    default:
        return lws_callback_http_dummy(wsi, reason, s, in, len);
    }
}
