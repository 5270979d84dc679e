/* log.c - log lines (text or JSON, with context), the rate-limited log of
 * refusals, and the final line of a run. See log.h for the design.
 *
 * THREADING: any thread. A line is formatted on the caller's stack and
 * written with one write(2). The refusal table is guarded by
 * refusal_lock, held for bookkeeping only; refusal_due is read without it
 * (relaxed atomic) so the io threads' periodic flush costs a load when no
 * summary is due, and is written only with the lock held.
 */
#ifndef _GNU_SOURCE /* CMake passes -D_GNU_SOURCE; redefining it breaks -Werror */
#define _GNU_SOURCE
#endif
#include "log.h"

#include "common.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int hd_log_level_current = HD_LOG_NOTICE; /* until main applies the configuration */
static int log_format = HD_LOG_TEXT;
static int log_fd = 2;
static uint64_t (*log_clock)(void) = hd_mono_ms;

static const char *const level_names[] = {"error", "warn", "notice", "info", "debug"};
static const char *const level_tags[] = {"ERR", "WARN", "NOTICE", "INFO", "DEBUG"}; /* text lines */

void hd_log_set_level(int level)
{
    hd_log_level_current = level;
}

void hd_log_set_format(int format)
{
    log_format = format == HD_LOG_JSON ? HD_LOG_JSON : HD_LOG_TEXT;
}

void hd_log_set_fd(int fd)
{
    log_fd = fd;
}

void hd_log_set_clock(uint64_t (*now_ms)(void))
{
    log_clock = now_ms ? now_ms : hd_mono_ms;
}

int hd_log_level_parse(const char *name)
{
    for (int i = 0; name && i <= HD_LOG_DEBUG; i++)
        if (!strcasecmp(name, level_names[i]))
            return i;
    return -1;
}

int hd_log_format_parse(const char *name)
{
    if (name && !strcasecmp(name, "json"))
        return HD_LOG_JSON;
    if (name && !strcasecmp(name, "text"))
        return HD_LOG_TEXT;
    return -1;
}

static int clamp_level(int level)
{
    return level < HD_LOG_ERR ? HD_LOG_ERR : level > HD_LOG_DEBUG ? HD_LOG_DEBUG : level;
}

/* ---- bounded output: a line never grows past its buffer ---- */

typedef struct wbuf {
    char *p;
    size_t len, cap;
} wbuf;

static size_t room(const wbuf *w)
{
    return w->cap - w->len;
}

/* All of s or nothing. */
static bool put(wbuf *w, const char *s, size_t n)
{
    if (room(w) < n)
        return false;
    memcpy(w->p + w->len, s, n);
    w->len += n;
    return true;
}

static bool put_str(wbuf *w, const char *s)
{
    return put(w, s, strlen(s));
}

/* Length of the well-formed UTF-8 sequence at s (n bytes left), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xBF;
    size_t len;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        lo = c == 0xE0 ? 0xA0 : 0x80; /* no overlong forms */
        hi = c == 0xED ? 0x9F : 0xBF; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        lo = c == 0xF0 ? 0x90 : 0x80;
        hi = c == 0xF4 ? 0x8F : 0xBF; /* nothing past U+10FFFF */
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return len;
}

/* The escaped form of the character at s into e (at least 8 bytes):
 * returns its length, and in *in the input bytes it stands for. Text
 * escapes only what would break the line (control characters, bytes that
 * are not UTF-8); JSON escapes what RFC 8259 requires and replaces bytes
 * that are not UTF-8 with U+FFFD so every line parses. */
static size_t escape_char(const unsigned char *s, size_t n, bool json, char *e, size_t *in)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char c = s[0];
    *in = 1;
    const char *named = c == '\n' ? "\\n" : c == '\r' ? "\\r" : c == '\t' ? "\\t" : NULL;
    if (json && !named)
        named = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\b' ? "\\b" : c == '\f' ? "\\f" : NULL;
    if (named) {
        memcpy(e, named, 2);
        return 2;
    }
    if (c < 0x20 || c == 0x7f) {
        if (json) {
            memcpy(e, "\\u00", 4);
            e[4] = hex[c >> 4];
            e[5] = hex[c & 15];
            return 6;
        }
        e[0] = '\\', e[1] = 'x', e[2] = hex[c >> 4], e[3] = hex[c & 15];
        return 4;
    }
    size_t len = utf8_len(s, n);
    if (len) {
        memcpy(e, s, len);
        *in = len;
        return len;
    }
    if (json) {
        memcpy(e, "\\ufffd", 6);
        return 6;
    }
    e[0] = '\\', e[1] = 'x', e[2] = hex[c >> 4], e[3] = hex[c & 15];
    return 4;
}

