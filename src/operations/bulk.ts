import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { microsToIso, nowMicros } from '../clock.ts';
import type { Config } from '../config.ts';
import { NotFoundError, RunhookError, RunNotFoundError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { RedisClient } from '../queue/connection.ts';
import type { Runhook } from '../runhook.ts';
import type { Run, RunListQuery, RunStatus } from '../runs/schema.ts';
import { replayIdFor, replayRun } from './replay.ts';
import { BULK_ID_PATTERN, type BulkAction, type BulkCreate, type BulkFilter, type BulkOperation, type BulkStatus } from './schema.ts';

export const BULK_QUEUE = 'bulk';

export interface BulkJobData {
  operation_id: string;
}

/** Runs read per page of the walk; also the size of one crash-safe step (see walk()). */
export const BULK_PAGE_SIZE = 100;
/** Actions in flight at once within a page. */
const BULK_PARALLEL = 16;
/** How long a finished operation stays readable. */
const BULK_KEEP_S = 7 * 86_400;

const ACTIVE: readonly RunStatus[] = ['created', 'running'];

/** Thrown by walk() when the worker is closing: the job goes back to the queue and resumes elsewhere. */
export class BulkInterrupted extends Error {}

/**
 * Where a bulk operation lives in Redis, under the deployment's hash tag (not `bulk:`, which is the
 * BullMQ queue's own: its job hashes are `bulk:<job id>`):
 *   bulkop:<id>          hash: action, filter, status, upto (newest run when it began), cursor, times, error
 *   bulkop:<id>:matched  set: every run id the walk has found matching, added with the cursor in one MULTI
 *                      *before* any of them is acted on
 *   bulkop:<id>:done     set: runs acted on      bulkop:<id>:failed  set: runs the action was refused for
 * Counts are the sets' sizes, so a run counted twice is impossible whatever a crash repeats.
 */
class BulkKeys {
  constructor(readonly prefix: string) {}
  op(id: string): string {
    return `${this.prefix}:bulkop:${id}`;
  }
  matched(id: string): string {
    return `${this.prefix}:bulkop:${id}:matched`;
  }
  done(id: string): string {
    return `${this.prefix}:bulkop:${id}:done`;
  }
  failed(id: string): string {
    return `${this.prefix}:bulkop:${id}:failed`;
  }
  all(id: string): string[] {
    return [this.op(id), this.matched(id), this.done(id), this.failed(id)];
  }
}

/**
 * Bulk operations: started by the API or the CLI (a hash, then a job on the `bulk` queue), walked by
 * whichever run-worker process takes the job (BulkWorker), read by anyone while it goes.
 *
 * Crash safety, the choice: every action is idempotent (cancelling a cancelled run leaves it as it is,
 * deleting a deleted run finds nothing, and a replay's new run has an id derived from the operation and
 * the original, so making it again returns the first one), and the walk writes its intent before it
 * acts: a page's matching ids go into `matched` together with the cursor past them, in one MULTI; each
 * run then joins `done` or `failed` once acted on. A resumed walk first finishes `matched − done −
 * failed` (what a crash interrupted), then goes on from the cursor. So no run is acted on twice with
 * effect, none that matched is skipped (a cancelled run no longer matches `status=created`, but it is in
 * `matched`), and the counts are set sizes, exact whatever is repeated.
 */
export class BulkOperations {
  readonly keys: BulkKeys;
  readonly queue: Queue<BulkJobData, void, string>;

  constructor(
    readonly runhook: Runhook,
    readonly log: Logger,
  ) {
    this.keys = new BulkKeys(runhook.config.keyPrefix);
    this.queue = new Queue<BulkJobData, void, string>(BULK_QUEUE, { connection: runhook.redis, prefix: runhook.config.keyPrefix });
  }

  get redis(): RedisClient {
    return this.runhook.redis;
  }

  get config(): Config {
    return this.runhook.config;
  }

  /**
   * Starts an operation: the newest run now bounds the walk (runs made later, the replays among them,
   * are not touched), then the job is added. A crash between the two leaves a `running` operation with
   * no job; starting it again is the remedy (the old one stays as it was).
   */
  async start({ action, filter }: BulkCreate): Promise<BulkOperation> {
    const id = `bulk-${randomUUID()}`;
    const [newest] = await this.runhook.store.list({ limit: 1, order: 'desc' });
    await this.redis.hset(this.keys.op(id), {
      id,
      action,
      filter: JSON.stringify(filter),
      status: 'running',
      created_us: String(nowMicros()),
      upto: newest?.id ?? '',
      cursor: '',
    });
    await this.queue.add('bulk', { operation_id: id }, {
      jobId: id,
      // Each attempt resumes where the last stopped; retries cover a Redis hiccup mid-walk.
      attempts: 5,
      backoff: { type: 'exponential', delay: 1_000 },
      removeOnComplete: { age: 86_400 },
      removeOnFail: { age: BULK_KEEP_S },
    });
    this.log.info({ operation_id: id, action, filter }, 'bulk operation started');
    return this.require(id);
  }

  async get(id: string): Promise<BulkOperation | null> {
    if (!BULK_ID_PATTERN.test(id)) return null;
    // Sent back to back: one round trip.
    const [h, matched, done, failed] = await Promise.all([
      this.redis.hgetall(this.keys.op(id)),
      this.redis.scard(this.keys.matched(id)),
      this.redis.scard(this.keys.done(id)),
      this.redis.scard(this.keys.failed(id)),
    ]);
    if (h.id === undefined) return null;
    return {
      id,
      action: h.action as BulkAction,
      filter: JSON.parse(h.filter!) as BulkFilter,
      status: h.status as BulkStatus,
      matched,
      done,
      failed,
      created_at: microsToIso(Number(h.created_us)),
      completed_at: h.completed_us ? microsToIso(Number(h.completed_us)) : null,
      error: h.error ?? null,
    };
  }

  async require(id: string): Promise<BulkOperation> {
    const op = await this.get(id);
    if (!op) throw new NotFoundError(`bulk operation ${id} not found`, { id });
    return op;
  }

  /** Marks an operation failed for good (its job will not run again). */
  async fail(id: string, error: string): Promise<void> {
    const key = this.keys.op(id);
    if ((await this.redis.hget(key, 'status')) !== 'running') return;
    await this.#finish(id, 'failed', error);
  }

  /**
   * Walks the operation to its end (see the class comment for why a crash at any point is safe).
   * `stopping()` is asked between steps: when it says yes, BulkInterrupted is thrown and the job is
   * handed back to the queue.
   */
  async walk(id: string, stopping: () => boolean = () => false): Promise<void> {
    const h = await this.redis.hgetall(this.keys.op(id));
    if (h.id === undefined) throw new NotFoundError(`bulk operation ${id} not found`, { id });
    if (h.status !== 'running') return;
    const action = h.action as BulkAction;
    const filter = JSON.parse(h.filter!) as BulkFilter;
    const log = this.log.child({ operation_id: id, action });
    const pace = new Pace(this.config.bulkRatePerSecond);

    // What an earlier attempt matched and did not finish.
    const pending = await this.redis.sdiff(this.keys.matched(id), this.keys.done(id), this.keys.failed(id));
    if (pending.length > 0 || h.cursor) log.info({ pending: pending.length, cursor: h.cursor }, 'bulk operation resumed');
    await this.#actAll(id, action, pending, pace, stopping);

    const query = storeQuery(action, filter);
    if (query === null) return this.#finish(id, 'done');
    const after = Date.parse(filter.created_after ?? '') || -Infinity;
    const before = Date.parse(filter.created_before ?? '') || Infinity;
    const inWindow = (r: Run) => {
      const t = Date.parse(r.created_at);
      return t >= after && t < before;
    };
    let cursor = h.cursor ?? '';
    if (cursor === '') {
      // The first step: the newest run when the operation began, which the walk below starts after.
      if (!h.upto) return this.#finish(id, 'done');
      const upto = await this.runhook.store.get(h.upto);
      const first = upto && matchesQuery(upto, query) && inWindow(upto) ? [upto.id] : [];
      await this.#step(id, first, h.upto);
      await this.#actAll(id, action, first, pace, stopping);
      cursor = h.upto;
    }
    for (;;) {
      if (stopping()) throw new BulkInterrupted();
      const page = await this.runhook.store.list({ ...query, after: cursor, limit: BULK_PAGE_SIZE, order: 'desc' });
      const ids = page.filter(inWindow).map((r) => r.id);
      // Newest first: once a page reaches before created_after, nothing further can match.
      const end = page.length < BULK_PAGE_SIZE || (page.length > 0 && Date.parse(page.at(-1)!.created_at) < after);
      if (page.length > 0) {
        cursor = page.at(-1)!.id;
        await this.#step(id, ids, cursor);
        await this.#actAll(id, action, ids, pace, stopping);
      }
      if (end) return this.#finish(id, 'done');
    }
  }

  /** Records a page's matching ids and the cursor past it, together: the intent, before acting. */
  async #step(id: string, ids: string[], cursor: string): Promise<void> {
    const m = this.redis.multi();
    if (ids.length > 0) m.sadd(this.keys.matched(id), ...ids);
    m.hset(this.keys.op(id), 'cursor', cursor);
    await m.exec();
  }

  async #actAll(id: string, action: BulkAction, ids: string[], pace: Pace, stopping: () => boolean): Promise<void> {
    for (let i = 0; i < ids.length; i += pace.chunk) {
      if (stopping()) throw new BulkInterrupted();
      const chunk = ids.slice(i, i + pace.chunk);
      const outcomes = await Promise.all(chunk.map((runId) => this.#act(id, action, runId)));
      const m = this.redis.multi();
      const done = chunk.filter((_, j) => outcomes[j] === null);
      const failed = chunk.filter((_, j) => outcomes[j] !== null);
      if (done.length > 0) m.sadd(this.keys.done(id), ...done);
      if (failed.length > 0) {
        m.sadd(this.keys.failed(id), ...failed);
        m.hset(this.keys.op(id), 'last_failure', `${failed[0]}: ${outcomes.find((o) => o !== null)}`);
      }
      await m.exec();
      await pace.wait(chunk.length);
    }
  }

  /** Applies the action to one run; null when done, else why it was refused. */
  async #act(id: string, action: BulkAction, runId: string): Promise<string | null> {
    try {
      if (action === 'cancel') await this.runhook.cancelRun(runId);
      else if (action === 'replay') await replayRun(this.runhook, runId, replayIdFor(id, runId));
      else await this.runhook.deleteRun(runId);
      return null;
    } catch (err) {
      // A run deleted meanwhile is what a delete wanted (and what a resumed delete finds).
      if (err instanceof RunNotFoundError) return action === 'delete' ? null : 'not found';
      // Refused for this run (it ended before it could be cancelled, its processor is no longer
      // configured, its conversation is busy…): counted as failed, the walk goes on. Anything else (Redis
      // down) fails the attempt, and the next one resumes.
      if (err instanceof RunhookError && err.status < 500) return `${err.code}: ${err.message}`;
      throw err;
    }
  }

  async #finish(id: string, status: 'done' | 'failed', error?: string): Promise<void> {
    const m = this.redis.multi();
    m.hset(this.keys.op(id), { status, completed_us: String(nowMicros()), ...(error !== undefined && { error }) });
    for (const k of this.keys.all(id)) m.expire(k, BULK_KEEP_S);
    await m.exec();
    this.log.info({ operation_id: id, status, ...(error !== undefined && { error }) }, 'bulk operation ended');
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}

