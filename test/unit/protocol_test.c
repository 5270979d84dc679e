/* protocol_test.c - CUnit suite "protocol": the test vectors of
 * PUSHER_PROTOCOL.md §0, channel name classification (§5), id syntax (§11),
 * socket auth verification (§6), HTTP API authentication (§9.1), UTF-8
 * validation and the bytes of every frame herald sends (frame.c).
 *
 * THREADING: run by the single-threaded unit test runner.
 */
#include <CUnit/CUnit.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "common/common.h"
#include "protocol/protocol.h"

#define APP_KEY "278d425bdf160c739803"
#define APP_SECRET "7ad3773142a6692b25b8"
#define VEC_TS 1353088179
#define POST_BODY "{\"name\":\"foo\",\"channels\":[\"project-3\"],\"data\":\"{\\\"some\\\":\\\"data\\\"}\"}"
#define POST_BODY_MD5 "ec365a775a4cd0599faeb73354201b6f"
#define POST_SIG "da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c"
#define GET_SIG "16819168891cb5dfd72b5c7a5d3d602605b26c6ba1930033b5e2eeeb65010291"
#define TERMINATE_SIG "2829710742ff5f799010258297d09016e2366257e3e954039eeda349073a2bcf"
#define EMPTY_OBJ_MD5 "99914b932bd37a50b983c5e7c90ae93b"

static void check_hmac(const char *msg, const char *want)
{
    char out[65];
    hd_hmac_sha256_hex(APP_SECRET, strlen(APP_SECRET), msg, strlen(msg), out);
    CU_ASSERT_STRING_EQUAL(out, want);
}

/* ---- §0 vectors ---- */

static void test_hmac_vectors(void)
{
    check_hmac("1234.1234:private-foobar", "58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4");
    check_hmac("1234.1234::user::{\"id\":\"12345\"}",
               "4708d583dada6a56435fb8bc611c77c359a31eebde13337c16ab43aa6de336ba");
    check_hmac("1234.1234:presence-foobar:{\"user_id\":10,\"user_info\":{\"name\":\"Mr. Channels\"}}",
               "31935e7d86dba64c2a90aed31fdc61869f9b22ba9d8863bba239c03ca481bc80");
    check_hmac("POST\n/apps/3/events\nauth_key=" APP_KEY
               "&auth_timestamp=1353088179&auth_version=1.0&body_md5=" POST_BODY_MD5,
               POST_SIG);
    check_hmac("GET\n/apps/3/channels\nauth_key=" APP_KEY
               "&auth_timestamp=1353088179&auth_version=1.0&filter_by_prefix=presence-&info=user_count",
               GET_SIG);
    check_hmac("POST\n/apps/3/users/42/terminate_connections\nauth_key=" APP_KEY
               "&auth_timestamp=1353088179&auth_version=1.0&body_md5=" EMPTY_OBJ_MD5,
               TERMINATE_SIG);
    check_hmac("{\"time_ms\":1327078148132,\"events\":[{\"name\":\"channel_occupied\",\"channel\":\"my-channel\"}]}",
               "c19001ae3963ccb13bf618e5b16ba9848e7e74df0993aa0689168e341c6833cf");
}

