-- holds.lua - pop held channel_vacated / member_removed webhooks that are
-- due and still true (no rejoin anywhere since). Each entry is popped by
-- exactly one call. Contract: scripts.h HD_RS_HOLDS.

local P, batch, flush = arg_name(1), arg_int(2), arg_flag(3)
local t = now_ms()
local key = P .. ':holds'
local entries
if flush then
    entries = redis.call('ZRANGE', key, '0', fmt(batch - 1))
else
    entries = redis.call('ZRANGEBYSCORE', key, '-inf', fmt(t), 'LIMIT', '0', fmt(batch))
end

local reply = {0}
for _, e in ipairs(entries) do
    redis.call('ZREM', key, e)
    local kind, A, c, u = record_field(e, 1), record_field(e, 2), record_field(e, 3), record_field(e, 4)
    local K = app_key(P, A)
    local confirmed
    if kind == HOLD_V then
        confirmed = redis.call('HEXISTS', K .. ':subs', c) == 0
        u = ''
    else
        confirmed = redis.call('HEXISTS', K .. ':pu:' .. c, u) == 0
    end
    if confirmed then
        reply[#reply + 1], reply[#reply + 2], reply[#reply + 3], reply[#reply + 4] = kind, A, c, u
    end
end
if flush then
    reply[1] = redis.call('ZCARD', key)
else
    reply[1] = redis.call('ZCOUNT', key, '-inf', fmt(t))
end
return reply
