-- start-run: a worker begins an attempt. `created` becomes `running`; a run that is `running` already
-- was abandoned by an earlier attempt (stalled worker), so its messages, steps and ttft are reset for this one.
-- KEYS[1] the run hash   KEYS[2] the run's message stream
-- ARGV[1] key prefix   ARGV[2] run id   ARGV[3] now (epoch µs)   ARGV[4] attempt number
-- Returns {1, fields...} to go on, {0, status} when the run is terminal (skip it), {-1} when missing.
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return { -1 } end
if TERMINAL[status] then return { 0, status } end
local p, id = ARGV[1], ARGV[2]
if status == 'created' then
  local seq = redis.call('HGET', KEYS[1], 'seq')
  redis.call('ZREM', p .. ':idx:status:created', id)
  redis.call('ZADD', p .. ':idx:status:running', seq, id)
  redis.call('HSET', KEYS[1], 'status', 'running', 'started_us', ARGV[3])
else
  redis.call('DEL', KEYS[2])
  redis.call('HDEL', KEYS[1], 'ttft_ns', 'usage')
  reset_steps(KEYS[1])
end
redis.call('HSET', KEYS[1], 'attempt', ARGV[4])
local out = redis.call('HGETALL', KEYS[1])
table.insert(out, 1, 1)
return out