static void test_hmac_empty_inputs(void)
{
    char out[65];
    hd_hmac_sha256_hex(NULL, 0, NULL, 0, out);
    CU_ASSERT_STRING_EQUAL(out, "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
}

static void test_md5_vectors(void)
{
    char out[33];
    hd_md5_hex(POST_BODY, strlen(POST_BODY), out);
    CU_ASSERT_STRING_EQUAL(out, POST_BODY_MD5);
    hd_md5_hex("{}", 2, out);
    CU_ASSERT_STRING_EQUAL(out, EMPTY_OBJ_MD5);
    hd_md5_hex(NULL, 0, out);
    CU_ASSERT_STRING_EQUAL(out, "d41d8cd98f00b204e9800998ecf8427e");
}

static void add(hd_params *p, const char *k, const char *v)
{
    hd_params_add(p, k, strlen(k), v, strlen(v));
}

/* The REST POST vector's parameters, deliberately out of order. */
static void post_params(hd_params *p, const char *sig)
{
    hd_params_init(p);
    add(p, "body_md5", POST_BODY_MD5);
    add(p, "auth_version", "1.0");
    add(p, "auth_key", APP_KEY);
    add(p, "auth_signature", sig);
    add(p, "auth_timestamp", "1353088179");
}

static void test_string_to_sign(void)
{
    hd_params p;
    post_params(&p, POST_SIG);
    const char *want = "POST\n/apps/3/events\nauth_key=" APP_KEY
                       "&auth_timestamp=1353088179&auth_version=1.0&body_md5=" POST_BODY_MD5;
    char out[512];
    size_t n = hd_http_string_to_sign("post", "/apps/3/events", &p, out, sizeof out);
    CU_ASSERT_EQUAL(n, strlen(want));
    CU_ASSERT_STRING_EQUAL(out, want);
    CU_ASSERT_EQUAL(hd_http_string_to_sign("POST", "/apps/3/events", &p, NULL, 0), strlen(want));
    char small[8];
    CU_ASSERT_EQUAL(hd_http_string_to_sign("POST", "/apps/3/events", &p, small, sizeof small), strlen(want));
    CU_ASSERT_STRING_EQUAL(small, "POST\n/a");
    hd_params_free(&p);
}

static void test_string_to_sign_lowercases_and_sorts(void)
{
    hd_params p;
    hd_params_init(&p);
    add(&p, "Info", "user_count");
    add(&p, "AUTH_KEY", APP_KEY);
    add(&p, "filter_by_prefix", "presence-");
    add(&p, "auth_version", "1.0");
    add(&p, "Auth_Signature", "ignored");
    add(&p, "auth_timestamp", "1353088179");
    add(&p, "name", "Something else");
    char out[512];
    hd_http_string_to_sign("GET", "/apps/3/channels", &p, out, sizeof out);
    CU_ASSERT_STRING_EQUAL(out, "GET\n/apps/3/channels\nauth_key=" APP_KEY
                                "&auth_timestamp=1353088179&auth_version=1.0&filter_by_prefix=presence-"
                                "&info=user_count&name=Something else");
    hd_params_free(&p);
}

/* ---- channel names (§5) ---- */

typedef struct classify_case {
    const char *name;
    int rc;
    hd_channel_kind kind;
    bool cache;
} classify_case;

static const classify_case classify_cases[] = {
    {"my-channel", 0, HD_CHANNEL_PUBLIC, false},
    {"private-foo", 0, HD_CHANNEL_PRIVATE, false},
    {"private-encrypted-foo", 0, HD_CHANNEL_PRIVATE_ENCRYPTED, false},
    {"presence-foo", 0, HD_CHANNEL_PRESENCE, false},
    {"cache-foo", 0, HD_CHANNEL_PUBLIC, true},
    {"private-cache-foo", 0, HD_CHANNEL_PRIVATE, true},
    {"private-encrypted-cache-x", 0, HD_CHANNEL_PRIVATE_ENCRYPTED, true},
    {"presence-cache-x", 0, HD_CHANNEL_PRESENCE, true},
    {"xprivate-foo", 0, HD_CHANNEL_PUBLIC, false},
    {"xcache-foo", 0, HD_CHANNEL_PUBLIC, false},
    {"public-private-foo", 0, HD_CHANNEL_PUBLIC, false},
    {"private-presence-foo", 0, HD_CHANNEL_PRIVATE, false},
    {"presence-private-foo", 0, HD_CHANNEL_PRESENCE, false},
    {"privateX", 0, HD_CHANNEL_PUBLIC, false},
    {"private", 0, HD_CHANNEL_PUBLIC, false},
    {"private-encrypted", 0, HD_CHANNEL_PRIVATE, false},
    {"cache", 0, HD_CHANNEL_PUBLIC, false},
    {"private-cache", 0, HD_CHANNEL_PRIVATE, false},
    {"-_=@,.;aZ09", 0, HD_CHANNEL_PUBLIC, false},
    {"#server-to-user-42", 0, HD_CHANNEL_SERVER_TO_USER, false},
    {"#server-to-user-a=b@c,d.e;f_g-h", 0, HD_CHANNEL_SERVER_TO_USER, false},
    {"#foo", HD_EINVAL, 0, false},
    {"#", HD_EINVAL, 0, false},
    {"#server-to-user-", HD_EINVAL, 0, false},
    {"#server-to-user-4#2", HD_EINVAL, 0, false},
    {"#server-to-user-4 2", HD_EINVAL, 0, false},
    {"##server-to-user-42", HD_EINVAL, 0, false},
    {"x#server-to-user-42", HD_EINVAL, 0, false},
    {"private-#server-to-user-42", HD_EINVAL, 0, false},
    {"", HD_EINVAL, 0, false},
    {"foo bar", HD_EINVAL, 0, false},
    {"foo/bar", HD_EINVAL, 0, false},
    {"foo:bar", HD_EINVAL, 0, false},
    {"foo*", HD_EINVAL, 0, false},
    {"caf\xc3\xa9", HD_EINVAL, 0, false},
    {"foo\n", HD_EINVAL, 0, false},
};

static void test_classify_table(void)
{
    for (size_t i = 0; i < sizeof classify_cases / sizeof classify_cases[0]; i++) {
        const classify_case *c = &classify_cases[i];
        hd_channel_type t = {HD_CHANNEL_PUBLIC, false};
        int rc = hd_channel_classify(c->name, strlen(c->name), 200, &t);
        CU_ASSERT_EQUAL(rc, c->rc);
        if (rc != c->rc)
            fprintf(stderr, "\n  classify(\"%s\") = %d, want %d\n", c->name, rc, c->rc);
        if (rc == 0 && c->rc == 0) {
            CU_ASSERT_EQUAL(t.kind, c->kind);
            CU_ASSERT_EQUAL(t.cache, c->cache);
            if (t.kind != c->kind || t.cache != c->cache)
                fprintf(stderr, "\n  classify(\"%s\") kind %d cache %d\n", c->name, t.kind, t.cache);
        }
    }
}

static void test_classify_embedded_nul_and_len(void)
{
    hd_channel_type t;
    CU_ASSERT_EQUAL(hd_channel_classify("foo\0bar", 7, 200, &t), HD_EINVAL);
    /* Only len bytes are looked at. */
    CU_ASSERT_EQUAL(hd_channel_classify("private-x!!!", 9, 200, &t), 0);
    CU_ASSERT_EQUAL(t.kind, HD_CHANNEL_PRIVATE);
    CU_ASSERT_EQUAL(hd_channel_classify(NULL, 0, 200, &t), HD_EINVAL);
}

static void test_classify_length_limits(void)
{
    char name[202];
    memset(name, 'a', sizeof name);
    hd_channel_type t;
    CU_ASSERT_EQUAL(hd_channel_classify(name, 200, 200, &t), 0);
    CU_ASSERT_EQUAL(t.kind, HD_CHANNEL_PUBLIC);
    CU_ASSERT_EQUAL(hd_channel_classify(name, 201, 200, &t), HD_ELIMIT);
    CU_ASSERT_EQUAL(hd_channel_classify(name, 1, 200, &t), 0);
    CU_ASSERT_EQUAL(hd_channel_classify(name, 165, 164, &t), HD_ELIMIT);
    memcpy(name, "presence-", 9);
    CU_ASSERT_EQUAL(hd_channel_classify(name, 200, 200, &t), 0);
    CU_ASSERT_EQUAL(t.kind, HD_CHANNEL_PRESENCE);
}

static void test_classify_user_channel_id_limit(void)
{
    char name[16 + 130];
    memcpy(name, "#server-to-user-", 16);
    memset(name + 16, '7', 130);
    hd_channel_type t;
    CU_ASSERT_EQUAL(hd_channel_classify(name, 16 + 128, 200, &t), 0);
    CU_ASSERT_EQUAL(t.kind, HD_CHANNEL_SERVER_TO_USER);
    CU_ASSERT_EQUAL(hd_channel_classify(name, 16 + 129, 200, &t), HD_EINVAL);
}

static void test_needs_auth(void)
{
    CU_ASSERT_FALSE(hd_channel_needs_auth(HD_CHANNEL_PUBLIC));
    CU_ASSERT_TRUE(hd_channel_needs_auth(HD_CHANNEL_PRIVATE));
    CU_ASSERT_TRUE(hd_channel_needs_auth(HD_CHANNEL_PRIVATE_ENCRYPTED));
    CU_ASSERT_TRUE(hd_channel_needs_auth(HD_CHANNEL_PRESENCE));
    CU_ASSERT_FALSE(hd_channel_needs_auth(HD_CHANNEL_SERVER_TO_USER));
}

static void test_channel_user_id(void)
{
    CU_ASSERT_STRING_EQUAL(hd_channel_user_id("#server-to-user-42"), "42");
    const char *name = "#server-to-user-abc";
    CU_ASSERT_PTR_EQUAL(hd_channel_user_id(name), name + 16);
    CU_ASSERT_STRING_EQUAL(hd_channel_user_id("#server-to-user-"), "");
    CU_ASSERT_PTR_NULL(hd_channel_user_id("private-foo"));
    CU_ASSERT_PTR_NULL(hd_channel_user_id("#server-to-use"));
    CU_ASSERT_PTR_NULL(hd_channel_user_id(NULL));
}

/* ---- ids (§11) ---- */

static bool sid(const char *s)
{
    return hd_socket_id_valid(s, strlen(s));
}

static void test_socket_id(void)
{
    CU_ASSERT_TRUE(sid("1.2"));
    CU_ASSERT_TRUE(sid("1234.1234"));
    CU_ASSERT_TRUE(sid("12345678901234567890.12345678901234567890"));
    CU_ASSERT_FALSE(sid("123456789012345678901.1"));
    CU_ASSERT_FALSE(sid("1.123456789012345678901"));
    CU_ASSERT_FALSE(sid("1."));
    CU_ASSERT_FALSE(sid(".1"));
    CU_ASSERT_FALSE(sid("a.1"));
    CU_ASSERT_FALSE(sid("1.a"));
    CU_ASSERT_FALSE(sid("1.2.3"));
    CU_ASSERT_FALSE(sid(""));
    CU_ASSERT_FALSE(sid("."));
    CU_ASSERT_FALSE(sid("12"));
    CU_ASSERT_FALSE(sid("-1.2"));
    CU_ASSERT_FALSE(sid(" 1.2"));
    CU_ASSERT_FALSE(sid("1.2 "));
    CU_ASSERT_FALSE(hd_socket_id_valid("1.2\0", 4));
    CU_ASSERT_TRUE(hd_socket_id_valid("1.23", 3));
    CU_ASSERT_FALSE(hd_socket_id_valid(NULL, 0));
}

static void test_user_id(void)
{
    char id[130];
    memset(id, 'u', sizeof id);
    CU_ASSERT_TRUE(hd_user_id_valid("42", 2));
    CU_ASSERT_TRUE(hd_user_id_valid("a-b_c=d@e,f.g;h", 15));
    CU_ASSERT_TRUE(hd_user_id_valid(id, 128));
    CU_ASSERT_FALSE(hd_user_id_valid(id, 129));
    CU_ASSERT_FALSE(hd_user_id_valid("", 0));
    CU_ASSERT_FALSE(hd_user_id_valid("a b", 3));
    CU_ASSERT_FALSE(hd_user_id_valid("#42", 3));
    CU_ASSERT_FALSE(hd_user_id_valid("a:b", 3));
    CU_ASSERT_FALSE(hd_user_id_valid("\xc3\xa9", 2));
    CU_ASSERT_FALSE(hd_user_id_valid("a\0b", 3));
    CU_ASSERT_FALSE(hd_user_id_valid(NULL, 0));
}

/* ---- socket auth (§6) ---- */

static int verify(const char *auth, const char *signed_str)
{
    return hd_auth_verify(auth, strlen(auth), APP_KEY, APP_SECRET, signed_str, strlen(signed_str));
}

static void test_const_time_equal(void)
{
    CU_ASSERT_TRUE(hd_const_time_equal("abc", 3, "abc", 3));
    CU_ASSERT_FALSE(hd_const_time_equal("abc", 3, "abd", 3));
    CU_ASSERT_FALSE(hd_const_time_equal("abc", 3, "abcd", 4));
    CU_ASSERT_TRUE(hd_const_time_equal(NULL, 0, NULL, 0));
    CU_ASSERT_FALSE(hd_const_time_equal("a", 1, NULL, 0));
}

static void test_auth_verify(void)
{
    const char *priv = "1234.1234:private-foobar";
    const char *good = APP_KEY ":58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4";
    CU_ASSERT_EQUAL(verify(good, priv), 0);
    CU_ASSERT_EQUAL(verify(APP_KEY ":4708d583dada6a56435fb8bc611c77c359a31eebde13337c16ab43aa6de336ba",
                           "1234.1234::user::{\"id\":\"12345\"}"),
                    0);
    CU_ASSERT_EQUAL(verify(APP_KEY ":31935e7d86dba64c2a90aed31fdc61869f9b22ba9d8863bba239c03ca481bc80",
                           "1234.1234:presence-foobar:{\"user_id\":10,\"user_info\":{\"name\":\"Mr. Channels\"}}"),
                    0);
    /* The docs' stale presence value signs "Mr. Pusher", not this JSON. */
    CU_ASSERT_EQUAL(verify(APP_KEY ":afaed3695da2ffd16931f457e338e6c9f2921fa133ce7dac49f529792be6304c",
                           "1234.1234:presence-foobar:{\"user_id\":10,\"user_info\":{\"name\":\"Mr. Channels\"}}"),
                    HD_EAUTH);
    CU_ASSERT_EQUAL(verify(APP_KEY ":afaed3695da2ffd16931f457e338e6c9f2921fa133ce7dac49f529792be6304c",
                           "1234.1234:presence-foobar:{\"user_id\":10,\"user_info\":{\"name\":\"Mr. Pusher\"}}"),
                    0);
}

static void test_auth_verify_failures(void)
{
    const char *priv = "1234.1234:private-foobar";
    const char *hex = "58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4";
    char buf[160];
    snprintf(buf, sizeof buf, "278d425bdf160c739804:%s", hex);
    CU_ASSERT_EQUAL(verify(buf, priv), HD_EINVAL);
    snprintf(buf, sizeof buf, "278d425bdf160c73980:%s", hex);
    CU_ASSERT_EQUAL(verify(buf, priv), HD_EINVAL);
    snprintf(buf, sizeof buf, ":%s", hex);
    CU_ASSERT_EQUAL(verify(buf, priv), HD_EINVAL);
    snprintf(buf, sizeof buf, "%s%s", APP_KEY, hex);
    CU_ASSERT_EQUAL(verify(buf, priv), HD_EINVAL);
    CU_ASSERT_EQUAL(verify("", priv), HD_EINVAL);
    CU_ASSERT_EQUAL(hd_auth_verify(NULL, 0, APP_KEY, APP_SECRET, priv, strlen(priv)), HD_EINVAL);
    CU_ASSERT_EQUAL(verify(APP_KEY ":", priv), HD_EAUTH);
    CU_ASSERT_EQUAL(verify(APP_KEY ":58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a5", priv),
                    HD_EAUTH);
    CU_ASSERT_EQUAL(verify(APP_KEY ":58DF8B0C36D6982B82C3ECF6B4662E34FE8C25BBA48F5369F135BF843651C3A4", priv),
                    HD_EAUTH);
    CU_ASSERT_EQUAL(verify(APP_KEY ":58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a", priv),
                    HD_EAUTH);
    CU_ASSERT_EQUAL(verify(APP_KEY ":58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4 ", priv),
                    HD_EAUTH);
    snprintf(buf, sizeof buf, "%s:%s", APP_KEY, hex);
    CU_ASSERT_EQUAL(verify(buf, "1234.1234:private-foobaz"), HD_EAUTH);
}

/* ---- query parameters ---- */

static void test_params_parse_and_decode(void)
{
    hd_params p;
    hd_params_init(&p);
    const char *q = "name=Something%20else&plus=a+b&empty=&novalue&&%41%62=%2b%2F&eq=a=b&utf=%C3%a9";
    CU_ASSERT_EQUAL(hd_params_parse_query(&p, q, strlen(q)), 0);
    CU_ASSERT_EQUAL(p.count, 7);
    CU_ASSERT_STRING_EQUAL(hd_params_get(&p, "name"), "Something else");
    CU_ASSERT_STRING_EQUAL(hd_params_get(&p, "plus"), "a b");
    CU_ASSERT_STRING_EQUAL(hd_params_get(&p, "empty"), "");
    CU_ASSERT_STRING_EQUAL(hd_params_get(&p, "novalue"), "");
    CU_ASSERT_STRING_EQUAL(hd_params_get(&p, "Ab"), "+/");
    CU_ASSERT_STRING_EQUAL(hd_params_get(&p, "eq"), "a=b");
    CU_ASSERT_STRING_EQUAL(hd_params_get(&p, "utf"), "\xc3\xa9");
    CU_ASSERT_STRING_EQUAL(p.items[4].key, "Ab");
    CU_ASSERT_EQUAL(hd_params_parse_query(&p, "", 0), 0);
    CU_ASSERT_EQUAL(hd_params_parse_query(&p, "&&&", 3), 0);
    CU_ASSERT_EQUAL(p.count, 7);
    /* Only len bytes are parsed. */
    CU_ASSERT_EQUAL(hd_params_parse_query(&p, "x=1&y=2", 3), 0);
    CU_ASSERT_STRING_EQUAL(hd_params_get(&p, "x"), "1");
    CU_ASSERT_PTR_NULL(hd_params_get(&p, "y"));
    hd_params_free(&p);
    CU_ASSERT_EQUAL(p.count, 0);
    CU_ASSERT_PTR_NULL(p.items);
    hd_params_free(&p);
}

static void test_params_malformed_escape(void)
{
    static const char *const bad[] = {"a=%zz", "a=%2", "a=%", "%g1=x", "a=1&b=%2x", "a=%00", "a=%2%41"};
    hd_params p;
    hd_params_init(&p);
    add(&p, "keep", "me");
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CU_ASSERT_EQUAL(hd_params_parse_query(&p, bad[i], strlen(bad[i])), HD_EINVAL);
        CU_ASSERT_EQUAL(p.count, 1);
    }
    CU_ASSERT_PTR_NULL(hd_params_get(&p, "a"));
    CU_ASSERT_STRING_EQUAL(hd_params_get(&p, "keep"), "me");
    hd_params_free(&p);
}

