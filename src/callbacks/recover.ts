import { randomUUID } from 'node:crypto';
import type { Job, Queue } from 'bullmq';
import { z } from 'zod';
import { microsToIso, nowMicros } from '../clock.ts';
import type { Config } from '../config.ts';
import { InvalidInputError, NotFoundError } from '../errors.ts';
import type { RedisClient } from '../queue/connection.ts';
import { callbackJobId, type CallbackJobData } from '../queue/queues.ts';
import type { RunKeys } from '../runs/keys.ts';
import { callbackJobOptions } from './dispatch.ts';

/**
 * Callback recovery (CONTRACT section 10): every callback given up in a time window is sent again, with
 * the webhook-id it had (`msg_<run id>`), so a receiver that was down gets what it missed and drops what
 * it already had. It runs as a job on the callbacks queue, in the shape of a bulk operation
 * ({id, action, status, matched, done, failed}); the runs to recover are taken from the given-up index
 * once, when it is asked for, and walked in pages with the position kept beside the counts, so a worker
 * that dies mid-way resumes where it stopped and never sends a run's callback twice for one operation
 * (each run's delivery job has an id made of the run's and the operation's).
 */

export const RECOVER_JOB = 'recover';
export const RECOVERY_ID_PATTERN = /^recover-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

const Time = z.iso.datetime({ offset: true });

export const RecoverRequest = z
  .object({
    since: Time.describe('Callbacks given up at or after this time'),
    until: Time.optional().describe('…and at or before this time (default: now)'),
    agent_id: z.string().min(1).max(256).optional().describe("Only this agent's runs"),
  })
  .strict();
export type RecoverRequest = z.infer<typeof RecoverRequest>;

export const CallbackRecovery = z
  .object({
    id: z.string(),
    action: z.literal('recover'),
    status: z.enum(['running', 'done', 'failed']),
    /** Runs found given up in the window (and of the agent, when one was named), so far. */
    matched: z.number().int().nonnegative(),
    /** Of those, callbacks sent again (a delivery job added), or no longer given up by the time it looked. */
    done: z.number().int().nonnegative(),
    /** Of those, runs it could not act on (deleted, or without a callback_url, since). */
    failed: z.number().int().nonnegative(),
    since: z.string(),
    until: z.string(),
    agent_id: z.string().nullable(),
    created_at: z.string(),
    completed_at: z.string().nullable(),
    error: z.string().nullable(),
  })
  .meta({ id: 'CallbackRecovery' });
export type CallbackRecovery = z.infer<typeof CallbackRecovery>;

/** Runs looked at per step; the position and counts are written after each. */
const PAGE = 200;
/** An operation and its snapshot are kept this long after they were asked for. */
const KEEP_S = 7 * 86_400;

export interface RecoveryDeps {
  config: Config;
  redis: RedisClient;
  keys: RunKeys;
  queue: Queue<CallbackJobData, void, string>;
}

/** Starts a recovery: the window's given-up runs are set aside now, and the job that sends them is added. */
export async function startRecovery(deps: RecoveryDeps, req: RecoverRequest, nowMs = Date.now()): Promise<CallbackRecovery> {
  const sinceMs = Date.parse(req.since);
  const untilMs = req.until ? Date.parse(req.until) : nowMs;
  if (untilMs < sinceMs) throw new InvalidInputError('until is before since', { since: req.since, until: req.until });
  const id = `recover-${randomUUID()}`;
  const { redis, keys } = deps;
  const op = keys.callbackRecovery(id);
  const ids = keys.callbackRecoveryIds(id);
  // One MULTI: the snapshot and the operation appear together (the job finds both, or was never added).
  await redis
    .multi()
    .zrangestore(ids, keys.callbackGivenUp, sinceMs, untilMs, 'BYSCORE')
    .hset(op, {
      id,
      status: 'running',
      since: new Date(sinceMs).toISOString(),
      until: new Date(untilMs).toISOString(),
      agent_id: req.agent_id ?? '',
      created_us: nowMicros(),
      pos: 0,
      matched: 0,
      done: 0,
      failed: 0,
    })
    .expire(ids, KEEP_S)
    .expire(op, KEEP_S)
    .exec();
  await deps.queue.add(
    RECOVER_JOB,
    { run_id: '', recovery: id },
    { jobId: id, attempts: 5, backoff: { type: 'fixed', delay: 1_000 }, removeOnComplete: { age: 3_600 }, removeOnFail: { age: KEEP_S } },
  );
  return (await getRecovery(deps, id))!;
}

