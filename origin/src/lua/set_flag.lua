-- The SRE's sold-out switch. Lowering it does not lower a stock-driven flag: a sku with no stock
-- left stays sold out until an unpaid order expires.
-- KEYS: 1 sale hash   ARGV: 1 '1' to raise, '0' to lower
-- Returns 1, or 0 for an unknown sku
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HGET', KEYS[1], 'flag_manual') ~= ARGV[1] then
  redis.call('HSET', KEYS[1], 'flag_manual', ARGV[1])
  redis.call('HINCRBY', KEYS[1], 'version', 1)
end
return 1