static void test_params_get_case_insensitive(void)
{
    hd_params p;
    hd_params_init(&p);
    add(&p, "Auth_Key", "first");
    add(&p, "auth_key", "second");
    hd_params_add(&p, "body_md5xyz", 8, "abcdef", 3);
    CU_ASSERT_STRING_EQUAL(hd_params_get(&p, "auth_key"), "first");
    CU_ASSERT_STRING_EQUAL(hd_params_get(&p, "AUTH_KEY"), "first");
    CU_ASSERT_STRING_EQUAL(hd_params_get(&p, "BODY_MD5"), "abc");
    CU_ASSERT_STRING_EQUAL(p.items[0].key, "Auth_Key");
    CU_ASSERT_PTR_NULL(hd_params_get(&p, "auth_ke"));
    CU_ASSERT_PTR_NULL(hd_params_get(&p, "auth_keys"));
    CU_ASSERT_PTR_NULL(hd_params_get(NULL, "auth_key"));
    for (int i = 0; i < 100; i++)
        add(&p, "k", "v");
    CU_ASSERT_EQUAL(p.count, 103);
    CU_ASSERT(p.cap >= p.count);
    hd_params_free(&p);
}

/* ---- HTTP API authentication (§9.1) ---- */

static hd_http_auth_request post_request(const hd_params *p)
{
    hd_http_auth_request r = {
        .method = "POST",
        .path = "/apps/3/events",
        .params = p,
        .body = POST_BODY,
        .body_len = strlen(POST_BODY),
        .app_key = APP_KEY,
        .app_secret = APP_SECRET,
        .now_s = VEC_TS,
        .max_skew_s = 600,
    };
    return r;
}

