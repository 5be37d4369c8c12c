-- reconcile-check: of a batch of runs, the ones whose job may disagree with them, read in one step.
-- A run that is terminal or gone, or whose job exists and has not finished (waiting, delayed,
-- prioritized, active, paused: BullMQ will move it), needs nothing and is not returned; that is the
-- common case, answered here without a reply per run. So is a run that flow control holds (its `flow`
-- is conv or limit): it has no job until it is admitted, by design.
-- KEYS[1] the runs queue's completed set   KEYS[2] the runs queue's failed set
-- ARGV[1] run hash key prefix (`<prefix>:run:`)   ARGV[2] job hash key prefix (`<prefix>:runs:`)
-- ARGV[3..] run ids
-- Returns a flat list of {id, status, created_us, attempt, job, detail, job_attempt} for the others:
-- attempt is the run's (the attempt that started it), job is `missing`, `completed` (detail: the job's
-- returnvalue) or `failed` (detail: its failedReason), job_attempt the job's attempts started (`ats`).
local out = {}
for i = 3, #ARGV do
  local id = ARGV[i]
  local run = redis.call('HMGET', ARGV[1] .. id, 'status', 'created_us', 'attempt', 'flow')
  local status = run[1]
  local held = run[4] == 'conv' or run[4] == 'limit'
  if (status == 'created' and not held) or status == 'running' then
    local job_key = ARGV[2] .. id
    local job, field
    if redis.call('EXISTS', job_key) == 0 then
      job = 'missing'
    elseif redis.call('ZSCORE', KEYS[1], id) then
      job, field = 'completed', 'returnvalue'
    elseif redis.call('ZSCORE', KEYS[2], id) then
      job, field = 'failed', 'failedReason'
    end
    local detail, job_attempt = '', ''
    if field then
      local j = redis.call('HMGET', job_key, field, 'ats')
      detail, job_attempt = j[1] or '', j[2] or ''
    end
    if job then
      out[#out + 1] = id
      out[#out + 1] = status
      out[#out + 1] = run[2] or '0'
      out[#out + 1] = run[3] or ''
      out[#out + 1] = job
      out[#out + 1] = detail
      out[#out + 1] = job_attempt
    end
  end
end
return out
