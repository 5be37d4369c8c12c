import { DelayedError, Worker, type Job } from 'bullmq';
import type { Logger } from '../logger.ts';
import type { RedisClient } from '../queue/connection.ts';
import type { Runhook } from '../runhook.ts';
import { BULK_QUEUE, BulkInterrupted, BulkOperations, type BulkJobData } from './bulk.ts';

/**
 * A walk that stalls (its worker killed) is safe to resume (see BulkOperations), so it may stall more
 * often than a run's job before BullMQ gives it up.
 */
const BULK_MAX_STALLED = 10;

/**
 * Takes bulk operation jobs, one at a time per process, in every run-worker process. A killed process's
 * job is moved back by BullMQ's stalled check (RUNHOOK_LOCK_DURATION_MS / RUNHOOK_STALLED_INTERVAL_MS)
 * and another process resumes the walk; a closing process hands its job back between two steps.
 */
export class BulkWorker {
  readonly #ops: BulkOperations;
  #worker: Worker<BulkJobData, void> | undefined;
  #stopping = false;
  #closing: Promise<void> | undefined;

  constructor(
    readonly deps: { runhook: Runhook; redis: RedisClient; log: Logger },
  ) {
    this.#ops = new BulkOperations(deps.runhook, deps.log.child({ part: 'bulk' }));
  }

  async start(): Promise<void> {
    if (this.#worker) return;
    const { config } = this.deps.runhook;
    const log = this.deps.log;
    this.#worker = new Worker<BulkJobData, void>(BULK_QUEUE, (job, token) => this.#process(job, token), {
      connection: this.deps.redis,
      prefix: config.keyPrefix,
      concurrency: 1,
      lockDuration: config.lockDurationMs,
      stalledInterval: config.stalledIntervalMs,
      maxStalledCount: BULK_MAX_STALLED,
      autorun: true,
    });
    this.#worker.on('error', (err) => log.warn({ err: err.message }, 'bulk worker error'));
    this.#worker.on('stalled', (id) => log.warn({ operation_id: id }, 'bulk job stalled; it resumes where it stopped'));
    // Only a job BullMQ gave up for good (retries spent, or stalled too often) fails the operation.
    this.#worker.on('failed', (job, err) => {
      if (!job) return;
      void job
        .getState()
        .then((state) => (state === 'failed' ? this.#ops.fail(job.data.operation_id, err.message) : undefined))
        .catch((e: Error) => log.warn({ err: e.message }, 'could not record a failed bulk operation'));
    });
    await this.#worker.waitUntilReady();
  }

  async #process(job: Job<BulkJobData, void>, token: string | undefined): Promise<void> {
    try {
      await this.#ops.walk(job.data.operation_id, () => this.#stopping);
    } catch (err) {
      if (!(err instanceof BulkInterrupted)) throw err;
      // Shutting down: back to the queue at once, no attempt spent; the next taker resumes the walk.
      await job.moveToDelayed(Date.now(), token);
      throw new DelayedError();
    }
  }

  /** Stops taking jobs; a walk in progress stops after its current chunk and goes back to the queue. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#stopping = true;
      await this.#worker?.close();
      await this.#ops.close();
    })();
    return this.#closing;
  }
}