static void test_http_auth_post_success(void)
{
    hd_params p;
    post_params(&p, POST_SIG);
    hd_http_auth_request r = post_request(&p);
    char err[256] = "junk";
    CU_ASSERT_EQUAL(hd_http_auth_verify(&r, err, sizeof err), 0);
    CU_ASSERT_STRING_EQUAL(err, "");
    r.now_s = VEC_TS + 599;
    CU_ASSERT_EQUAL(hd_http_auth_verify(&r, err, sizeof err), 0);
    r.now_s = VEC_TS - 599;
    CU_ASSERT_EQUAL(hd_http_auth_verify(&r, NULL, 0), 0);
    hd_params_free(&p);
}

/* Head first, body later: the head check passes without the body (and
 * with a wrong one), the body check alone catches a body that does not
 * match the signed MD5, and a bad signature fails at the head. */
static void test_http_auth_two_steps(void)
{
    hd_params p;
    post_params(&p, POST_SIG);
    hd_http_auth_request r = post_request(&p);
    char err[256];
    r.mode = HD_AUTH_HEAD;
    r.body = NULL; /* not read yet: body_len is the declared length */
    CU_ASSERT_EQUAL(hd_http_auth_verify(&r, err, sizeof err), 0);
    r.mode = HD_AUTH_BODY;
    r.body = POST_BODY;
    CU_ASSERT_EQUAL(hd_http_auth_verify(&r, err, sizeof err), 0);
    r.body = "{\"name\":\"other\"}";
    r.body_len = strlen(r.body);
    CU_ASSERT_EQUAL(hd_http_auth_verify(&r, err, sizeof err), 401);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "body_md5"));
    hd_params_free(&p);
    post_params(&p, "0000000000000000000000000000000000000000000000000000000000000000");
    r = post_request(&p);
    r.mode = HD_AUTH_HEAD;
    r.body = NULL;
    CU_ASSERT_EQUAL(hd_http_auth_verify(&r, err, sizeof err), 401);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "Invalid signature"));
    hd_params_free(&p);
}

static void test_http_auth_parsed_query_success(void)
{
    hd_params p;
    hd_params_init(&p);
    const char *q = "AUTH_KEY=" APP_KEY "&auth_timestamp=1353088179&Auth_Version=1%2E0"
                    "&body_md5=" POST_BODY_MD5 "&auth_signature=" POST_SIG;
    CU_ASSERT_EQUAL(hd_params_parse_query(&p, q, strlen(q)), 0);
    hd_http_auth_request r = post_request(&p);
    char err[256];
    CU_ASSERT_EQUAL(hd_http_auth_verify(&r, err, sizeof err), 0);
    hd_params_free(&p);
}

static void test_http_auth_get_and_terminate_success(void)
{
    hd_params p;
    hd_params_init(&p);
    const char *q = "auth_key=" APP_KEY "&auth_timestamp=1353088179&auth_version=1.0&auth_signature=" GET_SIG
                    "&info=user_count&filter_by_prefix=presence-";
    CU_ASSERT_EQUAL(hd_params_parse_query(&p, q, strlen(q)), 0);
    hd_http_auth_request r = post_request(&p);
    r.method = "GET";
    r.path = "/apps/3/channels";
    r.body = NULL;
    r.body_len = 0;
    char err[256];
    CU_ASSERT_EQUAL(hd_http_auth_verify(&r, err, sizeof err), 0);
    hd_params_free(&p);

    hd_params_init(&p);
    q = "auth_key=" APP_KEY "&auth_timestamp=1353088179&auth_version=1.0&body_md5=" EMPTY_OBJ_MD5
        "&auth_signature=" TERMINATE_SIG;
    CU_ASSERT_EQUAL(hd_params_parse_query(&p, q, strlen(q)), 0);
    r = post_request(&p);
    r.path = "/apps/3/users/42/terminate_connections";
    r.body = "{}";
    r.body_len = 2;
    CU_ASSERT_EQUAL(hd_http_auth_verify(&r, err, sizeof err), 0);
    hd_params_free(&p);
}

