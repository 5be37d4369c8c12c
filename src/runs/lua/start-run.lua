-- start-run: a worker begins an attempt. `created` becomes `running`; a run that is `running` already
-- was abandoned by an earlier attempt (stalled worker), so its messages, steps and ttft are reset for this one.
-- KEYS[1] the run hash   KEYS[2] the run's message stream
-- Attempts only move forward: a start of an older attempt than the one that holds the run (a worker that
-- was paused past its lock while BullMQ handed the job to another) is refused, so it never takes the
-- run back from the newer one; the same attempt starting again changes nothing.
-- ARGV[1] key prefix   ARGV[2] run id   ARGV[3] now (epoch µs)   ARGV[4] attempt number
-- Returns {1, fields...} to go on, {0, status} when the run is terminal (skip it), {-1} when missing,
-- {-2, current attempt} when this attempt is older than the current one, {-3} when flow control still
-- holds the run (a job that should not exist: it never starts it out of its conversation's order).
local cur = redis.call('HMGET', KEYS[1], 'status', 'attempt', 'flow')
local status = cur[1]
if not status then return { -1 } end
if TERMINAL[status] then return { 0, status } end
if cur[3] == 'conv' or cur[3] == 'limit' then return { -3 } end
local p, id = ARGV[1], ARGV[2]
local held = tonumber(cur[2] or '0')
if status == 'running' and held > tonumber(ARGV[4]) then return { -2, held } end
if status == 'running' and held == tonumber(ARGV[4]) then
  -- The same attempt again (a retried call): nothing to reset.
elseif status == 'created' then
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
