/* signature.c - HMAC-SHA256 and MD5 as lowercase hex, constant-time
 * comparison, and verification of socket auth values "<app_key>:<hex>"
 * (PUSHER_PROTOCOL.md §0, §6).
 *
 * DESIGN
 * ------
 * Thin wrappers over OpenSSL's one-shot HMAC() and EVP_Digest(), which keep
 * no state between calls. A failure inside OpenSSL here can only mean a
 * broken installation (missing default provider) or OOM, so it aborts via
 * hd_assert rather than returning an error nobody could handle.
 *
 * THREADING
 * ---------
 * No state of our own; OpenSSL >= 1.1 one-shot calls are thread-safe, so
 * every function is safe from any thread.
 */
#include "protocol.h"

#include <limits.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "common/common.h"

#define SHA256_HEX_LEN 64

static void to_hex(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

void hd_hmac_sha256_hex(const char *key, size_t key_len, const void *msg, size_t msg_len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    hd_assert(key_len <= INT_MAX);
    /* OpenSSL 3 rejects a NULL key even when its length is 0. */
    const void *k = key_len ? (const void *)key : "";
    const unsigned char *m = msg_len ? msg : (const void *)"";
    unsigned char *r = HMAC(EVP_sha256(), k, (int)key_len, m, msg_len, md, &md_len);
    hd_assert(r != NULL && md_len == 32);
    to_hex(md, md_len, out);
}

void hd_md5_hex(const void *msg, size_t len, char out[33])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    const void *m = len ? msg : "";
    int ok = EVP_Digest(m, len, md, &md_len, EVP_md5(), NULL);
    hd_assert(ok == 1 && md_len == 16);
    to_hex(md, md_len, out);
}

bool hd_const_time_equal(const void *a, size_t a_len, const void *b, size_t b_len)
{
    if (a_len != b_len)
        return false;
    if (a_len == 0)
        return true;
    return CRYPTO_memcmp(a, b, a_len) == 0;
}

int hd_auth_verify(const char *auth, size_t auth_len, const char *app_key, const char *secret,
                   const char *signed_str, size_t signed_len)
{
    if (!auth || auth_len == 0 || !app_key)
        return HD_EINVAL;
    const char *colon = memchr(auth, ':', auth_len);
    if (!colon)
        return HD_EINVAL;
    size_t key_len = (size_t)(colon - auth);
    if (key_len != strlen(app_key) || memcmp(auth, app_key, key_len) != 0)
        return HD_EINVAL;
    const char *sig = colon + 1;
    size_t sig_len = auth_len - key_len - 1;
    char expected[SHA256_HEX_LEN + 1];
    hd_hmac_sha256_hex(secret, secret ? strlen(secret) : 0, signed_str, signed_len, expected);
    if (!hd_const_time_equal(sig, sig_len, expected, SHA256_HEX_LEN))
        return HD_EAUTH;
    return 0;
}
