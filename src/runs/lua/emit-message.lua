-- emit-message: append messages of the current attempt to the run's stream, with the next sequence
-- numbers, and write the steps it recorded since; the first message of an attempt sets ttft_ns.
-- Messages and steps of an abandoned or ended attempt are refused, so they never mix with the live one.
-- KEYS[1] the run hash   KEYS[2] the run's message stream
-- ARGV[1] attempt number   ARGV[2] when the first of them was emitted (epoch µs)
-- ARGV[3] steps ('' or [field, value, ...] in JSON)   ARGV[4..] message JSONs
-- Returns the first message's sequence number (-1 when there were only steps), or 0 when the run no
-- longer takes writes from this attempt.
local r = redis.call('HMGET', KEYS[1], 'status', 'attempt', 'ttft_ns', 'created_us')
if r[1] ~= 'running' or r[2] ~= ARGV[1] then return 0 end
write_steps(KEYS[1], ARGV[3])
if #ARGV < 4 then return -1 end
return append_messages(KEYS[1], KEYS[2], ARGV, 4, #ARGV, ARGV[2], r[3], r[4])