static void test_http_auth_missing_params(void)
{
    static const char *const names[] = {"auth_key", "auth_timestamp", "auth_version", "auth_signature"};
    for (size_t i = 0; i < 4; i++) {
        hd_params p;
        hd_params_init(&p);
        hd_params full;
        post_params(&full, POST_SIG);
        for (size_t j = 0; j < full.count; j++) {
            if (strcmp(full.items[j].key, names[i]) != 0)
                add(&p, full.items[j].key, full.items[j].value);
        }
        hd_http_auth_request r = post_request(&p);
        char err[256], want[64];
        CU_ASSERT_EQUAL(hd_http_auth_verify(&r, err, sizeof err), 401);
        snprintf(want, sizeof want, "Missing parameter: %s", names[i]);
        CU_ASSERT_STRING_EQUAL(err, want);
        hd_params_free(&p);
        hd_params_free(&full);
    }
    hd_http_auth_request r = post_request(NULL);
    char err[64];
    CU_ASSERT_EQUAL(hd_http_auth_verify(&r, err, sizeof err), 401);
}

static void test_http_auth_duplicate_and_malformed(void)
{
    hd_params p;
    post_params(&p, POST_SIG);
    add(&p, "AUTH_KEY", APP_KEY);
    hd_http_auth_request r = post_request(&p);
    char err[256];
    CU_ASSERT_EQUAL(hd_http_auth_verify(&r, err, sizeof err), 400);
    CU_ASSERT_STRING_EQUAL(err, "Duplicate parameter: auth_key");
    hd_params_free(&p);

    static const char *const bad_ts[] = {"", "abc", "-1353088179", "1353088179 ", "1e9", "1234567890123456789"};
    for (size_t i = 0; i < sizeof bad_ts / sizeof bad_ts[0]; i++) {
        hd_params_init(&p);
        add(&p, "auth_key", APP_KEY);
        add(&p, "auth_timestamp", bad_ts[i]);
        add(&p, "auth_version", "1.0");
        add(&p, "auth_signature", POST_SIG);
        r = post_request(&p);
        CU_ASSERT_EQUAL(hd_http_auth_verify(&r, err, sizeof err), 400);
        hd_params_free(&p);
    }
}

static void test_http_auth_bad_version(void)
{
    hd_params p;
    hd_params_init(&p);
    add(&p, "auth_key", APP_KEY);
    add(&p, "auth_timestamp", "1353088179");
    add(&p, "auth_version", "2.0");
    add(&p, "body_md5", POST_BODY_MD5);
    add(&p, "auth_signature", POST_SIG);
    hd_http_auth_request r = post_request(&p);
    char err[256];
    CU_ASSERT_EQUAL(hd_http_auth_verify(&r, err, sizeof err), 401);
    CU_ASSERT_STRING_EQUAL(err, "Unsupported auth_version: expected \"1.0\", got \"2.0\"");
    hd_params_free(&p);
}

static void test_http_auth_expired(void)
{
    hd_params p;
    post_params(&p, POST_SIG);
    hd_http_auth_request r = post_request(&p);
    char err[256];
    r.now_s = VEC_TS + 600;
    CU_ASSERT_EQUAL(hd_http_auth_verify(&r, err, sizeof err), 401);
    CU_ASSERT_STRING_EQUAL(err, "Timestamp expired: Given timestamp (1353088179) not within 600s of server time "
                                "(1353088779)");
    r.now_s = VEC_TS - 600;
    CU_ASSERT_EQUAL(hd_http_auth_verify(&r, err, sizeof err), 401);
    CU_ASSERT_STRING_EQUAL(err, "Timestamp expired: Given timestamp (1353088179) not within 600s of server time "
                                "(1353087579)");
    r.now_s = VEC_TS + 100000;
    r.max_skew_s = 30;
    CU_ASSERT_EQUAL(hd_http_auth_verify(&r, err, sizeof err), 401);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "not within 30s"));
    hd_params_free(&p);
}

static void test_http_auth_unknown_key(void)
{
    hd_params p;
    post_params(&p, POST_SIG);
    hd_http_auth_request r = post_request(&p);
    r.app_key = "someotherkey";
    char err[256];
    CU_ASSERT_EQUAL(hd_http_auth_verify(&r, err, sizeof err), 401);
    CU_ASSERT_STRING_EQUAL(err, "Unknown auth_key");
    hd_params_free(&p);
}

static void test_http_auth_bad_signature(void)
{
    hd_params p;
    post_params(&p, "deadbeef");
    hd_http_auth_request r = post_request(&p);
    char err[512];
    CU_ASSERT_EQUAL(hd_http_auth_verify(&r, err, sizeof err), 401);
    CU_ASSERT_STRING_EQUAL(err, "Invalid signature: you should have sent HmacSHA256Hex(\"POST\\n/apps/3/events\\n"
                                "auth_key=" APP_KEY "&auth_timestamp=1353088179&auth_version=1.0&body_md5=" POST_BODY_MD5
                                "\", your_secret_key), but you sent \"deadbeef\"");
    hd_params_free(&p);

    /* Right signature, wrong secret / path / method / an extra parameter. */
    post_params(&p, POST_SIG);
    r = post_request(&p);
    r.app_secret = "7ad3773142a6692b25b9";
    CU_ASSERT_EQUAL(hd_http_auth_verify(&r, err, sizeof err), 401);
    r = post_request(&p);
    r.path = "/apps/4/events";
    CU_ASSERT_EQUAL(hd_http_auth_verify(&r, err, sizeof err), 401);
    r = post_request(&p);
    r.method = "PUT";
    CU_ASSERT_EQUAL(hd_http_auth_verify(&r, err, sizeof err), 401);
    add(&p, "extra", "1");
    r = post_request(&p);
    CU_ASSERT_EQUAL(hd_http_auth_verify(&r, err, sizeof err), 401);
    hd_params_free(&p);
}

static void test_http_auth_body_md5(void)
{
    hd_params p;
    post_params(&p, POST_SIG);
    hd_http_auth_request r = post_request(&p);
    r.body = "{\"name\":\"bar\"}";
    r.body_len = strlen(r.body);
    char err[256];
    CU_ASSERT_EQUAL(hd_http_auth_verify(&r, err, sizeof err), 401);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "body_md5"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, POST_BODY_MD5));
    /* body_md5 present with an empty body must still match. */
    r.body = NULL;
    r.body_len = 0;
    CU_ASSERT_EQUAL(hd_http_auth_verify(&r, err, sizeof err), 401);
    hd_params_free(&p);

    /* A body without body_md5. */
    hd_params_init(&p);
    add(&p, "auth_key", APP_KEY);
    add(&p, "auth_timestamp", "1353088179");
    add(&p, "auth_version", "1.0");
    add(&p, "auth_signature", POST_SIG);
    r = post_request(&p);
    CU_ASSERT_EQUAL(hd_http_auth_verify(&r, err, sizeof err), 401);
    CU_ASSERT_STRING_EQUAL(err, "Missing body_md5: a request with a body must sign the MD5 of its body");
    hd_params_free(&p);
}

