/* config_value.c - convert, check and store one configuration value.
 *
 * DESIGN
 * ------
 * hd_config__set_json (file) and hd_config__set_text (environment) reduce a
 * value to an integer, a bool or a string, then one checker per kind applies
 * the row's bounds and writes the error, which always names the key (the
 * JSON path, or the variable and its path) and what is allowed. Integer
 * keys accept numeric strings ("100000"), as sockudo files use them. A
 * secret row's value (a password) never appears in a message: only its kind
 * or its length.
 *
 * THREADING
 * ---------
 * Called only by the loader, on one thread.
 */
#include "config_internal.h"

#include "common/common.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

int hd_config__fail(hd_cfg_ctx *ctx, const char *fmt, ...)
{
    if (ctx->err && ctx->errlen) {
        int n = snprintf(ctx->err, ctx->errlen, "config: ");
        va_list ap;
        va_start(ap, fmt);
        if (n > 0 && (size_t)n < ctx->errlen)
            vsnprintf(ctx->err + n, ctx->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return HD_EINVAL;
}

void hd_config__warn_ignored(hd_cfg_ctx *ctx, const char *what, const char *note)
{
    ctx->warnings++;
    hd_log(HD_LOG_WARN, "config", "ignored: %s (not supported by herald)%s", what, note ? note : "");
}

void hd_config__join(char *out, size_t outlen, const char *prefix, const char *name)
{
    if (prefix && *prefix)
        snprintf(out, outlen, "%s.%s", prefix, name);
    else
        snprintf(out, outlen, "%s", name);
}

void hd_config__replace(char **slot, const char *s)
{
    char *copy = s ? hd_strdup(s) : NULL;
    hd_free(*slot);
    *slot = copy;
}

bool hd_config__parse_uint(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    size_t n = 0;
    for (; s[n]; n++) {
        if (s[n] < '0' || s[n] > '9' || n >= 20)
            return false;
        uint64_t d = (uint64_t)(s[n] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return n > 0;
}

void hd_config__describe(const cJSON *v, char *out, size_t outlen)
{
    if (cJSON_IsString(v))
        snprintf(out, outlen, "string \"%.60s\"", v->valuestring);
    else if (cJSON_IsNumber(v))
        snprintf(out, outlen, "number %g", v->valuedouble);
    else if (cJSON_IsBool(v))
        snprintf(out, outlen, "%s", cJSON_IsTrue(v) ? "true" : "false");
    else if (cJSON_IsNull(v))
        snprintf(out, outlen, "null");
    else if (cJSON_IsArray(v))
        snprintf(out, outlen, "an array");
    else
        snprintf(out, outlen, "an object");
}

void hd_config__describe_kind(const cJSON *v, char *out, size_t outlen)
{
    const char *kind = cJSON_IsString(v)   ? "a string"
                       : cJSON_IsNumber(v) ? "a number"
                       : cJSON_IsBool(v)   ? "a boolean"
                       : cJSON_IsNull(v)   ? "null"
                       : cJSON_IsArray(v)  ? "an array"
                                           : "an object";
    snprintf(out, outlen, "%s", kind);
}

int hd_config__check_dupes(hd_cfg_ctx *ctx, const cJSON *obj, const char *path)
{
    for (const cJSON *a = obj->child; a; a = a->next)
        for (const cJSON *b = a->next; b; b = b->next)
            if (a->string && b->string && strcmp(a->string, b->string) == 0) {
                char full[256];
                hd_config__join(full, sizeof full, path, a->string);
                return hd_config__fail(ctx, "%s: duplicate key", full);
            }
    return 0;
}

/* "1..10000" or "\"auto\" or 1..64" */
static void range_text(const hd_cfg_row *row, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s%llu..%llu", row->type == HD_CFG_WORKERS ? "\"auto\" or " : "",
             (unsigned long long)row->min, (unsigned long long)row->max);
}

static void store_uint(const hd_cfg_row *row, void *base, uint64_t v)
{
    if (row->offset == HD_CFG_NOFIELD)
        return;
    char *p = (char *)base + row->offset;
    if (row->type == HD_CFG_U16)
        *(uint16_t *)p = (uint16_t)v;
    else
        *(uint32_t *)p = (uint32_t)v;
}

/* value_text is how the value is shown in a message: 0, "abc", 1.5 */
static int check_uint(hd_cfg_ctx *ctx, const hd_cfg_row *row, void *base, uint64_t v, const char *name,
                      const char *value_text)
{
    if (v < row->min || v > row->max) {
        char range[64];
        range_text(row, range, sizeof range);
        return hd_config__fail(ctx, "%s: %s is out of range (%s)", name, value_text, range);
    }
    store_uint(row, base, v);
    return 0;
}

static int check_bool(hd_cfg_ctx *ctx, const hd_cfg_row *row, void *base, bool v, const char *name)
{
    if ((uint64_t)v < row->min)
        return hd_config__fail(ctx, "%s: false is refused: %s", name, row->why ? row->why : "must be true");
    if (row->offset != HD_CFG_NOFIELD)
        *(bool *)((char *)base + row->offset) = v;
    return 0;
}

static void choices_text(const char *const *choices, char *out, size_t outlen)
{
    size_t n = 0;
    out[0] = '\0';
    for (size_t i = 0; choices[i] && n < outlen; i++)
        n += (size_t)snprintf(out + n, outlen - n, "%s%s", i ? ", " : "", choices[i]);
}

static int check_enum(hd_cfg_ctx *ctx, const hd_cfg_row *row, void *base, const char *s, const char *name)
{
    for (size_t i = 0; row->choices[i]; i++) {
        if (strcasecmp(s, row->choices[i]) != 0)
            continue;
        if (row->offset != HD_CFG_NOFIELD)
            hd_config__replace((char **)((char *)base + row->offset), row->choices[i]);
        return 0;
    }
    char allowed[256];
    choices_text(row->choices, allowed, sizeof allowed);
    return hd_config__fail(ctx, "%s: \"%.60s\" is not supported (allowed: %s)", name, s, allowed);
}

static int check_string(hd_cfg_ctx *ctx, const hd_cfg_row *row, void *base, const char *s, const char *name)
{
    if (row->type == HD_CFG_ENUM)
        return check_enum(ctx, row, base, s, name);
    size_t len = strlen(s);
    if (len < row->min)
        return hd_config__fail(ctx, "%s: must not be empty", name);
    if (len > row->max)
        return hd_config__fail(ctx, "%s: is too long (%zu characters, at most %llu)", name, len,
                               (unsigned long long)row->max);
    if (row->offset != HD_CFG_NOFIELD)
        hd_config__replace((char **)((char *)base + row->offset), s);
    return 0;
}

/* An integer key given as text: digits, or "auto" for worker counts. */
static int set_uint_text(hd_cfg_ctx *ctx, const hd_cfg_row *row, void *base, const char *s, const char *name)
{
    char shown[80];
    snprintf(shown, sizeof shown, "\"%.60s\"", s);
    if (row->type == HD_CFG_WORKERS && strcasecmp(s, "auto") == 0) {
        store_uint(row, base, 0);
        return 0;
    }
    uint64_t v;
    if (!hd_config__parse_uint(s, &v)) {
        char range[64];
        range_text(row, range, sizeof range);
        return hd_config__fail(ctx, "%s: %s is not a whole number (%s)", name, shown, range);
    }
    return check_uint(ctx, row, base, v, name, s);
}

static int set_uint_json(hd_cfg_ctx *ctx, const hd_cfg_row *row, void *base, const cJSON *v, const char *name)
{
    char range[64], shown[80];
    range_text(row, range, sizeof range);
    if (cJSON_IsString(v))
        return set_uint_text(ctx, row, base, v->valuestring, name);
    if (!cJSON_IsNumber(v)) {
        hd_config__describe(v, shown, sizeof shown);
        return hd_config__fail(ctx, "%s: expected a whole number (%s), got %s", name, range, shown);
    }
    double d = v->valuedouble;
    if (!isfinite(d) || d != floor(d)) {
        return hd_config__fail(ctx, "%s: %g is not a whole number (%s)", name, d, range);
    }
    if (d < 0 || d > (double)row->max) {
        snprintf(shown, sizeof shown, fabs(d) < 1e15 ? "%.0f" : "%g", d);
        return hd_config__fail(ctx, "%s: %s is out of range (%s)", name, shown, range);
    }
    snprintf(shown, sizeof shown, "%.0f", d);
    return check_uint(ctx, row, base, (uint64_t)d, name, shown);
}

int hd_config__set_json(hd_cfg_ctx *ctx, const hd_cfg_row *row, void *base, const cJSON *v, const char *name)
{
    char shown[80];
    switch (row->type) {
    case HD_CFG_BOOL:
        if (!cJSON_IsBool(v)) {
            hd_config__describe(v, shown, sizeof shown);
            return hd_config__fail(ctx, "%s: expected true or false, got %s", name, shown);
        }
        return check_bool(ctx, row, base, cJSON_IsTrue(v), name);
    case HD_CFG_U16:
    case HD_CFG_U32:
    case HD_CFG_WORKERS:
        return set_uint_json(ctx, row, base, v, name);
    case HD_CFG_STR:
    case HD_CFG_ENUM:
        if (!cJSON_IsString(v)) {
            if (row->secret)
                hd_config__describe_kind(v, shown, sizeof shown);
            else
                hd_config__describe(v, shown, sizeof shown);
            return hd_config__fail(ctx, "%s: expected a string, got %s", name, shown);
        }
        return check_string(ctx, row, base, v->valuestring, name);
    }
    hd_assert(!"unknown row type");
    return HD_EINVAL;
}

int hd_config__set_text(hd_cfg_ctx *ctx, const hd_cfg_row *row, void *base, const char *text, const char *name)
{
    switch (row->type) {
    case HD_CFG_BOOL:
        if (strcasecmp(text, "true") == 0 || strcmp(text, "1") == 0)
            return check_bool(ctx, row, base, true, name);
        if (strcasecmp(text, "false") == 0 || strcmp(text, "0") == 0)
            return check_bool(ctx, row, base, false, name);
        return hd_config__fail(ctx, "%s: \"%.60s\" is not a boolean (true, false, 1 or 0)", name, text);
    case HD_CFG_U16:
    case HD_CFG_U32:
    case HD_CFG_WORKERS:
        return set_uint_text(ctx, row, base, text, name);
    case HD_CFG_STR:
    case HD_CFG_ENUM:
        return check_string(ctx, row, base, text, name);
    }
    hd_assert(!"unknown row type");
    return HD_EINVAL;
}

void hd_config__set_default(const hd_cfg_row *row, void *base)
{
    if (row->offset == HD_CFG_NOFIELD || row->alias_of)
        return;
    char *p = (char *)base + row->offset;
    switch (row->type) {
    case HD_CFG_BOOL:
        *(bool *)p = row->def != 0;
        break;
    case HD_CFG_U16:
    case HD_CFG_U32:
    case HD_CFG_WORKERS:
        store_uint(row, base, row->def);
        break;
    case HD_CFG_STR:
    case HD_CFG_ENUM:
        hd_config__replace((char **)p, row->def_str);
        break;
    }
}

void hd_config__free_strings(const hd_cfg_row *table, void *base)
{
    for (const hd_cfg_row *row = table; row->path; row++) {
        if (row->offset == HD_CFG_NOFIELD || row->alias_of)
            continue;
        if (row->type != HD_CFG_STR && row->type != HD_CFG_ENUM)
            continue;
        char **slot = (char **)((char *)base + row->offset);
        hd_free(*slot);
        *slot = NULL;
    }
}
