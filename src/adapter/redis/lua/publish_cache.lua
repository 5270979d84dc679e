-- publish_cache.lua - publish an event of a cache channel and keep it as
-- the channel's cached event, in one step so the cache and the message
-- stream agree in order. Contract: scripts.h HD_RS_PUBLISH_CACHE.

local P, A, c, ttl_ms = arg_name(1), arg_name(2), arg_name(3), arg_int(4)
local origin, except, frame = arg_name(5), arg_str(6), arg_str(7)
if ttl_ms == 0 then bad_arg(4, 'must be > 0') end
local K = app_key(P, A)
redis.call('SET', K .. ':cache:' .. c, frame, 'PX', fmt(ttl_ms))
redis.call('DEL', K .. ':cmiss:' .. c)
if except == '' then except = '-' end
return redis.call('PUBLISH', P .. ':m:' .. A .. ':' .. c, origin .. ' P ' .. except .. '\n' .. frame)
