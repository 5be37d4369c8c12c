import type { Queue } from 'bullmq';
import type { RedisClient } from './queue/connection.ts';
import type { Config } from './config.ts';
import { IllegalTransitionError, InvalidInputError, RunNotEndedError, RunNotFoundError, RunTimeoutError } from './errors.ts';
import type { Logger } from './logger.ts';
import { callbackJobOptions, dispatchCallbacks } from './callbacks/dispatch.ts';
import {
  callbackJobId,
  createCallbackQueue,
  createRunQueue,
  runJobOptions,
  type CallbackJobData,
  type RunJobData,
  type RunJobResult,
} from './queue/queues.ts';
import { newRunId, type Run, type RunCreate, type RunCreateParsed, type RunListQuery, type RunUpdate } from './runs/schema.ts';
import { chooseProcessor } from './processing/routing.ts';
import { addReadyJobs, flowJobOptions, readyRuns } from './flow/flow.ts';
import { isTerminal } from './runs/status.ts';
import { RunStore, type EndedRun } from './runs/store.ts';

/**
 * What code does with runs: create (store, then enqueue), read, list, change, cancel, delete, wait.
 * The API, the CLI and the library entry all go through this one class.
 */
export class Runhook {
  readonly store: RunStore;
  readonly queue: Queue<RunJobData, RunJobResult>;
  readonly callbackQueue: Queue<CallbackJobData, void, string>;

  constructor(
    readonly config: Config,
    readonly redis: RedisClient,
    readonly log: Logger,
  ) {
    this.store = new RunStore(redis, {
      keyPrefix: config.keyPrefix,
      retentionMs: config.retentionMs,
      replayMs: config.streamReplayMs,
      agentConcurrency: config.agentConcurrency,
      conversationBusy: config.conversationBusy,
    });
    this.queue = createRunQueue(config, redis);
    this.callbackQueue = createCallbackQueue(config, redis);
    // The fast path of the outbox: a run that ends in this process gets its delivery job at once;
    // the runs that end within one turn of the event loop share one bulk add.
    this.store.events.on('callback-due', (id, ended) => {
      if (this.deliverNow?.(id, ended)) return;
      this.#due.push(id);
      if (this.#due.length === 1) setImmediate(() => this.#dispatchDue());
    });
    // Flow control's hand-over admitted runs in the step that ended one: their jobs are added at once
    // (the reconciler's sweep of the ready set adds what a crash here leaves).
    this.store.events.on('flow-ready', (admitted) => {
      const runs = readyRuns(admitted);
      addReadyJobs(this.config, this.redis, this.store.keys, this.queue, runs).catch((err: Error) =>
        this.log.warn({ run_ids: runs.map((r) => r.id), err: err.message }, 'adding admitted runs\' jobs failed; the reconciler will'),
      );
    });
  }

  #due: string[] = [];

  /**
   * Set by a process that runs a callback worker: makes the first attempt of a callback at once, and
   * answers false when it cannot take it (no free slot), so a queue job is added instead.
   */
  deliverNow: ((runId: string, ended: EndedRun) => boolean) | undefined;

  #dispatchDue(): void {
    const ids = this.#due;
    this.#due = [];
    this.dispatchCallbacks(ids).catch((err: Error) =>
      this.log.warn({ run_ids: ids, err: err.message }, 'callback dispatch failed; the outbox sweep will retry'),
    );
  }

  dispatchCallbacks(runIds: string[]): Promise<void> {
    return dispatchCallbacks(this.config, this.redis, this.store.keys, this.callbackQueue, runIds);
  }

  /** Delivers a run's callback again now (POST /v1/runs/{id}/callback/retry): a new job, a full schedule. */
  async retryCallback(id: string): Promise<Run> {
    const run = await this.store.require(id);
    if (!run.callback_url) throw new InvalidInputError(`run ${id} has no callback_url`);
    if (!isTerminal(run.status)) throw new RunNotEndedError(id, run.status);
    const jobId = `${callbackJobId(id)}-retry-${Date.now()}`;
    await this.callbackQueue.add('deliver', { run_id: id, manual: true }, callbackJobOptions(this.config, id, { jobId }));
    return run;
  }

