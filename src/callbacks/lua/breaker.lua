-- breaker: the health of one receiver host, shared by every callback worker (CONTRACT section 10).
-- A host is `ok` until RUNHOOK_CALLBACK_BREAKER_FAILURES consecutive failures; then `open`: deliveries
-- to it wait, and once its next probe time has come one delivery at a time (the probe, holding a lease)
-- goes through as `half_open`. A probe that gets an answer closes the breaker; one that fails opens it
-- again for twice as long (up to a maximum). A host with no failure has no hash at all.
-- KEYS[1] the host's hash   KEYS[2] the hosts sorted set (host -> last change, epoch ms)
-- ARGV[1] op: acquire | answered | failed   ARGV[2] host   ARGV[3] now (epoch ms)
-- ARGV[4] failures that open the breaker   ARGV[5] first open period (ms)   ARGV[6] longest open period (ms)
-- ARGV[7] probe lease (ms)   ARGV[8] the caller's token (names a probe)   ARGV[9] key prefix of host hashes
-- ARGV[10] hosts kept in the sorted set
-- acquire returns {'go'|'probe'|'wait', consecutive failures, wait until (ms) or 0}
-- answered/failed return {state, consecutive failures, next probe (ms) or 0}
local op, host, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local h = redis.call('HMGET', KEYS[1], 'state', 'failures', 'next_probe', 'lease_until', 'lease_token', 'open_ms')
local state, failures = h[1] or 'ok', tonumber(h[2] or '0')
local next_probe, lease_until = tonumber(h[3] or '0'), tonumber(h[4] or '0')

if op == 'acquire' then
  if state == 'ok' then return {'go', failures, 0} end
  -- A probe in flight: everyone else waits for its answer (or for its lease to lapse, if its worker
  -- died), looking again after at most the first open period, so an answer is not followed by a lull.
  if lease_until > now then return {'wait', failures, math.min(lease_until, now + tonumber(ARGV[5]))} end
  if state == 'open' and next_probe > now then return {'wait', failures, next_probe} end
  redis.call('HSET', KEYS[1], 'state', 'half_open', 'lease_until', now + tonumber(ARGV[7]), 'lease_token', ARGV[8])
  redis.call('ZADD', KEYS[2], now, host)
  return {'probe', failures, 0}
end

if op == 'answered' then
  if h[1] == false then return {'ok', 0, 0} end
  if state ~= 'ok' or failures > 0 then
    redis.call('HSET', KEYS[1], 'state', 'ok', 'failures', 0)
    redis.call('HDEL', KEYS[1], 'next_probe', 'lease_until', 'lease_token', 'open_ms')
    redis.call('ZADD', KEYS[2], now, host)
  end
  return {'ok', 0, 0}
end

-- failed
failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
redis.call('HSET', KEYS[1], 'host', host)
if state == 'ok' then
  if failures >= tonumber(ARGV[4]) then
    state, next_probe = 'open', now + tonumber(ARGV[5])
    redis.call('HSET', KEYS[1], 'state', state, 'next_probe', next_probe, 'open_ms', ARGV[5])
  else
    redis.call('HSET', KEYS[1], 'state', 'ok')
  end
elseif state == 'half_open' and h[5] == ARGV[8] then
  -- The probe failed: open again, for twice as long as last time.
  local open_ms = math.min(tonumber(h[6] or ARGV[5]) * 2, tonumber(ARGV[6]))
  state, next_probe = 'open', now + open_ms
  redis.call('HSET', KEYS[1], 'state', state, 'next_probe', next_probe, 'open_ms', open_ms)
  redis.call('HDEL', KEYS[1], 'lease_until', 'lease_token')
end
-- (Any other failure is a delivery that started before the breaker opened: counted, nothing more.)
redis.call('ZADD', KEYS[2], now, host)
-- Bounded: past the cap, the host changed longest ago is forgotten with its hash.
if redis.call('ZCARD', KEYS[2]) > tonumber(ARGV[10]) then
  local old = redis.call('ZPOPMIN', KEYS[2])
  if old[1] then redis.call('DEL', ARGV[9] .. old[1]) end
end
return {state, failures, state == 'ok' and 0 or next_probe}