static void test_http_auth_decoded_path(void)
{
    /* A client signed the decoded path; a proxy forwarded it encoded. */
    hd_params p;
    hd_params_init(&p);
    add(&p, "auth_key", APP_KEY);
    add(&p, "auth_timestamp", "1353088179");
    add(&p, "auth_version", "1.0");
    add(&p, "info", "user_count");
    char sts[512], sig[65];
    size_t n = hd_http_string_to_sign("GET", "/apps/3/channels/presence-a@b", &p, sts, sizeof sts);
    hd_hmac_sha256_hex(APP_SECRET, strlen(APP_SECRET), sts, n, sig);
    add(&p, "auth_signature", sig);
    hd_http_auth_request r = post_request(&p);
    r.method = "GET";
    r.body = NULL;
    r.body_len = 0;
    char err[512];
    r.path = "/apps/3/channels/presence-a@b";
    CU_ASSERT_EQUAL(hd_http_auth_verify(&r, err, sizeof err), 0);
    r.path = "/apps/3/channels/presence-a%40b";
    CU_ASSERT_EQUAL(hd_http_auth_verify(&r, err, sizeof err), 0);
    r.path = "/apps/3/channels/presence-a%41b";
    CU_ASSERT_EQUAL(hd_http_auth_verify(&r, err, sizeof err), 401);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "presence-a%41b"));
    r.path = "/apps/3/channels/presence-a%zzb";
    CU_ASSERT_EQUAL(hd_http_auth_verify(&r, err, sizeof err), 401);
    hd_params_free(&p);
}

static void test_http_auth_err_truncation(void)
{
    hd_params p;
    post_params(&p, "\xc3\xa9\xc3\xa9\xc3\xa9");
    hd_http_auth_request r = post_request(&p);
    char err[16];
    memset(err, 'x', sizeof err);
    CU_ASSERT_EQUAL(hd_http_auth_verify(&r, err, 8), 401);
    CU_ASSERT_STRING_EQUAL(err, "Invalid");
    CU_ASSERT_EQUAL(err[8], 'x');
    CU_ASSERT_EQUAL(hd_http_auth_verify(&r, err, 1), 401);
    CU_ASSERT_STRING_EQUAL(err, "");
    CU_ASSERT_EQUAL(hd_http_auth_verify(&r, NULL, 0), 401);

    /* Cut inside the 2-byte "é": the partial sequence is dropped. */
    char full[512];
    CU_ASSERT_EQUAL(hd_http_auth_verify(&r, full, sizeof full), 401);
    const char *e = strstr(full, "\xc3\xa9");
    CU_ASSERT_PTR_NOT_NULL_FATAL(e);
    size_t cut = (size_t)(e - full) + 1; /* keeps only the lead byte of é */
    char *small = hd_malloc(cut + 1);
    CU_ASSERT_EQUAL(hd_http_auth_verify(&r, small, cut + 1), 401);
    CU_ASSERT_EQUAL(strlen(small), cut - 1);
    CU_ASSERT_EQUAL(strncmp(small, full, cut - 1), 0);
    hd_free(small);
    hd_params_free(&p);
}

/* ---- UTF-8 (RFC 3629; the classic decoder stress-test cases) ---- */

typedef struct utf8_case {
    const char *bytes;
    size_t len;
    bool valid;
} utf8_case;

#define U8(lit, ok) {lit, sizeof lit - 1, ok}

static const utf8_case utf8_cases[] = {
    U8("", true),
    U8("hello, world", true),
    U8("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", true), /* κόσμε */
    U8("\xe4\xb8\xad\xe6\x96\x87", true),                     /* 中文 */
    U8("\xf0\x9f\x98\x80", true),                             /* U+1F600 */
    /* boundaries */
    U8("\xc2\x80", true),         /* U+0080, first 2-byte */
    U8("\xdf\xbf", true),         /* U+07FF, last 2-byte */
    U8("\xe0\xa0\x80", true),     /* U+0800, first 3-byte */
    U8("\xed\x9f\xbf", true),     /* U+D7FF, just below the surrogates */
    U8("\xee\x80\x80", true),     /* U+E000, just above them */
    U8("\xef\xbf\xbd", true),     /* U+FFFD */
    U8("\xef\xbf\xbf", true),     /* U+FFFF (a noncharacter, but well-formed) */
    U8("\xf0\x90\x80\x80", true), /* U+10000, first 4-byte */
    U8("\xf4\x8f\xbf\xbf", true), /* U+10FFFF, the last code point */
    U8("a\x00" "b", true),        /* NUL is a character (len-bounded) */
    /* lone continuation bytes */
    U8("\x80", false),
    U8("\xbf", false),
    U8("\x80\xbf\x80", false),
    U8("a\x80" "b", false),
    /* overlong forms */
    U8("\xc0\xaf", false),             /* '/' in 2 bytes */
    U8("\xc0\x80", false),             /* NUL in 2 bytes */
    U8("\xc1\xbf", false),             /* U+007F in 2 bytes */
    U8("\xe0\x80\xaf", false),         /* '/' in 3 bytes */
    U8("\xe0\x9f\xbf", false),         /* U+07FF in 3 bytes */
    U8("\xf0\x80\x80\xaf", false),     /* '/' in 4 bytes */
    U8("\xf0\x8f\xbf\xbf", false),     /* U+FFFF in 4 bytes */
    U8("\xf8\x88\x80\x80\x80", false), /* 5-byte form */
    U8("\xfc\x84\x80\x80\x80\x80", false), /* 6-byte form */
    /* UTF-16 surrogates, alone and paired (CESU-8) */
    U8("\xed\xa0\x80", false), /* U+D800 */
    U8("\xed\xad\xbf", false), /* U+DB7F */
    U8("\xed\xaf\xbf", false), /* U+DBFF */
    U8("\xed\xb0\x80", false), /* U+DC00 */
    U8("\xed\xbf\xbf", false), /* U+DFFF */
    U8("\xed\xa0\xbd\xed\xb8\x80", false), /* U+1F600 as a surrogate pair */
    /* beyond U+10FFFF */
    U8("\xf4\x90\x80\x80", false), /* U+110000 */
    U8("\xf5\x80\x80\x80", false),
    U8("\xf7\xbf\xbf\xbf", false),
    U8("\xfe", false),
    U8("\xff", false),
    U8("\xfe\xfe\xff\xff", false),
    /* truncated sequences, at the end and in the middle */
    U8("\xc2", false),
    U8("\xe0\xa0", false),
    U8("\xf0\x90\x80", false),
    U8("abc\xe2\x82", false),
    U8("\xe2\x82" "abc", false),
    U8("\xf0\x9f\x98" " ", false),
    /* a continuation byte that is not one */
    U8("\xc2\x41", false),
    U8("\xe2\x28\xa1", false),
    U8("\xe2\x82\x28", false),
    U8("\xf0\x28\x8c\xbc", false),
    U8("\xf0\x90\x28\xbc", false),
    U8("\xf0\x90\x8c\x28", false),
};

