-- transition-run: move a run to another status, atomically, following the status machine. Terminal
-- statuses are final; completed_at and total_duration_ns are written once, when the run ends; an ended
-- run is scheduled for removal after the retention, queued for its callback, and its message stream is
-- closed with a stop entry. A user's RunUpdate (PATCH) is this same one step: its metadata is written
-- with the move (so the callback carries it), or alone when no status is asked; nothing is written when
-- any part is refused. A running run ended by anyone but its own attempt (PATCH, cancel, the reconciler)
-- is announced on the cancel channel, so the worker holding it aborts the processor's signal.
-- KEYS[1] the run hash   KEYS[2] the run's message stream   KEYS[3] the run's message log (a string)
-- ARGV[1] key prefix   ARGV[2] run id   ARGV[3] target status, or '' (a metadata-only update)
-- ARGV[4] now (epoch µs)   ARGV[5] stop reason or ''   ARGV[6] error message or ''   ARGV[7] retention (ms)
-- ARGV[8] attempt that asks, or '' for any   ARGV[9] usage JSON or ''
-- ARGV[10] completed_at given by the caller (epoch µs) or ''; never before created_at
-- ARGV[11] total_duration_ns override or ''
-- ARGV[12] how long the stream lingers after the end (ms), for readers blocked on it
-- ARGV[13] when the first of those messages was emitted (epoch µs; for ttft_ns) or ''
-- ARGV[14] metadata: '' keep, 'null' remove, or the JSON object to store
-- ARGV[15] '1' for a user's update: asking a terminal run for its own status with another stop reason is
--          illegal (it would silently change nothing)
-- ARGV[16] steps of the asking attempt ('' or [field, value, ...] in JSON; a running run only)
-- ARGV[17..] messages of the asking attempt still to append before the run ends (a running run only)
-- Returns {1, from, callback queued 0|1, total_duration_ns, ttft_ns or '', first appended seq, the run's
-- fields when a callback was queued (else {}), its message log (chunk lines to fold, or folded already), the runs flow
-- control admitted (id, agent id, priority, run_at µs each: what their jobs need)} moved,
-- {0, status} already there (or metadata only), {-1} missing, {-2, status} illegal, {-3, status} the
-- asking attempt is not the current one, {-4, status, created_us} completed_at is before created_at.
local p, id, to = ARGV[1], ARGV[2], ARGV[3]
local cur = redis.call('HMGET', KEYS[1], 'status', 'attempt', 'seq', 'created_us', 'callback_url', 'ttft_ns', 'stop_reason')
local from = cur[1]
if not from then return { -1 } end
local moving = to ~= '' and from ~= to
if moving and not MOVES[from][to] then return { -2, from } end
if not moving and to ~= '' and ARGV[15] == '1' and TERMINAL[to] and ARGV[5] ~= '' and ARGV[5] ~= cur[7] then
  return { -2, from }
end
if moving and ARGV[8] ~= '' and from == 'running' and cur[2] ~= ARGV[8] then return { -3, from } end
-- created_at is shown to the millisecond: a completed_at equal to it is not before it.
if moving and TERMINAL[to] and ARGV[10] ~= '' and tonumber(ARGV[10]) < math.floor(tonumber(cur[4]) / 1000) * 1000 then
  return { -4, from, cur[4] }
end
if ARGV[14] == 'null' then redis.call('HDEL', KEYS[1], 'metadata')
elseif ARGV[14] ~= '' then redis.call('HSET', KEYS[1], 'metadata', ARGV[14]) end
if not moving then return { 0, from } end
local seq = cur[3]
redis.call('ZREM', p .. ':idx:status:' .. from, id)
redis.call('ZADD', p .. ':idx:status:' .. to, seq, id)
redis.call('HSET', KEYS[1], 'status', to)
if to == 'running' then
  redis.call('HSETNX', KEYS[1], 'started_us', ARGV[4])
  return { 1, from }
