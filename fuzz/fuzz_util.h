/* fuzz_util.h - what every fuzz target shares: failing loudly, the output
 * oracles (JSON shape, UTF-8), splitting an input into records, signing.
 *
 * DESIGN
 * ------
 * A harness turns a property violation into abort() through hd_fuzz_fail,
 * so libFuzzer keeps the input exactly like a sanitizer report. Inputs are
 * text wherever possible (records separated by a delimiter) so seeds stay
 * readable and editable by hand.
 */
#ifndef HD_FUZZ_UTIL_H
#define HD_FUZZ_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/common.h"

/* Print "fuzz: <what>" and the offending bytes (escaped), then abort. */
void hd_fuzz_fail(const char *what, const void *bytes, size_t len) __attribute__((noreturn));

/* herald's logging off: a fuzzer runs millions of inputs. */
void hd_fuzz_quiet(void);

/* Strict UTF-8 (RFC 3629: no overlongs, no surrogates, <= U+10FFFF). With
 * allow_partial, an incomplete sequence at the very end is accepted (a
 * message still arriving in fragments). */
bool hd_fuzz_utf8_valid(const void *p, size_t len, bool allow_partial);

/* Abort unless p[0, len) is exactly one JSON object (what herald promises
 * for every frame and HTTP body it writes); what names the output. */
void hd_fuzz_expect_json_object(const char *what, const char *p, size_t len);

/* Cut [p, end) at the next occurrence of sep: *rec gets the record and its
 * length, p advances past sep. Returns false when nothing is left. */
bool hd_fuzz_next_record(const char **p, const char *end, const char *sep, const char **rec, size_t *rec_len);

/* "<key>:<hex HMAC-SHA256(secret, str)>" into out (the socket auth of §6). */
void hd_fuzz_socket_auth(hd_buf *out, const char *key, const char *secret, const char *str, size_t len);

#endif /* HD_FUZZ_UTIL_H */
