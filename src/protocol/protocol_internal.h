/* protocol_internal.h - helpers shared by the protocol module's .c files
 * (params.c defines them, http_auth.c uses them). Not for other modules.
 *
 * THREADING: both functions are reentrant and safe from any thread.
 */
#ifndef HD_PROTOCOL_INTERNAL_H
#define HD_PROTOCOL_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

/* URL-decode s[0..len): %XX (either case) and, if plus_is_space, '+' -> ' '.
 * On success returns 0 and sets *out to a NUL-terminated heap copy (free
 * with hd_free). Returns HD_EINVAL and sets *out to NULL on a truncated or
 * non-hex %-escape, or on %00 (a NUL would silently cut the value short). */

/* strcmp over ASCII-lower-cased bytes, locale-independent. */
int hd_protocol__ascii_casecmp(const char *a, const char *b);

#endif /* HD_PROTOCOL_INTERNAL_H */
