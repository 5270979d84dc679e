/* scripts.c - the embedded Lua scripts of the Redis adapter, by number
 * (scripts.h). The sources are generated at build time from
 * src/adapter/redis/lua/ (prelude prepended) by cmake/embed_lua.cmake.
 *
 * THREADING: read-only static data; any thread.
 */
#include "adapter/redis/scripts.h"

#include <stddef.h>

#define HD_RS_LIST(XX)                                                                                        \
    XX(HD_RS_REGISTER, register)                                                                              \
    XX(HD_RS_RENEW, renew)                                                                                    \
    XX(HD_RS_EXPIRED, expired)                                                                                \
    XX(HD_RS_RESYNC_BEGIN, resync_begin)                                                                      \
    XX(HD_RS_MEMBER, member)                                                                                  \
    XX(HD_RS_QUOTA, quota)                                                                                    \
    XX(HD_RS_REAP, reap)                                                                                      \
    XX(HD_RS_SWEEP, sweep)                                                                                    \
    XX(HD_RS_HOLDS, holds)                                                                                    \
    XX(HD_RS_PUBLISH_CACHE, publish_cache)                                                                    \
    XX(HD_RS_READ_CHANNELS, read_channels)                                                                    \
    XX(HD_RS_READ_CHANNEL, read_channel)                                                                      \
    XX(HD_RS_READ_USERS, read_users)                                                                          \
    XX(HD_RS_READ_ONLINE, read_online)

/* Defined in the generated file, one per src/adapter/redis/lua/<name>.lua. */
#define HD_RS_EXTERN(id, name) extern const char hd_redis_lua_##name[];
HD_RS_LIST(HD_RS_EXTERN)

typedef struct script_entry {
    const char *name;
    const char *source;
} script_entry;

#define HD_RS_ENTRY(id, name) [id] = {#name, hd_redis_lua_##name},
static const script_entry scripts[HD_RS_COUNT] = {HD_RS_LIST(HD_RS_ENTRY)};

const char *hd_redis_script_source(int which)
{
    return which >= 0 && which < HD_RS_COUNT ? scripts[which].source : NULL;
}

const char *hd_redis_script_name(int which)
{
    return which >= 0 && which < HD_RS_COUNT ? scripts[which].name : NULL;
}