export async function getRecovery({ redis, keys }: Pick<RecoveryDeps, 'redis' | 'keys'>, id: string): Promise<CallbackRecovery | null> {
  if (!RECOVERY_ID_PATTERN.test(id)) return null;
  const h = await redis.hgetall(keys.callbackRecovery(id));
  if (h.id === undefined) return null;
  return {
    id,
    action: 'recover',
    status: h.status as CallbackRecovery['status'],
    matched: Number(h.matched ?? 0),
    done: Number(h.done ?? 0),
    failed: Number(h.failed ?? 0),
    since: h.since!,
    until: h.until!,
    agent_id: h.agent_id || null,
    created_at: microsToIso(Number(h.created_us)),
    completed_at: h.completed_us ? microsToIso(Number(h.completed_us)) : null,
    error: h.error ?? null,
  };
}

export async function requireRecovery(deps: Pick<RecoveryDeps, 'redis' | 'keys'>, id: string): Promise<CallbackRecovery> {
  const r = await getRecovery(deps, id);
  if (!r) throw new NotFoundError(`callback recovery ${id} not found`, { id });
  return r;
}

/** The `recover` job: walks the operation's snapshot from where it stopped. */
export async function runRecovery(deps: RecoveryDeps, id: string, job?: Job): Promise<void> {
  const { config, redis, keys, queue } = deps;
  const op = keys.callbackRecovery(id);
  const [status, posRaw, agentId] = await redis.hmget(op, 'status', 'pos', 'agent_id');
  if (status !== 'running') return;
  const suffix = id; // `recover-<uuid>`: one delivery job per run and operation
  for (let pos = Number(posRaw ?? 0); ; ) {
    const ids = await redis.zrange(keys.callbackRecoveryIds(id), pos, pos + PAGE - 1);
    if (ids.length === 0) break;
    // Sent back to back (one round trip), not as a pipeline object (see CallbackWorker#load).
    const rows = await Promise.all(ids.map((runId) => redis.hmget(keys.run(runId), 'agent_id', 'callback_state', 'callback_url')));
    const send: string[] = [];
    let matched = 0;
    let done = 0;
    let failed = 0;
    rows.forEach(([agent, state, url], i) => {
      if (agentId && agent !== agentId) return; // another agent's (a deleted run's agent is unknown: skipped)
      matched++;
      if (agent === null || !url) failed++;
      else if (state !== 'given_up') done++; // delivered or being retried since: nothing to recover
      else send.push(ids[i]!);
    });
    if (send.length > 0) {
      await queue.addBulk(
        send.map((runId) => ({
          name: 'deliver',
          data: { run_id: runId, manual: true },
          opts: callbackJobOptions(config, runId, { jobId: `${callbackJobId(runId)}-${suffix}` }),
        })),
      );
    }
    done += send.length;
    pos += ids.length;
    // The position moves with the counts: a crash before this redoes the page, whose jobs exist already.
    await redis.multi().hincrby(op, 'matched', matched).hincrby(op, 'done', done).hincrby(op, 'failed', failed).hset(op, 'pos', pos).exec();
    await job?.updateProgress({ pos }).catch(() => undefined);
  }
  await redis.hset(op, 'status', 'done', 'completed_us', nowMicros());
}

/** The recover job ran out of attempts: the operation says so (it keeps its counts so far). */
export async function failRecovery(redis: RedisClient, keys: RunKeys, id: string, error: string): Promise<void> {
  await redis.hset(keys.callbackRecovery(id), 'status', 'failed', 'error', error.slice(0, 500), 'completed_us', nowMicros());
}
