-- reap.lua - remove what a dead incarnation contributed, a chunk at a time,
-- announcing each crossing exactly once however many nodes reap at once;
-- force = 1 is a node's own graceful leave. Contract: scripts.h HD_RS_REAP.

local P, dead, batch, hold_ms, force = arg_name(1), arg_name(2), arg_int(3), arg_int(4), arg_flag(5)
local t = now_ms()
if not force and fenced_ok(P, dead, t) then return {1, 0, 0, 0, 0, {}} end

local apps_key = P .. ':node:' .. dead .. ':apps'
local stats, budget, remaining = new_stats(), batch, 0
for _, A in ipairs(redis.call('SMEMBERS', apps_key)) do
    local K = app_key(P, A)
    local nc = K .. ':nc:' .. dead
    if budget > 0 then
        local count_events = app_count_events(K)
        for _, c in ipairs(redis.call('ZRANGE', nc, '0', fmt(budget - 1))) do
            local ctx = new_ctx(P, A, c, dead, t, hold_ms)
            ctx.count_events = count_events
            zero_node_channel(ctx, stats)
            budget = budget - 1
        end
    end
    local left = redis.call('ZCARD', nc)
    if left == 0 then
        redis.call('HDEL', K .. ':conns', dead)
        redis.call('SREM', apps_key, A)
    end
    remaining = remaining + left
end

if redis.call('SCARD', apps_key) == 0 then
    redis.call('ZREM', P .. ':nodes', dead)
    redis.call('DEL', P .. ':node:' .. dead)
    local num = dead:match('^(%d+)-')
    if num and redis.call('GET', P .. ':num:' .. num) == dead then redis.call('DEL', P .. ':num:' .. num) end
end
return {0, remaining, stats.channels, stats.vacated, stats.removed, stats.counts}
