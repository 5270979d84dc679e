-- resync_begin.lua - start a re-assertion: a new epoch for this
-- incarnation's entries (sweep removes those not re-asserted).
-- Contract: scripts.h HD_RS_RESYNC_BEGIN.

local P, inc = arg_name(1), arg_name(2)
if not fenced_ok(P, inc, now_ms()) then return lease_lost() end
return redis.call('HINCRBY', P .. ':node:' .. inc, 'epoch', '1')
