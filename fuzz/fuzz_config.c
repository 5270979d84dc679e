/* fuzz_config.c - libFuzzer target: the config loader (hd_config_load_json)
 * with a fuzzed JSON text and a small fuzzed HERALD_* environment.
 *
 * Input: optional environment lines "NAME=VALUE", then a line "---", then
 * the JSON text. Without a "---" line the whole input is the JSON and no
 * environment is passed (env NULL).
 *
 * Checked: a failed load leaves the config zeroed and says why in a
 * NUL-terminated message that fits err; a successful one has at least one
 * app, every app found by its own id and key, and hd_config_free() zeroes
 * it again. The size of err varies with the input (1, 24 or 512 bytes) so
 * truncation is exercised too.
 */
#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "fuzz_util.h"

#define MAX_ENV 8

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    hd_fuzz_quiet();
    return 0;
}

static bool is_zero(const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return false;
    return true;
}

static void check_loaded(const hd_config *cfg)
{
    if (!cfg->n_apps || !cfg->apps || !cfg->host || !cfg->log_level)
        hd_fuzz_fail("a loaded config lacks apps, host or log_level", NULL, 0);
    int level = hd_config_log_level(cfg);
    if (level < HD_LOG_ERR || level > HD_LOG_DEBUG)
        hd_fuzz_fail("log level out of range", NULL, 0);
    for (size_t i = 0; i < cfg->n_apps; i++) {
        const hd_app_config *app = &cfg->apps[i];
        if (!app->id || !app->key || !app->secret)
            hd_fuzz_fail("an app without id, key or secret", NULL, 0);
        if (hd_config_app_by_id(cfg, app->id) != app || hd_config_app_by_key(cfg, app->key) != app)
            hd_fuzz_fail("an app is not found by its own id or key (duplicates?)", app->id, strlen(app->id));
        for (size_t k = 0; k < app->n_webhooks; k++)
            if (!app->webhooks[k].url)
                hd_fuzz_fail("a webhook without url", NULL, 0);
    }
}

static void check_error(const char *err, size_t errlen)
{
    if (!memchr(err, '\0', errlen))
        hd_fuzz_fail("error message not NUL-terminated within err", err, errlen);
    if (errlen > 1 && !err[0])
        hd_fuzz_fail("a failed load without a message", NULL, 0);
}

/* Split off "NAME=VALUE" lines before a "---" line into env (NULL-terminated). */
static const char *split_env(const char *p, const char *end, char **env, size_t *n_env, bool *has_env)
{
    static const char sep[] = "---\n";
    const char *at = NULL;
    if ((size_t)(end - p) >= 4 && !memcmp(p, sep, 4))
        at = p - 1;
    else if ((at = memmem(p, (size_t)(end - p), "\n---\n", 5)) == NULL)
        return p;
    *has_env = true;
    const char *rec;
    size_t len;
    const char *q = p, *env_end = at > p ? at : p;
    while (*n_env < MAX_ENV && hd_fuzz_next_record(&q, env_end, "\n", &rec, &len))
        env[(*n_env)++] = hd_strndup(rec, len);
    return at + 5;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data, *end = p + size;
    char *env[MAX_ENV + 1] = {0};
    size_t n_env = 0;
    bool has_env = false;
    const char *json = split_env(p, end, env, &n_env, &has_env);
    size_t json_len = (size_t)(end - json);
    char *text = hd_malloc(json_len ? json_len : 1); /* exactly the text: no NUL to lean on */
    memcpy(text, json, json_len);
    static const size_t errlens[] = {512, 1, 24};
    size_t errlen = errlens[size % 3];
    char err[512];
    memset(err, 'x', sizeof err);
    hd_config cfg;
    memset(&cfg, 0x5a, sizeof cfg); /* the loader must not rely on a zeroed cfg */
    int rc = hd_config_load_json(&cfg, text, json_len, has_env ? env : NULL, err, errlen);
    if (rc == 0) {
        check_loaded(&cfg);
        hd_config_free(&cfg);
        if (!is_zero(&cfg, sizeof cfg))
            hd_fuzz_fail("hd_config_free left the config non-zero", NULL, 0);
    } else {
        check_error(err, errlen);
        if (!is_zero(&cfg, sizeof cfg))
            hd_fuzz_fail("a failed load left the config non-zero", err, strnlen(err, errlen));
    }
    hd_free(text);
    for (size_t i = 0; i < n_env; i++)
        hd_free(env[i]);
    return 0;
}