  /**
   * Stores the run, then adds its job (id = run id, so adding twice is harmless). A crash between the
   * two leaves a `created` run without a job; the reconciler finds it and adds the job.
   */
  async createRun(
    body: RunCreate | RunCreateParsed,
    id: string = newRunId(),
    options: Parameters<RunStore['create']>[2] = {},
  ): Promise<{ run: Run; created: boolean }> {
    // Chosen once, here, and kept on the run: every worker then runs it with the same processor.
    const processor = chooseProcessor(this.config, String(body.agent_id ?? ''), body.processor);
    const { record, created, admitted } = await this.store.create({ ...body, processor }, id, options);
    // A run flow control holds (behind its conversation or a limit) gets its job when it is admitted.
    if (record.run.status === 'created' && admitted) {
      // The stored run's id: a replayed Idempotency-Key names an earlier run, not `id`.
      const { priority, run_at } = record.run;
      const opts = priority || run_at
        ? flowJobOptions(this.config, record.run.id, priority, run_at ? Date.parse(run_at) : null)
        : runJobOptions(this.config, record.run.id);
      await this.queue.add('run', { agent_id: record.run.agent_id }, opts);
    }
    return { run: record.run, created };
  }

  getRun(id: string): Promise<Run> {
    return this.store.require(id);
  }

  listRuns(query: RunListQuery = {}): Promise<Run[]> {
    return this.store.list(query);
  }

  updateRun(id: string, patch: RunUpdate): Promise<Run> {
    return this.store.update(id, patch);
  }

  /**
   * Cancels a run: a waiting one is taken off the queue and never starts; a running one is told over
   * pub/sub (by the transition script, as for every terminal move made outside its worker) and its
   * processor's signal aborts. Cancelling a cancelled run returns it unchanged.
   */
  async cancelRun(id: string): Promise<Run> {
    const r = await this.store.transition(id, 'cancelled');
    if (r.outcome === 'missing') throw new RunNotFoundError(id);
    if (r.outcome === 'illegal' || r.outcome === 'stale') throw new IllegalTransitionError(id, r.status, 'cancelled');
    if (r.outcome === 'moved') {
      // A worker taking the job right now finds the run ended when it starts it (start-run.lua).
      if (r.from === 'created') await this.queue.remove(id).catch(() => 0);
      this.log.info({ run_id: id, from: r.from }, 'run cancelled');
    }
    return this.store.require(id);
  }

  /**
   * Deletes a run, its job and its callback: the run is removed first (with its callback outbox entry,
   * in the same script), then its callback delivery job, so no retry of it is left waiting. A delivery
   * in flight (its job locked) finds the run gone when it records, and nothing later sends it. A run
   * still going is cancelled first so no worker keeps it.
   */
  async deleteRun(id: string): Promise<Run> {
    const run = await this.store.require(id);
    if (!isTerminal(run.status)) await this.cancelRun(id).catch(() => undefined);
    await this.queue.remove(id).catch(() => 0);
    await this.store.delete(id);
    await this.callbackQueue.remove(callbackJobId(id)).catch(() => 0);
    return run;
  }

  /** Resolves with the run once it is terminal. */
  async waitForRun(id: string, { timeoutMs = 60_000, pollMs = 25 } = {}): Promise<Run> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const run = await this.store.require(id);
      if (isTerminal(run.status)) return run;
      if (Date.now() > deadline) throw new RunTimeoutError(`run ${id} still ${run.status} after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, Math.min(pollMs, Math.max(1, deadline - Date.now()))));
    }
  }

  async close(): Promise<void> {
    await Promise.all([this.queue.close(), this.callbackQueue.close()]);
  }
}
