-- renew.lua - extend this incarnation's lease; an expired lease is never
-- renewed, so a renewal cannot race a reaper. Contract: scripts.h HD_RS_RENEW.

local P, inc, lease_ms = arg_name(1), arg_name(2), arg_int(3)
local t = now_ms()
if not fenced_ok(P, inc, t) then return lease_lost() end
redis.call('ZADD', P .. ':nodes', 'XX', fmt(t + lease_ms), inc)
return t
