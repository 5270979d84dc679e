/* log.h - herald's log: levels, one line per event with its context, text
 * or JSON lines, and the rate-limited log of refusals.
 *
 * DESIGN
 * ------
 * Every line goes to stderr (the journal under systemd) with one write(2),
 * at most HD_LOG_LINE_MAX bytes, so lines from different threads never
 * interleave (a pipe keeps writes up to PIPE_BUF = 4096 bytes whole).
 * hd_log and friends test the level before they evaluate their arguments:
 * a debug line costs a comparison when debug is off.
 *
 * A line may carry the context it applies to (hd_log_ctx: app, socket_id,
 * channel, user, remote address). In text it is appended as
 * " [app=... socket_id=... remote=...]"; in JSON (log_format "json") each
 * field is a key of its own next to ts, level, module and msg. Control
 * characters (a client's channel name may hold a newline) are escaped in
 * both formats, so one event stays one line; JSON lines are valid UTF-8.
 *
 * Refusals (an HTTP error status, a 4xxx close, a subscription error, a
 * rejected client event) are what a client or an attacker controls, so
 * they are logged through hd_log_refusal: per reason key ("http 401",
 * "close 4001", ...), the first one is logged at once with its context,
 * later ones within HD_REFUSAL_WINDOW_MS are only counted, and when the
 * window ends one line says "N more <reason> in the last 10 s". Those
 * summaries are written by hd_log_refusal_flush (the io threads call it
 * every tick; main calls it with all = true before the final line, so no
 * count is lost at exit) or by the next refusal of that reason. The keys
 * live in a fixed table (HD_REFUSAL_KEYS); once it is full, new keys share
 * one "other refusals" entry: memory stays bounded whatever clients send.
 *
 * THREADING
 * ---------
 * Any thread may log. hd_log_set_level/_format/_fd/_clock are meant for
 * start-up (and tests), before other threads exist. The refusal table is
 * guarded by one mutex, held for the bookkeeping only, never across a
 * write(2); the io threads' periodic flush first reads an atomic due time
 * and takes the mutex only when a summary is due.
 */
#ifndef HD_LOG_H
#define HD_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum hd_log_level { HD_LOG_ERR = 0, HD_LOG_WARN = 1, HD_LOG_NOTICE = 2, HD_LOG_INFO = 3, HD_LOG_DEBUG = 4 };
enum hd_log_format { HD_LOG_TEXT = 0, HD_LOG_JSON = 1 };

#define HD_LOG_LINE_MAX 4096         /* bytes per line, newline included */
#define HD_LOG_VALUE_MAX 256         /* bytes of one context value shown */
#define HD_REFUSAL_WINDOW_MS 10000u  /* refusals of one reason counted, not logged, for this long */
#define HD_REFUSAL_KEYS 64           /* distinct reason keys tracked (the last one is "other refusals") */
#define HD_REFUSAL_KEY_MAX 48        /* bytes of a reason key kept */

/* Where a line applies; every field is optional (NULL = not shown). */
typedef struct hd_log_ctx {
    const char *app;       /* app id */
    const char *socket_id;
    const char *channel;
    const char *user;      /* signed-in user id */
    const char *remote;    /* the peer address as text, when known */
    /* Or a connected socket whose peer address is looked up (getpeername)
     * only if the line is actually written: a refusal counted in its
     * window costs no system call. Used when remote is NULL. */
    const int *peer_fd;
} hd_log_ctx;

extern int hd_log_level_current;
void hd_log_set_level(int level);
void hd_log_set_format(int format);
/* Names as in the configuration: "error".."debug" (-1 if unknown), "text"/"json". */
int hd_log_level_parse(const char *name);
int hd_log_format_parse(const char *name);

void hd_log_emit(int level, const char *module, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void hd_log_emit_ctx(int level, const char *module, const hd_log_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void hd_log_refusal_emit(const char *module, const char *reason, const hd_log_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The same with a va_list, for wrappers that add their own context. */
void hd_log_refusal_emitv(const char *module, const char *reason, const hd_log_ctx *ctx, const char *fmt,
                          va_list ap) __attribute__((format(printf, 4, 0)));

#define hd_log(level, module, ...)                                   \
    do {                                                             \
        if ((level) <= hd_log_level_current)                         \
            hd_log_emit((level), (module), __VA_ARGS__);             \
    } while (0)

/* A line with its context (ctx: const hd_log_ctx *, may be NULL). */
#define hd_logc(level, module, ctx, ...)                             \
    do {                                                             \
        if ((level) <= hd_log_level_current)                         \
            hd_log_emit_ctx((level), (module), (ctx), __VA_ARGS__);  \
    } while (0)

/* A refusal, at info, rate-limited per reason (see DESIGN). The line reads
 * "<reason>: <fmt...>". reason is copied; any string will do, but keep
 * the set of keys small and fixed (a status or a code, not client text). */
#define hd_log_refusal(module, reason, ctx, ...)                                \
    do {                                                                        \
        if (HD_LOG_INFO <= hd_log_level_current)                                \
            hd_log_refusal_emit((module), (reason), (ctx), __VA_ARGS__);        \
    } while (0)

/* Write the "N more" summary of every window that has ended; all: of every
 * window with a count, ended or not (exit). Cheap when nothing is due. */
void hd_log_refusal_flush(bool all);

/* The final line of a run, after flushing the refusal counts:
 * "<what> (exit status N)", at notice for 0, at error otherwise. */
void hd_log_exit(int status, const char *what);

/* ---- for the unit tests ---- */
void hd_log_set_fd(int fd);                       /* where lines go (default 2) */
void hd_log_set_clock(uint64_t (*now_ms)(void)); /* the refusal windows' clock; NULL = hd_mono_ms */
void hd_log_refusal_reset(void);                  /* forget every key and count */
/* s[0, n) escaped as the inside of a JSON string into out (cap bytes, no
 * NUL written): whole characters only, invalid UTF-8 as \ufffd. Returns the
 * bytes written; *used (if not NULL) gets how many input bytes fit. */
size_t hd_log_json_escape(char *out, size_t cap, const char *s, size_t n, size_t *used);
/* One complete line (newline included, no NUL) as it would be written;
 * reason and count are the refusal fields (NULL / 0 for none). */
size_t hd_log_format_line(char *out, size_t cap, int level, const char *module, const hd_log_ctx *ctx,
                          const char *reason, uint64_t count, const char *msg);

#endif /* HD_LOG_H */
