/* params.c - HTTP query parameters: a growable (key, value) list, query
 * string parsing with URL decoding, and case-insensitive lookup
 * (PUSHER_PROTOCOL.md §9.1).
 *
 * DESIGN
 * ------
 * An hd_params owns heap copies of every key and value (hd_malloc, which
 * aborts on OOM). Keys keep the case they arrived in; only lookups and the
 * string to sign (http_auth.c) fold case, ASCII only, independent of the
 * locale. Parsing is all-or-nothing: on a malformed %-escape the list is
 * restored to what it held before the call.
 *
 * THREADING
 * ---------
 * No global state. A given hd_params must not be used from two threads at
 * once; distinct lists are independent.
 */
#include "protocol.h"

#include <string.h>

#include "common/common.h"
#include "protocol/protocol_internal.h"

void hd_params_init(hd_params *p)
{
    p->items = NULL;
    p->count = 0;
    p->cap = 0;
}

static void truncate_to(hd_params *p, size_t count)
{
    while (p->count > count) {
        p->count--;
        hd_free(p->items[p->count].key);
        hd_free(p->items[p->count].value);
    }
}

void hd_params_free(hd_params *p)
{
    if (!p)
        return;
    truncate_to(p, 0);
    hd_free(p->items);
    hd_params_init(p);
}

static void push_owned(hd_params *p, char *key, char *value)
{
    if (p->count == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 8;
        p->items = hd_realloc(p->items, p->cap * sizeof *p->items);
    }
    p->items[p->count].key = key;
    p->items[p->count].value = value;
    p->count++;
}

void hd_params_add(hd_params *p, const char *key, size_t key_len, const char *value, size_t value_len)
{
    push_owned(p, hd_strndup(key, key_len), hd_strndup(value ? value : "", value ? value_len : 0));
}

static int hex_val(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int hd_url_decode(const char *s, size_t len, bool plus_is_space, char **out)
{
    char *d = hd_malloc(len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '+' && plus_is_space) {
            c = ' ';
        } else if (c == '%') {
            int hi = i + 2 < len ? hex_val(s[i + 1]) : -1;
            int lo = hi >= 0 ? hex_val(s[i + 2]) : -1;
            if (lo < 0 || (hi == 0 && lo == 0)) {
                hd_free(d);
                *out = NULL;
                return HD_EINVAL;
            }
            c = (char)(hi * 16 + lo);
            i += 2;
        }
        d[n++] = c;
    }
    d[n] = '\0';
    *out = d;
    return 0;
}

/* Decode one "key[=value]" segment and append it. */
static int add_segment(hd_params *p, const char *seg, size_t len)
{
    const char *eq = memchr(seg, '=', len);
    size_t key_len = eq ? (size_t)(eq - seg) : len;
    char *key, *value;
    if (hd_url_decode(seg, key_len, true, &key) != 0)
        return HD_EINVAL;
    const char *v = eq ? eq + 1 : seg + len;
    if (hd_url_decode(v, (size_t)(seg + len - v), true, &value) != 0) {
        hd_free(key);
        return HD_EINVAL;
    }
    push_owned(p, key, value);
    return 0;
}

int hd_params_parse_query(hd_params *p, const char *query, size_t len)
{
    size_t before = p->count;
    size_t start = 0;
    while (query && start < len) {
        const char *amp = memchr(query + start, '&', len - start);
        size_t end = amp ? (size_t)(amp - query) : len;
        if (end > start && add_segment(p, query + start, end - start) != 0) {
            truncate_to(p, before);
            return HD_EINVAL;
        }
        start = end + 1;
    }
    return 0;
}

static char ascii_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

int hd_protocol__ascii_casecmp(const char *a, const char *b)
{
    for (;; a++, b++) {
        unsigned char x = (unsigned char)ascii_lower(*a), y = (unsigned char)ascii_lower(*b);
        if (x != y || x == '\0')
            return (int)x - (int)y;
    }
}

const char *hd_params_get(const hd_params *p, const char *name)
{
    for (size_t i = 0; p && i < p->count; i++) {
        if (hd_protocol__ascii_casecmp(p->items[i].key, name) == 0)
            return p->items[i].value;
    }
    return NULL;
}