static void test_utf8_vectors(void)
{
    for (size_t i = 0; i < sizeof utf8_cases / sizeof utf8_cases[0]; i++) {
        const utf8_case *c = &utf8_cases[i];
        bool got = hd_utf8_valid(c->bytes, c->len);
        if (got != c->valid)
            fprintf(stderr, "\nutf8 case %zu: expected %s\n", i, c->valid ? "valid" : "invalid");
        CU_ASSERT_EQUAL(got, c->valid);
    }
}

static void test_utf8_len_bounds(void)
{
    static const char emoji[] = "\xf0\x9f\x98\x80";
    for (size_t cut = 1; cut < 4; cut++) /* every strict prefix is a truncated sequence */
        CU_ASSERT_FALSE(hd_utf8_valid(emoji, cut));
    CU_ASSERT_TRUE(hd_utf8_valid(emoji, 4));
    CU_ASSERT_TRUE(hd_utf8_valid("ok\xff", 2)); /* bytes past len are not looked at */
    CU_ASSERT_TRUE(hd_utf8_valid(NULL, 0));
    /* a long valid text with one bad byte far in */
    char big[4096];
    for (size_t i = 0; i + 3 <= sizeof big; i += 3)
        memcpy(big + i, "\xe4\xb8\xad", 3);
    size_t n = sizeof big - sizeof big % 3;
    CU_ASSERT_TRUE(hd_utf8_valid(big, n));
    big[n - 2] = 'x';
    CU_ASSERT_FALSE(hd_utf8_valid(big, n));
}

/* The eight-bytes-at-a-time ASCII path: a bad byte or a multi-byte
 * character at every offset of a long ASCII text, every length around it. */
static void test_utf8_ascii_words(void)
{
    char text[40];
    for (size_t at = 0; at < sizeof text; at++) {
        for (size_t len = at + 1; len <= sizeof text; len++) {
            memset(text, 'a', sizeof text);
            text[at] = (char)0xff;
            CU_ASSERT_FALSE(hd_utf8_valid(text, len));
            CU_ASSERT_TRUE(hd_utf8_valid(text, at)); /* stops before it */
            if (at + 2 <= len) {
                text[at] = (char)0xc3, text[at + 1] = (char)0xa9; /* é */
                CU_ASSERT_TRUE(hd_utf8_valid(text, len));
                CU_ASSERT_FALSE(hd_utf8_valid(text, at + 1)); /* cut in the middle */
            }
        }
    }
}

/* herald relies on cJSON refusing a \u escape that is half a surrogate
 * pair: otherwise it would decode it to ED xx xx (invalid UTF-8) and a
 * WebSocket message that lws found valid could carry one into other
 * clients' frames. A cJSON upgrade that changes this must fail here. */
static void check_json_string(const char *json, const char *want)
{
    cJSON *v = cJSON_Parse(json);
    if (!want) {
        CU_ASSERT_PTR_NULL(v);
    } else {
        CU_ASSERT_TRUE(cJSON_IsString(v));
        if (cJSON_IsString(v)) {
            CU_ASSERT_STRING_EQUAL(v->valuestring, want);
            CU_ASSERT_TRUE(hd_utf8_valid(v->valuestring, strlen(v->valuestring)));
        }
    }
    cJSON_Delete(v);
}

static void test_utf8_cjson_escapes(void)
{
    check_json_string("\"\\ud800\"", NULL);
    check_json_string("\"\\udbff\"", NULL);
    check_json_string("\"\\udc00\"", NULL);
    check_json_string("\"\\udfff\"", NULL);
    check_json_string("\"a\\ud800b\"", NULL);
    check_json_string("\"\\ud800\\u0041\"", NULL);
    check_json_string("\"\\ud800\\ud800\"", NULL);
    check_json_string("\"\\udc00\\ud800\"", NULL);
    check_json_string("{\"k\":\"\\ud83d\"}", NULL);
    check_json_string("\"\\ud83d\\ude00\"", "\xf0\x9f\x98\x80");
    check_json_string("\"\\udbff\\udfff\"", "\xf4\x8f\xbf\xbf");
    check_json_string("\"\\u00e9\\u4e2d\\uffff\"", "\xc3\xa9\xe4\xb8\xad\xef\xbf\xbf");
}

/* ---- frames (frame.c): the bytes every path sends ---- */

/* out holds exactly want; out is emptied for the next frame. */
static void frame_is(hd_buf *out, const char *want)
{
    CU_ASSERT_STRING_EQUAL(out->data ? out->data : "", want);
    hd_buf_deinit(out);
}

static void test_frames_events(void)
{
    hd_buf b;
    hd_buf_init(&b);
    hd_frame_event(&b, "my-event", "my-channel", "{\"a\":\"b\"}", 9);
    frame_is(&b, "{\"event\":\"my-event\",\"channel\":\"my-channel\",\"data\":\"{\\\"a\\\":\\\"b\\\"}\"}");
    hd_frame_event(&b, "e\"v", NULL, NULL, 0);
    frame_is(&b, "{\"event\":\"e\\\"v\"}");
    hd_frame_ping(&b);
    frame_is(&b, "{\"event\":\"pusher:ping\",\"data\":\"{}\"}");
    hd_frame_pong(&b);
    frame_is(&b, "{\"event\":\"pusher:pong\",\"data\":\"{}\"}");
    hd_frame_connection_established(&b, "123.45", 120);
    frame_is(&b, "{\"event\":\"pusher:connection_established\",\"data\":\"{\\\"socket_id\\\":\\\"123.45\\\","
                 "\\\"activity_timeout\\\":120}\"}");
    hd_frame_error(&b, 4009, "Bad \"auth\"");
    frame_is(&b, "{\"event\":\"pusher:error\",\"data\":{\"code\":4009,\"message\":\"Bad \\\"auth\\\"\"}}");
    hd_frame_error(&b, 0, "Unknown event");
    frame_is(&b, "{\"event\":\"pusher:error\",\"data\":{\"code\":null,\"message\":\"Unknown event\"}}");
    hd_frame_signin_success(&b, "{\"id\":\"u1\"}");
    frame_is(&b, "{\"event\":\"pusher:signin_success\",\"data\":{\"user_data\":\"{\\\"id\\\":\\\"u1\\\"}\"}}");
    hd_frame_client_event(&b, "client-x", "private-c", "{\"n\":1}", NULL);
    frame_is(&b, "{\"event\":\"client-x\",\"channel\":\"private-c\",\"data\":{\"n\":1}}");
    hd_frame_client_event(&b, "client-x", "presence-c", "\"s\"", "42");
    frame_is(&b, "{\"event\":\"client-x\",\"channel\":\"presence-c\",\"data\":\"s\",\"user_id\":\"42\"}");
}

