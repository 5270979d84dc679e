/* common.h - errors, allocation, logging and clocks shared by every module.
 *
 * DESIGN
 * ------
 * One error type: functions return int, 0 on success or a negative HD_E*
 * code from the X-macro table below (hd_strerror names it). Allocation
 * aborts on OOM inside hd_malloc and friends, so call sites carry no
 * impossible branches. Logging is declared in log.h (included here): hd_log
 * tests the level before it evaluates its arguments and emits each line
 * with one write(2), so any thread may log.
 *
 * THREADING
 * ---------
 * Everything here is safe from any thread. hd_log_set_level() (log.h) is
 * meant to be called once at start-up, before threads exist.
 */
#ifndef HD_COMMON_H
#define HD_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#define HD_ERRNO_MAP(XX)                                        \
    XX(EINVAL, -1, "invalid argument")                          \
    XX(ENOMEM, -2, "out of memory")                             \
    XX(EFULL, -3, "queue full")                                 \
    XX(ESHUTDOWN, -4, "shutting down")                          \
    XX(ENOENT, -5, "not found")                                 \
    XX(EEXIST, -6, "already exists")                            \
    XX(ELIMIT, -7, "limit reached")                             \
    XX(EAUTH, -8, "authentication failed")                      \
    XX(EIO, -9, "i/o error")                                    \
    XX(ETHREAD, -10, "thread error")                            \
    XX(EAGAIN, -11, "try again")

enum {
    HD_OK = 0,
#define HD_XX_ENUM(name, val, msg) HD_##name = (val),
    HD_ERRNO_MAP(HD_XX_ENUM)
#undef HD_XX_ENUM
};

const char *hd_strerror(int err);

void *hd_malloc(size_t n);
void *hd_calloc(size_t count, size_t size);
void *hd_realloc(void *p, size_t n);
char *hd_strdup(const char *s);
char *hd_strndup(const char *s, size_t n);
#define hd_free free

/* Logging (levels, context, JSON lines, rate-limited refusals): log.h. */
#include "log.h"

/* Broken invariants abort with file and line: never for bad input. */
#define hd_assert(cond)                                                        \
    do {                                                                       \
        if (!(cond))                                                           \
            hd_panic(__FILE__, __LINE__, #cond);                               \
    } while (0)
void hd_panic(const char *file, int line, const char *what) __attribute__((noreturn));

/* Monotonic and wall clocks. */
uint64_t hd_mono_ms(void);
uint64_t hd_mono_us(void);
uint64_t hd_wall_ms(void);

/* Growable byte buffer, NUL-terminated at all times (len excludes the NUL). */
typedef struct hd_buf {
    char *data;
    size_t len;
    size_t cap;
} hd_buf;

void hd_buf_init(hd_buf *b);
void hd_buf_deinit(hd_buf *b);
void hd_buf_reserve(hd_buf *b, size_t extra);
void hd_buf_append(hd_buf *b, const void *p, size_t n);
void hd_buf_puts(hd_buf *b, const char *s);
void hd_buf_printf(hd_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append s as a JSON string literal (with quotes), escaping as JSON.stringify does. */
void hd_buf_json_string(hd_buf *b, const char *s, size_t n);
/* How many bytes of s[0, len) to keep to shorten it to at most max bytes
 * without ending inside a UTF-8 sequence: client text quoted into a
 * WebSocket text frame must stay valid UTF-8 (RFC 6455 §8.1), and a
 * printf "%.64s" may cut a character in two. */
size_t hd_utf8_prefix(const char *s, size_t len, size_t max);
/* Detach the data; the caller frees it with hd_free. The buffer is reset. */
char *hd_buf_steal(hd_buf *b, size_t *len_out);

#endif /* HD_COMMON_H */
