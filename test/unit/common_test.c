/* common_test.c - CUnit suite "common": hd_buf, JSON string escaping,
 * hd_strerror and the string helpers of src/common.
 *
 * THREADING: run by the single-threaded unit test runner.
 */
#include <CUnit/CUnit.h>
#include <string.h>

#include "common/common.h"

static void test_buf_append_puts(void)
{
    hd_buf b;
    hd_buf_init(&b);
    CU_ASSERT_PTR_NULL(b.data);
    CU_ASSERT_EQUAL(b.len, 0);
    hd_buf_append(&b, "abc", 3);
    hd_buf_puts(&b, "def");
    hd_buf_append(&b, "", 0);
    CU_ASSERT_EQUAL(b.len, 6);
    CU_ASSERT_STRING_EQUAL(b.data, "abcdef");
    hd_buf_append(&b, "g\0h", 3);
    CU_ASSERT_EQUAL(b.len, 9);
    CU_ASSERT_EQUAL(memcmp(b.data, "abcdefg\0h", 10), 0);
    hd_buf_deinit(&b);
    CU_ASSERT_PTR_NULL(b.data);
    CU_ASSERT_EQUAL(b.len, 0);
    CU_ASSERT_EQUAL(b.cap, 0);
}

static void test_buf_growth(void)
{
    hd_buf b;
    hd_buf_init(&b);
    for (int i = 0; i < 1000; i++)
        hd_buf_append(&b, "0123456789", 10);
    CU_ASSERT_EQUAL(b.len, 10000);
    CU_ASSERT(b.cap > b.len);
    CU_ASSERT_EQUAL(b.data[b.len], '\0');
    CU_ASSERT_EQUAL(memcmp(b.data + 9990, "0123456789", 10), 0);
    hd_buf_reserve(&b, 100000);
    CU_ASSERT(b.cap >= b.len + 100001);
    CU_ASSERT_EQUAL(b.len, 10000);
    hd_buf_deinit(&b);
}

static void test_buf_printf(void)
{
    hd_buf b;
    hd_buf_init(&b);
    hd_buf_printf(&b, "%d-%s", 42, "x");
    hd_buf_printf(&b, "|%05.1f|", 3.14159);
    CU_ASSERT_STRING_EQUAL(b.data, "42-x|003.1|");
    CU_ASSERT_EQUAL(b.len, strlen("42-x|003.1|"));
    char big[300];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    hd_buf_printf(&b, "[%s]", big);
    CU_ASSERT_EQUAL(b.len, 11 + 301);
    CU_ASSERT_EQUAL(b.data[b.len - 1], ']');
    CU_ASSERT_EQUAL(b.data[b.len], '\0');
    size_t before = b.len;
    hd_buf_printf(&b, "%s", "");
    CU_ASSERT_EQUAL(b.len, before);
    hd_buf_deinit(&b);
}