/* Escaped s[0, n) into w, at most limit bytes of output, whole characters
 * only. Returns how many input bytes went in. */
static size_t put_escaped(wbuf *w, const char *s, size_t n, bool json, size_t limit)
{
    size_t end = w->len + (limit < room(w) ? limit : room(w)), i = 0;
    while (i < n) {
        char e[8];
        size_t in, len = escape_char((const unsigned char *)s + i, n - i, json, e, &in);
        if (w->len + len > end)
            break;
        memcpy(w->p + w->len, e, len);
        w->len += len;
        i += in;
    }
    return i;
}

size_t hd_log_json_escape(char *out, size_t cap, const char *s, size_t n, size_t *used)
{
    wbuf w = {out, 0, cap};
    size_t took = put_escaped(&w, s, n, true, cap);
    if (used)
        *used = took;
    return w.len;
}

/* ---- the parts of a line ---- */

static void timestamp(char out[64])
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
}

/* "1.2.3.4:5678" or "[::1]:5678"; IPv4-mapped IPv6 (dual-stack listener) as IPv4. */
static const char *peer_text(int fd, char *buf, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char ip[INET6_ADDRSTRLEN];
    if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &sl) != 0)
        return NULL;
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
        snprintf(buf, len, "%s:%u", ip, ntohs(a->sin_port));
        return buf;
    }
    if (ss.ss_family != AF_INET6)
        return NULL;
    const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
    if (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr)) {
        inet_ntop(AF_INET, &a->sin6_addr.s6_addr[12], ip, sizeof ip);
        snprintf(buf, len, "%s:%u", ip, ntohs(a->sin6_port));
    } else {
        inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
        snprintf(buf, len, "[%s]:%u", ip, ntohs(a->sin6_port));
    }
    return buf;
}

/* One key=value (text) or ,"key":"value" (JSON) of the context. */
static void put_field(wbuf *w, bool json, bool *first, const char *key, const char *value)
{
    if (!value)
        return;
    size_t mark = w->len;
    bool ok = json ? put_str(w, ",\"") && put_str(w, key) && put_str(w, "\":\"")
                   : put_str(w, *first ? " [" : " ") && put_str(w, key) && put(w, "=", 1);
    if (ok) {
        put_escaped(w, value, strlen(value), json, HD_LOG_VALUE_MAX);
        ok = !json || put(w, "\"", 1);
    }
    if (!ok) {
        w->len = mark; /* no half fields */
        return;
    }
    *first = false;
}

/* Everything after msg: the context, the refusal fields, the line's end. */
static void put_tail(wbuf *w, bool json, const hd_log_ctx *ctx, const char *reason, uint64_t count)
{
    bool first = true;
    char addr[64], num[48];
    if (json) {
        put_field(w, json, &first, "reason", reason);
        if (count) {
            snprintf(num, sizeof num, ",\"count\":%llu", (unsigned long long)count);
            put_str(w, num);
        }
    }
    if (ctx) {
        const char *remote = ctx->remote ? ctx->remote : ctx->peer_fd ? peer_text(*ctx->peer_fd, addr, sizeof addr) : NULL;
        put_field(w, json, &first, "app", ctx->app);
        put_field(w, json, &first, "socket_id", ctx->socket_id);
        put_field(w, json, &first, "channel", ctx->channel);
        put_field(w, json, &first, "user", ctx->user);
        put_field(w, json, &first, "remote", remote);
    }
    if (!json && !first)
        put(w, "]", 1);
    put_str(w, json ? "}\n" : "\n");
}

