-- Expire unpaid orders whose payment deadline passed: each returns its unit to stock and frees
-- its uid; a stock-driven sold-out flag is lowered. An SRE's manual flag is left alone.
-- KEYS: 1 sale hash, 2 orders hash, 3 uid -> held order ids, 4 pending zset
-- ARGV: 1 batch size
-- Returns {expired, examined}
if redis.call('EXISTS', KEYS[1]) == 0 then return {0, 0} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ids = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
local n = 0
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[4], id)
  local rec = redis.call('HGET', KEYS[2], id)
  if rec then
    local uid, state, created, deadline = string.match(rec, '^(%S+) (%S+) (%S+) (%S+)$')
    if state == 'pending' then
      redis.call('HSET', KEYS[2], id, uid .. ' expired ' .. created .. ' ' .. deadline)
      local held = redis.call('HGET', KEYS[3], uid)
      if held then
        local rest = {}
        for o in string.gmatch(held, '[^ ]+') do
          if o ~= id then table.insert(rest, o) end
        end
        if #rest == 0 then redis.call('HDEL', KEYS[3], uid)
        else redis.call('HSET', KEYS[3], uid, table.concat(rest, ' ')) end
      end
      redis.call('HINCRBY', KEYS[1], 'stock_left', 1)
      redis.call('HINCRBY', KEYS[1], 'sold', -1)
      n = n + 1
    end
  end
end
if n > 0 and redis.call('HGET', KEYS[1], 'flag_auto') == '1' then
  redis.call('HSET', KEYS[1], 'flag_auto', '0')
  redis.call('HINCRBY', KEYS[1], 'version', 1)
end
return {n, #ids}