static void test_buf_steal(void)
{
    hd_buf b;
    hd_buf_init(&b);
    hd_buf_puts(&b, "hello");
    size_t len = 0;
    char *s = hd_buf_steal(&b, &len);
    CU_ASSERT_STRING_EQUAL(s, "hello");
    CU_ASSERT_EQUAL(len, 5);
    CU_ASSERT_PTR_NULL(b.data);
    CU_ASSERT_EQUAL(b.len, 0);
    CU_ASSERT_EQUAL(b.cap, 0);
    hd_free(s);
    /* Stealing an empty buffer yields "" the caller frees. */
    s = hd_buf_steal(&b, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_STRING_EQUAL(s, "");
    CU_ASSERT_EQUAL(len, 0);
    hd_free(s);
    hd_buf_puts(&b, "again");
    s = hd_buf_steal(&b, NULL);
    CU_ASSERT_STRING_EQUAL(s, "again");
    hd_free(s);
    hd_buf_deinit(&b);
}

static void check_json(const char *in, size_t n, const char *want)
{
    hd_buf b;
    hd_buf_init(&b);
    hd_buf_puts(&b, "x=");
    hd_buf_json_string(&b, in, n);
    CU_ASSERT_STRING_EQUAL(b.data + 2, want);
    CU_ASSERT_EQUAL(b.len, 2 + strlen(want));
    if (strcmp(b.data + 2, want) != 0)
        fprintf(stderr, "\n  json got %s want %s\n", b.data + 2, want);
    hd_buf_deinit(&b);
}

static void check_json_str(const char *in, const char *want)
{
    check_json(in, strlen(in), want);
}

static void test_json_string_escapes(void)
{
    check_json_str("", "\"\"");
    check_json_str("plain text", "\"plain text\"");
    check_json_str("say \"hi\"", "\"say \\\"hi\\\"\"");
    check_json_str("back\\slash", "\"back\\\\slash\"");
    check_json_str("a\nb\tc\rd", "\"a\\nb\\tc\\rd\"");
    check_json_str("\b\f", "\"\\b\\f\"");
    check_json_str("\x01\x1f\x0b", "\"\\u0001\\u001f\\u000b\"");
    check_json_str("/ and \x7f", "\"/ and \x7f\"");
    check_json_str("{\"some\":\"data\"}", "\"{\\\"some\\\":\\\"data\\\"}\"");
}

static void test_json_string_utf8_and_nul(void)
{
    /* é, €, U+1F600: bytes pass through unchanged. */
    check_json_str("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
    check_json("a\0b", 3, "\"a\\u0000b\"");
    check_json("\0", 1, "\"\\u0000\"");
    /* n bounds the input: bytes after it are not read. */
    check_json("abcdef", 3, "\"abc\"");
}

static void test_strerror(void)
{
    CU_ASSERT_STRING_EQUAL(hd_strerror(HD_OK), "success");
    CU_ASSERT_STRING_EQUAL(hd_strerror(HD_EINVAL), "invalid argument");
    CU_ASSERT_STRING_EQUAL(hd_strerror(HD_ENOMEM), "out of memory");
    CU_ASSERT_STRING_EQUAL(hd_strerror(HD_EFULL), "queue full");
    CU_ASSERT_STRING_EQUAL(hd_strerror(HD_ESHUTDOWN), "shutting down");
    CU_ASSERT_STRING_EQUAL(hd_strerror(HD_ENOENT), "not found");
    CU_ASSERT_STRING_EQUAL(hd_strerror(HD_EEXIST), "already exists");
    CU_ASSERT_STRING_EQUAL(hd_strerror(HD_ELIMIT), "limit reached");
    CU_ASSERT_STRING_EQUAL(hd_strerror(HD_EAUTH), "authentication failed");
    CU_ASSERT_STRING_EQUAL(hd_strerror(HD_EIO), "i/o error");
    CU_ASSERT_STRING_EQUAL(hd_strerror(HD_ETHREAD), "thread error");
    CU_ASSERT_STRING_EQUAL(hd_strerror(HD_EAGAIN), "try again");
    CU_ASSERT_STRING_EQUAL(hd_strerror(-12345), "unknown error");
    CU_ASSERT_STRING_EQUAL(hd_strerror(1), "unknown error");
}

static void test_strdup(void)
{
    char *s = hd_strdup("herald");
    CU_ASSERT_STRING_EQUAL(s, "herald");
    hd_free(s);
    s = hd_strndup("herald", 3);
    CU_ASSERT_STRING_EQUAL(s, "her");
    hd_free(s);
    s = hd_strndup("a\0b", 3);
    CU_ASSERT_EQUAL(memcmp(s, "a\0b\0", 4), 0);
    hd_free(s);
}

void hd_test_suite_common(void)
{
    CU_pSuite s = CU_add_suite("common", NULL, NULL);
    CU_add_test(s, "buf append/puts", test_buf_append_puts);
    CU_add_test(s, "buf growth", test_buf_growth);
    CU_add_test(s, "buf printf", test_buf_printf);
    CU_add_test(s, "buf steal", test_buf_steal);
    CU_add_test(s, "json string escapes", test_json_string_escapes);
    CU_add_test(s, "json string utf8 and NUL", test_json_string_utf8_and_nul);
    CU_add_test(s, "strerror", test_strerror);
    CU_add_test(s, "strdup/strndup", test_strdup);
}