size_t hd_log_format_line(char *out, size_t cap, int level, const char *module, const hd_log_ctx *ctx,
                          const char *reason, uint64_t count, const char *msg)
{
    bool json = log_format == HD_LOG_JSON;
    char tail_buf[2048], head_buf[192], ts[64];
    wbuf tail = {tail_buf, 0, sizeof tail_buf};
    put_tail(&tail, json, ctx, reason, count);
    timestamp(ts);
    level = clamp_level(level);
    int hn = json ? snprintf(head_buf, sizeof head_buf, "{\"ts\":\"%s\",\"level\":\"%s\",\"module\":\"%.32s\",\"msg\":\"",
                             ts, level_names[level], module)
                  : snprintf(head_buf, sizeof head_buf, "%s %-6s %-8.32s ", ts, level_tags[level], module);
    wbuf w = {out, 0, cap};
    if (!put(&w, head_buf, (size_t)hn))
        return 0;
    static const char more[] = "...";
    size_t closing = tail.len + (json ? 1 : 0), n = strlen(msg);
    size_t limit = room(&w) > closing + sizeof more ? room(&w) - closing - (sizeof more - 1) : 0;
    if (put_escaped(&w, msg, n, json, limit) < n)
        put(&w, more, sizeof more - 1); /* truncated: say so */
    if (json)
        put(&w, "\"", 1);
    put(&w, tail.p, tail.len);
    return w.len;
}

static void write_line(const char *line, size_t n)
{
    if (n && write(log_fd, line, n) < 0) { /* stderr gone: drop the line */
    }
}

/* prefix (may be NULL) + ": " + the formatted message, then the line. */
static void emit_v(int level, const char *module, const hd_log_ctx *ctx, const char *reason, uint64_t count,
                   const char *prefix, const char *fmt, va_list ap)
{
    char msg[HD_LOG_LINE_MAX], line[HD_LOG_LINE_MAX];
    int off = prefix ? snprintf(msg, sizeof msg, "%s: ", prefix) : 0;
    if (off < 0 || (size_t)off >= sizeof msg)
        off = 0;
    vsnprintf(msg + off, sizeof msg - (size_t)off, fmt, ap);
    write_line(line, hd_log_format_line(line, sizeof line, level, module, ctx, reason, count, msg));
}

void hd_log_emit(int level, const char *module, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    emit_v(level, module, NULL, NULL, 0, NULL, fmt, ap);
    va_end(ap);
}

void hd_log_emit_ctx(int level, const char *module, const hd_log_ctx *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    emit_v(level, module, ctx, NULL, 0, NULL, fmt, ap);
    va_end(ap);
}

/* ---- refusals: the first of a reason at once, then a count per window ---- */

typedef struct refusal_slot {
    char key[HD_REFUSAL_KEY_MAX];
    const char *module; /* of the first refusal of the window (modules are string literals) */
    bool open;          /* a window runs: its first refusal was logged */
    uint64_t window_start;
    uint64_t suppressed; /* refusals counted in the window and not logged */
} refusal_slot;

/* A "N more" line to write once the lock is released. */
typedef struct refusal_summary {
    char key[HD_REFUSAL_KEY_MAX];
    const char *module;
    uint64_t count;
    unsigned span_s;
} refusal_summary;

static pthread_mutex_t refusal_lock = PTHREAD_MUTEX_INITIALIZER;
static refusal_slot refusal_slots[HD_REFUSAL_KEYS]; /* {refusal_lock} */
static size_t refusal_used;                         /* {refusal_lock} */
/* Earliest end of a window that holds a count; UINT64_MAX = none. */
static _Atomic uint64_t refusal_due = UINT64_MAX;

/* The slot of reason: found, added, or the shared last one when the table
 * is full (a client cannot make the table grow). */
static refusal_slot *refusal_slot_for(const char *reason)
{
    for (size_t i = 0; i < refusal_used; i++)
        if (!strncmp(refusal_slots[i].key, reason, HD_REFUSAL_KEY_MAX - 1))
            return &refusal_slots[i];
    if (refusal_used < HD_REFUSAL_KEYS - 1) {
        refusal_slot *sl = &refusal_slots[refusal_used++];
        snprintf(sl->key, sizeof sl->key, "%s", reason);
        return sl;
    }
    refusal_slot *other = &refusal_slots[HD_REFUSAL_KEYS - 1];
    if (!other->key[0])
        snprintf(other->key, sizeof other->key, "%s", "other refusals");
    return other;
}

