-- read_channel.lua - one channel's counts and cached event
-- (HD_AD_READ_CHANNEL). Contract: scripts.h HD_RS_READ_CHANNEL.

local P, A, c = arg_name(1), arg_name(2), arg_name(3)
local K = app_key(P, A)
local subs = tonumber(redis.call('HGET', K .. ':subs', c)) or 0
local users = redis.call('HLEN', K .. ':pu:' .. c)
local cache = redis.call('GET', K .. ':cache:' .. c)
local ttl = 0
if cache then
    local pttl = redis.call('PTTL', K .. ':cache:' .. c)
    ttl = pttl > 0 and math.ceil(pttl / 1000) or 0
else
    cache = ''
end
return {subs, users, cache, ttl}
