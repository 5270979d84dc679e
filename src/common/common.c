/* common.c - errors, allocation, clocks and the byte buffer (logging is
 * in log.c).
 *
 * THREADING: every function is safe from any thread.
 */
#ifndef _GNU_SOURCE /* CMake passes -D_GNU_SOURCE; redefining it breaks -Werror */
#define _GNU_SOURCE
#endif
#include "common.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

const char *hd_strerror(int err)
{
    switch (err) {
    case HD_OK:
        return "success";
#define HD_XX_CASE(name, val, msg) \
    case HD_##name:                \
        return msg;
        HD_ERRNO_MAP(HD_XX_CASE)
#undef HD_XX_CASE
    default:
        return "unknown error";
    }
}

static void oom(size_t n)
{
    char line[96];
    int len = snprintf(line, sizeof line, "herald: out of memory allocating %zu bytes\n", n);
    if (write(2, line, (size_t)len) < 0) { /* nothing more we can do */
    }
    abort();
}

void *hd_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom(n);
    return p;
}

void *hd_calloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p)
        oom(count * size);
    return p;
}

void *hd_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom(n);
    return q;
}

char *hd_strndup(const char *s, size_t n)
{
    char *d = hd_malloc(n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *hd_strdup(const char *s)
{
    return hd_strndup(s, strlen(s));
}

void hd_panic(const char *file, int line, const char *what)
{
    hd_log_emit(HD_LOG_ERR, "panic", "%s:%d: assertion failed: %s", file, line, what);
    abort();
}

uint64_t hd_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t hd_mono_ms(void)
{
    return hd_mono_us() / 1000u;
}

uint64_t hd_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void hd_buf_init(hd_buf *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void hd_buf_deinit(hd_buf *b)
{
    hd_free(b->data);
    hd_buf_init(b);
}

void hd_buf_reserve(hd_buf *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    b->data = hd_realloc(b->data, cap);
    b->cap = cap;
}

void hd_buf_append(hd_buf *b, const void *p, size_t n)
{
    hd_buf_reserve(b, n);
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void hd_buf_puts(hd_buf *b, const char *s)
{
    hd_buf_append(b, s, strlen(s));
}

void hd_buf_printf(hd_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n <= 0)
        return;
    hd_buf_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* Does any of the 8 bytes in w need escaping in a JSON string (a control
 * character, '"' or '\\')? Exact as a yes/no for the word (the classic
 * "has a zero byte" test, applied three times). */
static inline bool json_word_needs_escape(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    uint64_t quote = w ^ (ones * '"'), backslash = w ^ (ones * '\\');
    uint64_t control = (w - ones * 0x20) & ~w;
    return ((control | ((quote - ones) & ~quote) | ((backslash - ones) & ~backslash)) & highs) != 0;
}

/* The escape of byte c into u, or NULL when c is copied as it is. */
static const char *json_escape(unsigned char c, char u[7])
{
    static const char hex[] = "0123456789abcdef";
    switch (c) {
    case '"': return "\\\"";
    case '\\': return "\\\\";
    case '\n': return "\\n";
    case '\r': return "\\r";
    case '\t': return "\\t";
    case '\b': return "\\b";
    case '\f': return "\\f";
    default:
        if (c >= 0x20)
            return NULL;
        u[0] = '\\'; u[1] = 'u'; u[2] = '0'; u[3] = '0';
        u[4] = hex[c >> 4]; u[5] = hex[c & 15]; u[6] = '\0';
        return u;
    }
}

void hd_buf_json_string(hd_buf *b, const char *s, size_t n)
{
    hd_buf_reserve(b, n + 2);
    hd_buf_append(b, "\"", 1);
    size_t run = 0, i = 0;
    while (i < n) {
        /* clean text, eight bytes at a time (a byte at a time was 12 % of
         * the CPU of a 10 KB publish); then the next eight byte by byte */
        while (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (json_word_needs_escape(w))
                break;
            i += 8;
        }
        for (size_t stop = i + 8 < n ? i + 8 : n; i < stop; i++) {
            char u[7];
            const char *esc = json_escape((unsigned char)s[i], u);
            if (!esc)
                continue;
            hd_buf_append(b, s + run, i - run);
            hd_buf_puts(b, esc);
            run = i + 1;
        }
    }
    hd_buf_append(b, s + run, n - run);
    hd_buf_append(b, "\"", 1);
}

size_t hd_utf8_prefix(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    size_t n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) /* s[n] continues a character: cut before it */
        n--;
    return n;
}

char *hd_buf_steal(hd_buf *b, size_t *len_out)
{
    if (!b->data)
        hd_buf_reserve(b, 0), b->data[0] = '\0';
    char *d = b->data;
    if (len_out)
        *len_out = b->len;
    hd_buf_init(b);
    return d;
}
