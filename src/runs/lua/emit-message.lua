-- emit-message: append one message of the current attempt to the run's stream, with the next sequence
-- number; the first message of an attempt sets ttft_ns. Messages of an abandoned or ended attempt are
-- refused, so they never mix with the live one.
-- KEYS[1] the run hash   KEYS[2] the run's message stream
-- ARGV[1] attempt number   ARGV[2] now (epoch µs)   ARGV[3] message JSON
-- Returns the sequence number, or 0 when the run no longer takes messages from this attempt.
local r = redis.call('HMGET', KEYS[1], 'status', 'attempt', 'ttft_ns', 'created_us')
if r[1] ~= 'running' or r[2] ~= ARGV[1] then return 0 end
local seq = redis.call('HINCRBY', KEYS[1], 'msg_seq', 1)
redis.call('XADD', KEYS[2], seq .. '-0', 'm', ARGV[3])
if not r[3] then
  local ttft = (tonumber(ARGV[2]) - tonumber(r[4])) * 1000
  if ttft < 0 then ttft = 0 end
  redis.call('HSET', KEYS[1], 'ttft_ns', int_str(ttft))
end
return seq
