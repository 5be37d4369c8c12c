-- fold-log: replace an ended run's chunk log with its folded form (see message-log.ts), and keep the
-- chunk lines for the replay window in a key that expires by itself when the window closes.
-- KEYS[1] the run hash   KEYS[2] the run's message log   KEYS[3] its chunk copy
-- KEYS[4] the set of ended runs whose log is not folded yet
-- ARGV[1] run id   ARGV[2] byte length of the chunk log that was folded (it must still be that one)
-- ARGV[3] the folded log   ARGV[4] the chunk copy, or '' (the folded form is exact)
-- ARGV[5] how long the chunk copy is kept (ms; 0 or less: not kept)
-- Returns 1 when the fold was written, 0 when there was nothing to fold: the run is gone (deleted or
-- removed by retention meanwhile: nothing is written back), or its log is folded already.
redis.call('ZREM', KEYS[4], ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if not string.match(redis.call('GETRANGE', KEYS[2], 0, 0), '^%d') then return 0 end
if redis.call('STRLEN', KEYS[2]) ~= tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[2], ARGV[3])
if ARGV[4] ~= '' and tonumber(ARGV[5]) > 0 then redis.call('SET', KEYS[3], ARGV[4], 'PX', ARGV[5]) end
return 1
