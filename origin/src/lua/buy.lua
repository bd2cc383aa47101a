-- One attempt to buy one unit of a sku, atomically.
-- KEYS: 1 sale hash, 2 orders hash, 3 uid -> held order ids, 4 uid -> order history, 5 pending zset
-- ARGV: 1 sku, 2 uid, 3 fence_ms (the origin stops waiting after this; 0 = no fence)
-- Returns {outcome, ...}: {'won', id} {'already_won', id} {'sold_out'} {'not_started', starts, ends}
--   {'ended', starts, ends} {'unknown_sku'} {'busy', 'late'}
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local fence = tonumber(ARGV[3])
-- The origin has (or is about to have) answered `busy` to this attempt: commit nothing.
if fence > 0 and now > fence then return {'busy', 'late'} end
local s = redis.call('HMGET', KEYS[1], 'starts_at', 'ends_at', 'flag_manual', 'flag_auto', 'stock_left',
  'per_user_limit', 'pay_within_s', 'batches', 'flag_auto_until')
if not s[1] then return {'unknown_sku'} end
if now < tonumber(s[1]) then return {'not_started', s[1], s[2]} end
if now >= tonumber(s[2]) then return {'ended', s[1], s[2]} end
local uid = ARGV[2]
local held = redis.call('HGET', KEYS[3], uid)
local count, last = 0, nil
if held then
  for id in string.gmatch(held, '[^ ]+') do count = count + 1; last = id end
end
if count >= tonumber(s[6]) then return {'already_won', last} end
-- A sale released in batches: the units of batches not out yet are held back, and a stock-driven
-- flag raised during one batch holds only until the next one starts (`flag_auto_until`).
local held_back, next_at = 0, '0'
for at, stock in string.gmatch(s[8] or '', '(%d+):(%d+)') do
  if tonumber(at) > now then
    held_back = held_back + tonumber(stock)
    if next_at == '0' then next_at = at end
  end
end
local until_ms = tonumber(s[9] or '0') or 0
if s[3] == '1' or (s[4] == '1' and (until_ms == 0 or now < until_ms)) then return {'sold_out'} end
if tonumber(s[5]) - held_back <= 0 then
  redis.call('HSET', KEYS[1], 'flag_auto', '1', 'flag_auto_until', next_at)
  redis.call('HINCRBY', KEYS[1], 'version', 1)
  return {'sold_out'}
end
local left = redis.call('HINCRBY', KEYS[1], 'stock_left', -1)
redis.call('HINCRBY', KEYS[1], 'sold', 1)
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
local id = ARGV[1] .. '.' .. seq
local deadline = now + tonumber(s[7]) * 1000
redis.call('HSET', KEYS[2], id, uid .. ' pending ' .. now .. ' ' .. deadline)
if held then redis.call('HSET', KEYS[3], uid, held .. ' ' .. id) else redis.call('HSET', KEYS[3], uid, id) end
local hist = redis.call('HGET', KEYS[4], uid)
if hist then redis.call('HSET', KEYS[4], uid, hist .. ' ' .. id) else redis.call('HSET', KEYS[4], uid, id) end
redis.call('ZADD', KEYS[5], deadline, id)
if left - held_back == 0 then
  -- Stock-driven flag: lowered again when an unpaid order expires, or by the next batch's start.
  redis.call('HSET', KEYS[1], 'flag_auto', '1', 'flag_auto_until', next_at)
  redis.call('HINCRBY', KEYS[1], 'version', 1)
end
return {'won', id}