/** The store query of a filter; null when nothing can match (a cancel of terminal statuses only). */
export function storeQuery(action: BulkAction, f: BulkFilter): Omit<RunListQuery, 'after' | 'before' | 'limit' | 'order'> | null {
  // Only a waiting or running run can be cancelled; the terminal ones are not "matched" by a cancel.
  let statuses = f.statuses;
  if (action === 'cancel') {
    statuses = (statuses ?? ACTIVE).filter((s) => ACTIVE.includes(s));
    if (statuses.length === 0) return null;
  }
  const agentIds = f.agent_id ? [f.agent_id] : f.agent_ids;
  return {
    ...(agentIds && { agent_ids: agentIds }),
    ...(statuses && { statuses }),
    ...(f.stop_reason && { stop_reason: f.stop_reason }),
    ...(f.conversation_id && { conversation_id: f.conversation_id }),
  };
}

function matchesQuery(r: Run, q: NonNullable<ReturnType<typeof storeQuery>>): boolean {
  return (
    (!q.agent_ids || q.agent_ids.includes(r.agent_id)) &&
    (!q.statuses || q.statuses.includes(r.status)) &&
    (!q.stop_reason || q.stop_reason === r.stop_reason) &&
    (!q.conversation_id || q.conversation_id === r.conversation_id)
  );
}

/** RUNHOOK_BULK_RATE: at most `perSecond` actions a second, in chunks; 0 is no limit. */
class Pace {
  readonly chunk: number;
  readonly #start = Date.now();
  #count = 0;

  constructor(readonly perSecond: number) {
    this.chunk = perSecond > 0 ? Math.max(1, Math.min(BULK_PARALLEL, Math.floor(perSecond / 10))) : BULK_PARALLEL;
  }

  async wait(n: number): Promise<void> {
    this.#count += n;
    if (this.perSecond <= 0) return;
    const due = this.#start + (this.#count / this.perSecond) * 1000 - Date.now();
    if (due > 0) await new Promise((r) => setTimeout(r, due));
  }
}
