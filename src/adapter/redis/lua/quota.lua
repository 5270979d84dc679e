-- quota.lua - an app's connection slots across the cluster (max_connections):
-- each node's count under its incarnation. Contract: scripts.h HD_RS_QUOTA.

local P, inc, A, op = arg_name(1), arg_name(2), arg_name(3), arg_str(4)
local max, n = arg_int(5), arg_int(6)
if op ~= 'take' and op ~= 'release' and op ~= 'set' then bad_arg(4, 'must be take, release or set') end
if not fenced_ok(P, inc, now_ms()) then return lease_lost() end

local conns = app_key(P, A) .. ':conns'
local mine = tonumber(redis.call('HGET', conns, inc)) or 0
local target
if op == 'take' then
    if max > 0 then
        local sum = 0
        for _, v in ipairs(redis.call('HVALS', conns)) do sum = sum + (tonumber(v) or 0) end
        if sum >= max then return 2 end
    end
    target = mine + 1
elseif op == 'release' then
    target = mine - 1
    if target < 0 then
        target = 0
        redis.call('INCR', P .. ':inconsistent')
    end
else
    target = n
end
if target > 0 then
    redis.call('HSET', conns, inc, fmt(target))
    redis.call('SADD', P .. ':node:' .. inc .. ':apps', A)
else
    redis.call('HDEL', conns, inc)
end
return 0
