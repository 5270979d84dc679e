/* channel_name.c - channel name validation and classification, socket id
 * and user id syntax (PUSHER_PROTOCOL.md §5, §11).
 *
 * DESIGN
 * ------
 * Pure byte scans over caller-supplied (pointer, length) pairs; nothing is
 * allocated and nothing is read past len. Prefixes are matched anchored at
 * the start of the name, in the order §5 gives (private-encrypted- before
 * private-), so "xprivate-foo" is public.
 *
 * THREADING
 * ---------
 * No state at all: every function is reentrant and safe from any thread.
 */
#include "protocol.h"

#include <string.h>

#include "common/common.h"

#define USER_PREFIX_LEN (sizeof HD_USER_CHANNEL_PREFIX - 1)
#define USER_ID_MAX 128
#define SOCKET_ID_PART_MAX 20

/* [-a-zA-Z0-9_=@,.;], the alphabet of channel names and user ids. */
static bool name_char_ok(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != '\0' && strchr("-_=@,.;", c) != NULL;
}

static bool name_chars_ok(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (!name_char_ok((unsigned char)s[i]))
            return false;
    }
    return true;
}

static bool has_prefix(const char *s, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);
    return len >= n && memcmp(s, prefix, n) == 0;
}

static bool is_cache_name(const char *name, size_t len)
{
    static const char *const prefixes[] = {"cache-", "private-cache-", "private-encrypted-cache-",
                                           "presence-cache-"};
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        if (has_prefix(name, len, prefixes[i]))
            return true;
    }
    return false;
}

static hd_channel_kind kind_of(const char *name, size_t len)
{
    if (has_prefix(name, len, "private-encrypted-"))
        return HD_CHANNEL_PRIVATE_ENCRYPTED;
    if (has_prefix(name, len, "private-"))
        return HD_CHANNEL_PRIVATE;
    if (has_prefix(name, len, "presence-"))
        return HD_CHANNEL_PRESENCE;
    return HD_CHANNEL_PUBLIC;
}

int hd_channel_classify(const char *name, size_t len, size_t max_len, hd_channel_type *out)
{
    if (!name || len == 0)
        return HD_EINVAL;
    if (len > max_len)
        return HD_ELIMIT;
    if (name[0] == '#') {
        if (!has_prefix(name, len, HD_USER_CHANNEL_PREFIX))
            return HD_EINVAL;
        if (!hd_user_id_valid(name + USER_PREFIX_LEN, len - USER_PREFIX_LEN))
            return HD_EINVAL;
        out->kind = HD_CHANNEL_SERVER_TO_USER;
        out->cache = false;
        return 0;
    }
    if (!name_chars_ok(name, len))
        return HD_EINVAL;
    out->kind = kind_of(name, len);
    out->cache = is_cache_name(name, len);
    return 0;
}

bool hd_channel_needs_auth(hd_channel_kind kind)
{
    return kind == HD_CHANNEL_PRIVATE || kind == HD_CHANNEL_PRIVATE_ENCRYPTED || kind == HD_CHANNEL_PRESENCE;
}

const char *hd_channel_user_id(const char *name)
{
    if (!name || strncmp(name, HD_USER_CHANNEL_PREFIX, USER_PREFIX_LEN) != 0)
        return NULL;
    return name + USER_PREFIX_LEN;
}

/* 1..SOCKET_ID_PART_MAX ASCII digits; returns how many, 0 if out of range. */
static size_t digit_run(const char *s, size_t len)
{
    size_t n = 0;
    while (n < len && s[n] >= '0' && s[n] <= '9')
        n++;
    return n <= SOCKET_ID_PART_MAX ? n : 0;
}

bool hd_socket_id_valid(const char *s, size_t len)
{
    if (!s)
        return false;
    size_t a = digit_run(s, len);
    if (a == 0 || a >= len || s[a] != '.')
        return false;
    size_t b = digit_run(s + a + 1, len - a - 1);
    return b != 0 && a + 1 + b == len;
}

bool hd_user_id_valid(const char *s, size_t len)
{
    return s && len >= 1 && len <= USER_ID_MAX && name_chars_ok(s, len);
}
