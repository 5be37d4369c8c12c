-- record-callback-attempt: write one delivery attempt on the run (callback_sent_at, status code,
-- error, state, attempts made), append it to the capped delivery log, take the run out of the callback
-- outbox, and keep the per-state callback counts (runs whose callback is delivered / retrying / given
-- up) in step, so monitoring reads them without a scan. The log is one string of JSON lines: a short
-- string costs Redis far less than a list.
-- KEYS[1] the run hash   KEYS[2] the run's delivery log   KEYS[3] the callback counts hash
-- KEYS[4] the callback outbox
-- ARGV[1] sent at (epoch µs)   ARGV[2] status code or ''   ARGV[3] error or ''   ARGV[4] new state
-- ARGV[5] the attempt as JSON   ARGV[6] how many attempts the log keeps   ARGV[7] the run id
-- Returns the number of attempts made so far, or 0 when the run is gone.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local old = redis.call('HGET', KEYS[1], 'callback_state')
redis.call('HSET', KEYS[1], 'callback_sent_us', ARGV[1], 'callback_state', ARGV[4])
if ARGV[2] == '' then redis.call('HDEL', KEYS[1], 'callback_status_code')
else redis.call('HSET', KEYS[1], 'callback_status_code', ARGV[2]) end
if ARGV[3] == '' then redis.call('HDEL', KEYS[1], 'callback_error')
else redis.call('HSET', KEYS[1], 'callback_error', ARGV[3]) end
local made = redis.call('HINCRBY', KEYS[1], 'callback_attempts', 1)
redis.call('ZREM', KEYS[4], ARGV[7])
redis.call('APPEND', KEYS[2], ARGV[5] .. '\n')
local cap = tonumber(ARGV[6])
if made > cap then
  -- Past the cap, keep the last `cap` lines.
  local lines = {}
  for line in string.gmatch(redis.call('GET', KEYS[2]), '[^\n]+') do lines[#lines + 1] = line end
  local keep = {}
  for i = math.max(1, #lines - cap + 1), #lines do keep[#keep + 1] = lines[i] end
  redis.call('SET', KEYS[2], table.concat(keep, '\n') .. '\n')
end
if old ~= ARGV[4] then
  if old then redis.call('HINCRBY', KEYS[3], old, -1) end
  redis.call('HINCRBY', KEYS[3], ARGV[4], 1)
end
-- The given-up index holds a run while its callback stays given up (a later attempt that is delivered
-- or retrying, e.g. a recovery's, takes it out); delete-run.lua removes it with the run. Its key sits
-- beside the counts (`<prefix>:cb:counts` -> `<prefix>:cb:given_up`, same hash tag), as delete-run.lua
-- names the outbox from the prefix.
local given_up = string.sub(KEYS[3], 1, #KEYS[3] - #':cb:counts') .. ':cb:given_up'
if ARGV[4] == 'given_up' then redis.call('ZADD', given_up, int_str(math.floor(tonumber(ARGV[1]) / 1000)), ARGV[7])
elseif old == 'given_up' then redis.call('ZREM', given_up, ARGV[7]) end
return made
