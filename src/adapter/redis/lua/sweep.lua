-- sweep.lua - after a resync, zero this incarnation's entries that were not
-- re-asserted (their epoch is older): sockets that left while Redis was
-- away. Contract: scripts.h HD_RS_SWEEP.

local P, inc, epoch, batch, hold_ms = arg_name(1), arg_name(2), arg_int(3), arg_int(4), arg_int(5)
local t = now_ms()
if not fenced_ok(P, inc, t) then return lease_lost() end

local stats, budget, remaining = new_stats(), batch, 0
local stale = '(' .. fmt(epoch)
for _, A in ipairs(redis.call('SMEMBERS', P .. ':node:' .. inc .. ':apps')) do
    local K = app_key(P, A)
    local nc = K .. ':nc:' .. inc
    if budget > 0 then
        local count_events = app_count_events(K)
        for _, c in ipairs(redis.call('ZRANGEBYSCORE', nc, '-inf', stale, 'LIMIT', '0', fmt(budget))) do
            local ctx = new_ctx(P, A, c, inc, t, hold_ms)
            ctx.count_events = count_events
            zero_node_channel(ctx, stats)
            budget = budget - 1
        end
    end
    remaining = remaining + redis.call('ZCOUNT', nc, '-inf', stale)
end
return {0, remaining, stats.channels, stats.vacated, stats.removed, stats.counts}
