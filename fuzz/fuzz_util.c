/* fuzz_util.c - shared oracles and helpers of the fuzz targets (fuzz_util.h). */
#include "fuzz_util.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "protocol/protocol.h"

void hd_fuzz_fail(const char *what, const void *bytes, size_t len)
{
    const unsigned char *b = bytes;
    fprintf(stderr, "fuzz: %s\n  bytes (%zu): \"", what, len);
    for (size_t i = 0; i < len && i < 2048; i++) {
        if (b[i] >= 0x20 && b[i] < 0x7f && b[i] != '"' && b[i] != '\\')
            fputc(b[i], stderr);
        else
            fprintf(stderr, "\\x%02x", b[i]);
    }
    fprintf(stderr, "\"%s\n", len > 2048 ? "..." : "");
    abort();
}

void hd_fuzz_quiet(void)
{
    hd_log_set_level(-1);
}

/* Length of the sequence a lead byte starts (0: not a lead byte), and the
 * smallest allowed second byte and largest allowed second byte. */
static size_t utf8_lead(unsigned char c, unsigned char *lo, unsigned char *hi)
{
    *lo = 0x80;
    *hi = 0xBF;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        return 2;
    if (c >= 0xE0 && c <= 0xEF) {
        if (c == 0xE0)
            *lo = 0xA0; /* overlong */
        if (c == 0xED)
            *hi = 0x9F; /* surrogates */
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (c == 0xF0)
            *lo = 0x90; /* overlong */
        if (c == 0xF4)
            *hi = 0x8F; /* > U+10FFFF */
        return 4;
    }
    return 0;
}

bool hd_fuzz_utf8_valid(const void *p, size_t len, bool allow_partial)
{
    const unsigned char *s = p;
    size_t i = 0;
    while (i < len) {
        unsigned char lo, hi;
        size_t n = utf8_lead(s[i], &lo, &hi);
        if (!n)
            return false;
        for (size_t k = 1; k < n; k++) {
            if (i + k == len)
                return allow_partial;
            unsigned char c = s[i + k];
            if (k == 1 ? (c < lo || c > hi) : (c & 0xC0) != 0x80)
                return false;
        }
        i += n;
    }
    return true;
}

void hd_fuzz_expect_json_object(const char *what, const char *p, size_t len)
{
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(p, len, &end, false);
    bool ok = cJSON_IsObject(root) && end == p + len;
    cJSON_Delete(root);
    if (!ok) {
        char msg[160];
        snprintf(msg, sizeof msg, "%s is not one JSON object", what);
        hd_fuzz_fail(msg, p, len);
    }
}

bool hd_fuzz_next_record(const char **p, const char *end, const char *sep, const char **rec, size_t *rec_len)
{
    if (*p >= end)
        return false;
    size_t sep_len = strlen(sep);
    const char *at = memmem(*p, (size_t)(end - *p), sep, sep_len);
    *rec = *p;
    *rec_len = (size_t)((at ? at : end) - *p);
    *p = at ? at + sep_len : end;
    return true;
}

void hd_fuzz_socket_auth(hd_buf *out, const char *key, const char *secret, const char *str, size_t len)
{
    char hex[65];
    hd_hmac_sha256_hex(secret, strlen(secret), str, len, hex);
    hd_buf_printf(out, "%s:%s", key, hex);
}
