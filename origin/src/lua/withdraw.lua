-- Withdraw one order that its replicas did not confirm in time (the origin answers `busy` for it):
-- the unit returns to stock, the uid is free again and no trace of the order is left, so "busy means
-- nothing was committed" stays true. Only a pending order of that uid is touched.
-- KEYS: 1 sale hash, 2 orders hash, 3 uid -> held order ids, 4 uid -> order history, 5 pending zset
-- ARGV: 1 order id, 2 uid
-- Returns 1 when withdrawn, 0 when there was nothing to withdraw.
local id, uid = ARGV[1], ARGV[2]
local rec = redis.call('HGET', KEYS[2], id)
if not rec then return 0 end
local owner, state = string.match(rec, '^(%S+) (%S+) ')
if owner ~= uid or state ~= 'pending' then return 0 end
local function without(key)
  local list = redis.call('HGET', key, uid)
  if not list then return end
  local rest = {}
  for o in string.gmatch(list, '[^ ]+') do
    if o ~= id then table.insert(rest, o) end
  end
  if #rest == 0 then redis.call('HDEL', key, uid) else redis.call('HSET', key, uid, table.concat(rest, ' ')) end
end
redis.call('HDEL', KEYS[2], id)
without(KEYS[3])
without(KEYS[4])
redis.call('ZREM', KEYS[5], id)
redis.call('HINCRBY', KEYS[1], 'stock_left', 1)
redis.call('HINCRBY', KEYS[1], 'sold', -1)
if redis.call('HGET', KEYS[1], 'flag_auto') == '1' then
  redis.call('HSET', KEYS[1], 'flag_auto', '0')
end
redis.call('HINCRBY', KEYS[1], 'version', 1)
return 1
