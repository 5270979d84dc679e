-- expired.lua - incarnations whose lease has ended (reap targets).
-- Contract: scripts.h HD_RS_EXPIRED.

local P, limit = arg_name(1), arg_int(2)
local t = now_ms()
return redis.call('ZRANGEBYSCORE', P .. ':nodes', '-inf', '(' .. fmt(t), 'LIMIT', '0', fmt(limit))
