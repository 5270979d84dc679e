-- register.lua - claim this incarnation's lease and node number; detect a
-- Redis that lost its data (P:gen missing). Contract: scripts.h HD_RS_REGISTER.

local P, inc, num = arg_name(1), arg_name(2), arg_name(3)
local lease_ms, gen_candidate, owner = arg_int(4), arg_name(5), arg_name(6)
local host, pid, started_ms, version = arg_str(7), arg_str(8), arg_str(9), arg_str(10)
if not starts(inc, num .. '-') then bad_arg(2, 'must be <num>-<k>') end

local t = now_ms()
local gen, rebuild = redis.call('GET', P .. ':gen'), 0
if not gen then
    gen, rebuild = gen_candidate, 1
    redis.call('SET', P .. ':gen', gen)
end

local score = tonumber(redis.call('ZSCORE', P .. ':nodes', inc))
if score and score < t then return lease_lost() end
local fresh = score and 0 or 1

local holder = redis.call('GET', P .. ':num:' .. num)
if holder and holder ~= inc then
    local holder_owner = redis.call('HGET', P .. ':node:' .. holder, 'owner')
    if holder_owner and holder_owner ~= owner then
        return redis.error_reply('NUM_TAKEN node number ' .. num .. ' is held by another process')
    end
end

redis.call('SET', P .. ':num:' .. num, inc)
redis.call('ZADD', P .. ':nodes', fmt(t + lease_ms), inc)
local node = P .. ':node:' .. inc
redis.call('HSET', node, 'num', num, 'host', host, 'pid', pid, 'started_ms', started_ms, 'version', version,
           'owner', owner)
if fresh == 1 then redis.call('HSET', node, 'epoch', '1') end
return {0, gen, rebuild, t, fresh}
