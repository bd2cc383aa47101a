-- Create or reset a sale: load its stock before the start (pre-warm) and drop any earlier orders.
-- The order sequence is kept, so an order id is never reused for the same sku.
-- KEYS: 1 sale hash, 2 orders hash, 3 uid -> held order ids, 4 uid -> order history, 5 pending zset
-- ARGV: 1 stock, 2 starts_at, 3 ends_at, 4 per_user_limit, 5 pay_within_s, 6 challenge_bits,
--   7 batches (`at:stock,at:stock`, adding up to the stock; empty: all of it at the start)
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5])
local auto = '0'
if tonumber(ARGV[1]) == 0 then auto = '1' end
redis.call('HSET', KEYS[1], 'stock_total', ARGV[1], 'stock_left', ARGV[1], 'starts_at', ARGV[2],
  'ends_at', ARGV[3], 'per_user_limit', ARGV[4], 'pay_within_s', ARGV[5], 'flag_manual', '0',
  'flag_auto', auto, 'flag_auto_until', '0', 'sold', '0', 'paid', '0', 'challenge_bits', ARGV[6],
  'batches', ARGV[7] or '')
return redis.call('HINCRBY', KEYS[1], 'version', 1)