end
if TERMINAL[to] then
  local done_us = ARGV[10] ~= '' and ARGV[10] or ARGV[4]
  redis.call('HSETNX', KEYS[1], 'completed_us', done_us)
  local total = ARGV[11]
  if total == '' then
    total = int_str(math.max(0, (tonumber(done_us) - tonumber(cur[4])) * 1000))
  end
  redis.call('HSETNX', KEYS[1], 'total_duration_ns', total)
  if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'stop_reason', ARGV[5]) end
  if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'error', ARGV[6]) end
  if ARGV[9] ~= '' then redis.call('HSET', KEYS[1], 'usage', ARGV[9]) end
  -- Retention counts from the server's clock: a caller's completed_at never decides when a run is removed.
  redis.call('ZADD', p .. ':expiry', math.floor(tonumber(ARGV[4]) / 1000) + tonumber(ARGV[7]), id)
  local first = 0
  if from == 'running' then
    write_steps(KEYS[1], ARGV[16])
    first = append_messages(KEYS[1], KEYS[2], ARGV, 17, #ARGV, ARGV[13], cur[6], cur[4])
  end
  local mseq = redis.call('HINCRBY', KEYS[1], 'msg_seq', 1)
  redis.call('XADD', KEYS[2], mseq .. '-0', 's', ARGV[5])
  -- Compact the stream into the message log; the stream stays a little while so that readers blocked
  -- on it wake up with the stop entry, then expires.
  local entries = redis.call('XRANGE', KEYS[2], '-', '+')
  local lines = {}
  for _, e in ipairs(entries) do
    lines[#lines + 1] = string.match(e[1], '^(%d+)') .. '\t' .. e[2][1] .. '\t' .. e[2][2]
  end
  -- One string of lines (JSON never holds a raw newline): smaller in Redis than a list. When every
  -- message was one chunk (its own id and type, both strings: a short answer, a cancel with none), these
  -- lines are the folded log already (message-log.ts), and only get its header; the stream stays exact.
  -- Otherwise the caller folds them at once (fold-log.lua); should it not get there, the maintenance pass
  -- folds what the unfolded set still names. Until then the log reads as every release before folding wrote it.
  local exact, seen, first_seq = true, {}, 0
  for _, e in ipairs(entries) do
    if e[2][1] == 'm' then
      local ok, m = pcall(cjson.decode, e[2][2])
      local key = ok and type(m) == 'table' and type(m.id) == 'string' and type(m.message_type) == 'string' and (m.id .. '\0' .. m.message_type)
      if not key or seen[key] then
        exact = false
        break
      end
      seen[key] = true
      if first_seq == 0 then first_seq = string.match(e[1], '^(%d+)') end
    end
  end
  local log = table.concat(lines, '\n')
  if exact then
    log = 'F1 ' .. first_seq .. ' 1\n' .. log
  else
    redis.call('ZADD', p .. ':mlog:unfolded', math.floor(tonumber(ARGV[4]) / 1000), id)
  end
  redis.call('SET', KEYS[3], log)
  redis.call('PEXPIRE', KEYS[2], ARGV[12])
  -- Whoever ended it, the worker that holds a running run must stop it (its own attempt knows already).
  if from == 'running' and ARGV[8] == '' then redis.call('PUBLISH', p .. ':cancel', id) end
  local queued = 0
  if cur[5] then
    redis.call('ZADD', p .. ':cb:outbox', math.floor(tonumber(ARGV[4]) / 1000), id)
    queued = 1
  end
  -- Flow control's hand-over (flow/lua/flow.lua), in the step that ends the run: the next run of its
  -- conversation, or of its limit, is admitted now; the caller adds their jobs (returned last).
  local flow_ready = flow_release(p, id, math.floor(tonumber(ARGV[4]) / 1000))
  local timing = redis.call('HMGET', KEYS[1], 'total_duration_ns', 'ttft_ns')
  -- The log, for the caller to fold; and what the callback needs, so that its first attempt reads
  -- nothing: the run as it ended (when a callback was queued), and its messages.
  return { 1, from, queued, timing[1], timing[2] or '', first, queued == 1 and redis.call('HGETALL', KEYS[1]) or {}, log, flow_ready }
end
return { 1, from, 0 }