static void test_frames_subscriptions(void)
{
    hd_buf b;
    hd_buf_init(&b);
    hd_frame_subscription_succeeded(&b, "c", NULL, 0);
    frame_is(&b, "{\"event\":\"pusher_internal:subscription_succeeded\",\"channel\":\"c\",\"data\":\"{}\"}");
    static const char snap[] = "{\"presence\":{\"ids\":[\"1\"],\"hash\":{\"1\":null},\"count\":1}}";
    hd_frame_subscription_succeeded(&b, "presence-c", snap, sizeof snap - 1);
    frame_is(&b, "{\"event\":\"pusher_internal:subscription_succeeded\",\"channel\":\"presence-c\",\"data\":"
                 "\"{\\\"presence\\\":{\\\"ids\\\":[\\\"1\\\"],\\\"hash\\\":{\\\"1\\\":null},\\\"count\\\":1}}\"}");
    hd_frame_subscription_error(&b, "private-x", "AuthError", "Invalid signature", 401);
    frame_is(&b, "{\"event\":\"pusher:subscription_error\",\"channel\":\"private-x\",\"data\":{\"type\":\"AuthError\","
                 "\"error\":\"Invalid signature\",\"status\":401}}");
    hd_frame_cache_miss(&b, "cache-c");
    frame_is(&b, "{\"event\":\"pusher:cache_miss\",\"channel\":\"cache-c\"}");
    hd_frame_subscription_count(&b, "c", 7);
    frame_is(&b, "{\"event\":\"pusher_internal:subscription_count\",\"channel\":\"c\",\"data\":"
                 "\"{\\\"subscription_count\\\":7}\"}");
}

static void test_frames_members(void)
{
    hd_buf b;
    hd_buf_init(&b);
    hd_frame_member(&b, true, "presence-c", "\"u1\"", "{\"name\":\"Ann\"}");
    frame_is(&b, "{\"event\":\"pusher_internal:member_added\",\"channel\":\"presence-c\",\"data\":"
                 "\"{\\\"user_id\\\":\\\"u1\\\",\\\"user_info\\\":{\\\"name\\\":\\\"Ann\\\"}}\"}");
    hd_frame_member(&b, true, "presence-c", "7", NULL); /* a numeric user_id stays a number */
    frame_is(&b, "{\"event\":\"pusher_internal:member_added\",\"channel\":\"presence-c\",\"data\":"
                 "\"{\\\"user_id\\\":7}\"}");
    hd_frame_member(&b, false, "presence-c", "\"u1\"", "{\"ignored\":1}");
    frame_is(&b, "{\"event\":\"pusher_internal:member_removed\",\"channel\":\"presence-c\",\"data\":"
                 "\"{\\\"user_id\\\":\\\"u1\\\"}\"}");
    hd_frame_watchlist(&b, true, "u\"1");
    frame_is(&b, "{\"event\":\"pusher_internal:watchlist_events\",\"data\":"
                 "\"{\\\"events\\\":[{\\\"name\\\":\\\"online\\\",\\\"user_ids\\\":[\\\"u\\\\\\\"1\\\"]}]}\"}");
    hd_frame_watchlist_ids(&b, false, "\"a\",\"b\"");
    frame_is(&b, "{\"event\":\"pusher_internal:watchlist_events\",\"data\":"
                 "\"{\\\"events\\\":[{\\\"name\\\":\\\"offline\\\",\\\"user_ids\\\":[\\\"a\\\",\\\"b\\\"]}]}\"}");
}

void hd_test_suite_protocol(void)
{
    CU_pSuite s = CU_add_suite("protocol", NULL, NULL);
    CU_add_test(s, "hmac vectors (§0)", test_hmac_vectors);
    CU_add_test(s, "hmac empty inputs", test_hmac_empty_inputs);
    CU_add_test(s, "md5 vectors", test_md5_vectors);
    CU_add_test(s, "string to sign", test_string_to_sign);
    CU_add_test(s, "string to sign lower-cases and sorts", test_string_to_sign_lowercases_and_sorts);
    CU_add_test(s, "classify table", test_classify_table);
    CU_add_test(s, "classify embedded NUL and len", test_classify_embedded_nul_and_len);
    CU_add_test(s, "classify length limits", test_classify_length_limits);
    CU_add_test(s, "classify user channel id limit", test_classify_user_channel_id_limit);
    CU_add_test(s, "needs auth", test_needs_auth);
    CU_add_test(s, "channel user id", test_channel_user_id);
    CU_add_test(s, "socket id", test_socket_id);
    CU_add_test(s, "user id", test_user_id);
    CU_add_test(s, "const time equal", test_const_time_equal);
    CU_add_test(s, "auth verify vectors", test_auth_verify);
    CU_add_test(s, "auth verify failures", test_auth_verify_failures);
    CU_add_test(s, "params parse and decode", test_params_parse_and_decode);
    CU_add_test(s, "params malformed escape", test_params_malformed_escape);
    CU_add_test(s, "params get case-insensitive", test_params_get_case_insensitive);
    CU_add_test(s, "http auth POST vector", test_http_auth_post_success);
    CU_add_test(s, "http auth parsed query", test_http_auth_parsed_query_success);
    CU_add_test(s, "http auth in two steps: head, then body", test_http_auth_two_steps);
    CU_add_test(s, "http auth GET and terminate vectors", test_http_auth_get_and_terminate_success);
    CU_add_test(s, "http auth missing params -> 401", test_http_auth_missing_params);
    CU_add_test(s, "http auth duplicate/malformed -> 400", test_http_auth_duplicate_and_malformed);
    CU_add_test(s, "http auth bad version -> 401", test_http_auth_bad_version);
    CU_add_test(s, "http auth expired -> 401", test_http_auth_expired);
    CU_add_test(s, "http auth unknown key -> 401", test_http_auth_unknown_key);
    CU_add_test(s, "http auth bad signature -> 401", test_http_auth_bad_signature);
    CU_add_test(s, "http auth body_md5 -> 401", test_http_auth_body_md5);
    CU_add_test(s, "http auth decoded path", test_http_auth_decoded_path);
    CU_add_test(s, "http auth err truncation", test_http_auth_err_truncation);
    CU_add_test(s, "utf8 vectors (RFC 3629)", test_utf8_vectors);
    CU_add_test(s, "utf8 length bounds", test_utf8_len_bounds);
    CU_add_test(s, "utf8 ascii words", test_utf8_ascii_words);
    CU_add_test(s, "utf8: cJSON refuses escaped lone surrogates", test_utf8_cjson_escapes);
    CU_add_test(s, "frames: events, errors, greeting, ping/pong, signin, client events", test_frames_events);
    CU_add_test(s, "frames: subscription succeeded / error, cache miss, count", test_frames_subscriptions);
    CU_add_test(s, "frames: members and watchlists", test_frames_members);
}
