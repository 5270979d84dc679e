/* fuzz_http_head.c - libFuzzer target: the HTTP/1.x request-head parser
 * (src/http/http_parse.c hd_http_parse_head). The input is the bytes a
 * client sent; it is parsed with production-like limits and with limits
 * small enough (derived from its length) for 414 and 431 to happen.
 *
 * Checked, besides memory safety:
 *   - a complete head (n > 0) lies within the input, its method and target
 *     point into it, and content_length is -1 or a plain number;
 *   - the bytes after the head change nothing (a body, a pipelined request);
 *   - arrival in pieces changes nothing: every prefix of a complete head
 *     is "need more" (0), so how TCP splits a request cannot make herald
 *     refuse it or read it differently.
 */
#include <string.h>

#include "fuzz_util.h"
#include "http/http_api.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    hd_fuzz_quiet();
    return 0;
}

/* hd_http_parse_head zeroes the whole head first, padding included */
static bool same_head(const hd_http_head *a, const hd_http_head *b)
{
    return !memcmp(a, b, sizeof *a);
}

static void check_complete(const char *buf, size_t len, int n, const hd_http_head *h, const hd_http_head_limits *lim)
{
    if ((size_t)n > len || h->head_len != (size_t)n || (size_t)n > lim->max_head)
        hd_fuzz_fail("head length outside the input or the limit", buf, len);
    if (!h->method_len || h->method_len >= sizeof h->method || memcmp(buf + h->target_off - h->method_len - 1,
                                                                      h->method, h->method_len))
        hd_fuzz_fail("method is not the bytes before the target", buf, len);
    if (!h->target_len || h->target_len > lim->max_target || h->target_off + h->target_len > (size_t)n)
        hd_fuzz_fail("target outside the head or over the limit", buf, len);
    if (h->content_length < -1 || (h->http_minor != 0 && h->http_minor != 1))
        hd_fuzz_fail("content_length or version out of range", buf, len);
}

static void parse_with(const char *buf, size_t len, const hd_http_head_limits *lim)
{
    hd_http_head h, again;
    int n = hd_http_parse_head(buf, len, lim, &h);
    if (n <= 0)
        return;
    check_complete(buf, len, n, &h, lim);
    if (hd_http_parse_head(buf, (size_t)n, lim, &again) != n || !same_head(&h, &again))
        hd_fuzz_fail("bytes after the head changed how it parses", buf, len);
    /* every prefix: "need more"; all of them for short heads, a spread otherwise */
    size_t step = (size_t)n <= 512 ? 1 : (size_t)n / 256;
    for (size_t k = 0; k < (size_t)n; k += step) {
        char *prefix = hd_malloc(k ? k : 1); /* exactly k bytes: a read past them is caught */
        memcpy(prefix, buf, k);
        int r = hd_http_parse_head(prefix, k, lim, &again);
        hd_free(prefix);
        if (r != 0)
            hd_fuzz_fail("a prefix of a complete head is not \"need more\"", buf, k);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    const hd_http_head_limits roomy = {.max_head = 8192, .max_target = 4096, .max_headers = 100};
    const hd_http_head_limits tight = {.max_head = size / 2 + 16, .max_target = size / 4 + 1, .max_headers = 4};
    parse_with(buf, size, &roomy);
    parse_with(buf, size, &tight);
    return 0;
}