/* Close sl's window if it ended (or all), handing out its count when it
 * has one. */
static bool refusal_take(refusal_slot *sl, uint64_t now, bool all, refusal_summary *out)
{
    if (!sl->open)
        return false;
    uint64_t age = now > sl->window_start ? now - sl->window_start : 0;
    bool ended = age >= HD_REFUSAL_WINDOW_MS;
    if (!ended && !(all && sl->suppressed))
        return false;
    bool any = sl->suppressed > 0;
    if (any) {
        memcpy(out->key, sl->key, sizeof out->key);
        out->module = sl->module;
        out->count = sl->suppressed;
        unsigned span = (unsigned)((age + 999) / 1000);
        out->span_s = span < 1 ? 1 : span > HD_REFUSAL_WINDOW_MS / 1000 ? HD_REFUSAL_WINDOW_MS / 1000 : span;
    }
    sl->open = false;
    sl->suppressed = 0;
    return any;
}

static void refusal_write_summary(const refusal_summary *s)
{
    char msg[128], line[HD_LOG_LINE_MAX];
    snprintf(msg, sizeof msg, "%llu more %.47s in the last %u s", (unsigned long long)s->count, s->key, s->span_s);
    write_line(line, hd_log_format_line(line, sizeof line, HD_LOG_INFO, s->module, NULL, s->key, s->count, msg));
}

void hd_log_refusal_emit(const char *module, const char *reason, const hd_log_ctx *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    hd_log_refusal_emitv(module, reason, ctx, fmt, ap);
    va_end(ap);
}

void hd_log_refusal_emitv(const char *module, const char *reason, const hd_log_ctx *ctx, const char *fmt, va_list ap)
{
    uint64_t now = log_clock();
    refusal_summary sum;
    pthread_mutex_lock(&refusal_lock);
    refusal_slot *sl = refusal_slot_for(reason);
    bool have_sum = refusal_take(sl, now, false, &sum);
    bool first = !sl->open;
    if (first) {
        sl->open = true;
        sl->window_start = now;
        sl->module = module;
    } else if (sl->suppressed++ == 0) {
        uint64_t end = sl->window_start + HD_REFUSAL_WINDOW_MS;
        if (end < atomic_load_explicit(&refusal_due, memory_order_relaxed))
            atomic_store_explicit(&refusal_due, end, memory_order_relaxed);
    }
    pthread_mutex_unlock(&refusal_lock);
    if (have_sum)
        refusal_write_summary(&sum);
    if (first)
        emit_v(HD_LOG_INFO, module, ctx, reason, 0, reason, fmt, ap);
}

void hd_log_refusal_flush(bool all)
{
    uint64_t now = log_clock();
    if (!all && now < atomic_load_explicit(&refusal_due, memory_order_relaxed))
        return;
    refusal_summary sums[HD_REFUSAL_KEYS];
    size_t n = 0;
    uint64_t due = UINT64_MAX;
    pthread_mutex_lock(&refusal_lock);
    for (size_t i = 0; i < HD_REFUSAL_KEYS; i++) {
        refusal_slot *sl = &refusal_slots[i];
        if (refusal_take(sl, now, all, &sums[n]))
            n++;
        else if (sl->open && sl->suppressed && sl->window_start + HD_REFUSAL_WINDOW_MS < due)
            due = sl->window_start + HD_REFUSAL_WINDOW_MS;
    }
    atomic_store_explicit(&refusal_due, due, memory_order_relaxed);
    pthread_mutex_unlock(&refusal_lock);
    for (size_t i = 0; i < n; i++)
        refusal_write_summary(&sums[i]);
}

void hd_log_refusal_reset(void)
{
    pthread_mutex_lock(&refusal_lock);
    memset(refusal_slots, 0, sizeof refusal_slots);
    refusal_used = 0;
    atomic_store_explicit(&refusal_due, UINT64_MAX, memory_order_relaxed);
    pthread_mutex_unlock(&refusal_lock);
}

void hd_log_exit(int status, const char *what)
{
    hd_log_refusal_flush(true); /* counts still in a window would be lost with the process */
    hd_log(status ? HD_LOG_ERR : HD_LOG_NOTICE, "main", "%s (exit status %d)", what, status);
}
