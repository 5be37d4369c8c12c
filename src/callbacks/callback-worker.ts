import { DelayedError, MetricsTime, UnrecoverableError, Worker, type Job } from 'bullmq';
import type { RedisClient } from '../queue/connection.ts';
import { microsToIso, nowMicros } from '../clock.ts';
import type { Config } from '../config.ts';
import type { Logger } from '../logger.ts';
import type { CallbackObserver } from '../monitoring/metrics.ts';
import { telemetry } from '../monitoring/tracing.ts';
import { CALLBACKS_QUEUE, type CallbackJobData } from '../queue/queues.ts';
import { assembleMessages } from '../runs/messages.ts';
import { hashToRecord, type RunRecord } from '../runs/record.ts';
import type { CallbackAttempt } from '../runs/schema.ts';
import { callbackState, entriesFromReads, type RunStore, type StreamEntry } from '../runs/store.ts';
import { Deliverer } from './deliver.ts';
import { EndpointSlots } from './endpoint-slots.ts';
import { CallbackDeliveryError } from './errors.ts';
import { buildPayload } from './payload.ts';
import { secretKey, webhookHeaders, webhookId } from './sign.ts';

export interface CallbackWorkerDeps {
  config: Config;
  /** A connection with maxRetriesPerRequest: null; BullMQ duplicates it for its blocking reads. */
  redis: RedisClient;
  store: RunStore;
  log: Logger;
  /** Told of every recorded delivery attempt (attempts by outcome, latency). */
  metrics?: CallbackObserver;
}

/** Stream entries read in the first round trip; a longer stream is paged after it. */
const STREAM_PAGE = 1000;

interface Loaded {
  record: RunRecord;
  entries: StreamEntry[];
  state: string | undefined;
  lastAttempt: number;
}

/** `cb-<run id>` or `cb-<run id>-retry-<ms>` (see callbackJobId, Runhook.retryCallback). */
function runIdOfJob(jobId: string): string {
  return jobId.replace(/^cb-/, '').replace(/-retry-\d+$/, '');
}

/** How long a callback waits when its receiver has its full share of deliveries in flight (plus jitter). */
const ENDPOINT_BUSY_DELAY_MS = 250;

function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return url;
  }
}

/** Aborts deliveries still going when the grace period of a shutdown is over. */
class ShutdownAbort extends Error {}

/**
 * Delivers run callbacks from the callbacks queue: one POST per job attempt, every attempt recorded on
 * the run and in its delivery log, BullMQ's retries following the configured schedule. A job that
 * stalls (its worker died mid-POST) is taken up again by BullMQ, so a callback is delivered at least
 * once; receivers drop duplicates by `webhook-id`.
 */
export class CallbackWorker {
  readonly #deps: CallbackWorkerDeps;
  readonly #deliverer: Deliverer;
  readonly #key: Buffer | undefined;
  readonly #active = new Set<AbortController>();
  /** Deliveries in flight per receiver origin, so one slow receiver cannot take every slot. */
  readonly #slots: EndpointSlots;
  #worker: Worker<CallbackJobData, void> | undefined;
  #starting: Promise<void> | undefined;
  #closing: Promise<void> | undefined;

  constructor(deps: CallbackWorkerDeps) {
    this.#deps = deps;
    const { config } = deps;
    this.#deliverer = new Deliverer({ timeoutMs: config.callbackTimeoutMs, allowPrivate: config.callbackAllowPrivate });
    this.#key = config.webhookSecret ? secretKey(config.webhookSecret) : undefined;
    this.#slots = new EndpointSlots(config.callbackEndpointConcurrency, Math.min(1_000, config.callbackTimeoutMs / 2));
  }

  get activeCount(): number {
    return this.#active.size;
  }

  /** Safe to call twice: later callers get the start in progress. */
  start(): Promise<void> {
    if (this.#closing) return Promise.reject(new Error('callback worker is closed'));
    this.#starting ??= this.#start();
    return this.#starting;
  }

  async #start(): Promise<void> {
    const { config, redis, log } = this.#deps;
    const delays = config.callbackRetryDelaysMs;
    this.#worker = new Worker<CallbackJobData, void>(CALLBACKS_QUEUE, (job, token) => this.#process(job, token), {
      connection: redis,
      prefix: config.keyPrefix,
      concurrency: config.callbackConcurrency,
      lockDuration: config.lockDurationMs,
      stalledInterval: config.stalledIntervalMs,
      maxStalledCount: config.maxStalledCount,
      // Completed and failed per minute for GET /v1/queues and the dashboard, kept for an hour.
      metrics: { maxDataPoints: MetricsTime.ONE_HOUR },
      telemetry: telemetry(config),
      settings: {
        // BullMQ passes the attempts made so far: after the first failure, 1, so delays[1] comes next.
        backoffStrategy: (attemptsMade: number, type?: string) =>
          type === 'callback-schedule' ? (delays[Math.min(attemptsMade, delays.length - 1)] ?? 0) : 0,
      },
    });
    this.#worker.on('error', (err) => log.warn({ err: err.message }, 'callback worker error'));
    this.#worker.on('stalled', (jobId) =>
      log.warn({ run_id: runIdOfJob(jobId), job_id: jobId }, 'callback job stalled; BullMQ hands it to a worker again'),
    );
    await this.#worker.waitUntilReady();
    log.info({ concurrency: config.callbackConcurrency }, 'callback worker started');
  }

  async #process(job: Job<CallbackJobData, void>, token: string | undefined): Promise<void> {
    const runId = job.data.run_id;
    const log = this.#deps.log.child({ run_id: runId, job_id: job.id, job_attempt: job.attemptsMade + 1 });
    const loaded = await this.#load(runId);
    if (!loaded) {
      log.info('run is gone; its callback is dropped');
      return;
    }
    const { record } = loaded;
    const url = record.run.callback_url;
    if (!url) return;
    // The job id makes a second automatic job unlikely, not impossible (its record is trimmed after an
    // hour and an outbox sweep may add it again); a delivered callback is not sent twice for that.
    if (!job.data.manual && loaded.state === 'delivered') {
      log.debug('callback already delivered; job skipped');
      return;
    }

    const release = this.#slots.tryAcquire(originOf(url));
    if (!release) {
      // This receiver already holds its share of slots and is not answering fast (it may hang or
      // drip): come back shortly, without spending an attempt, and let other callbacks through.
      await job.moveToDelayed(Date.now() + ENDPOINT_BUSY_DELAY_MS * (1 + 3 * Math.random()), token);
      throw new DelayedError();
    }

    const body = JSON.stringify(buildPayload(record, assembleMessages(loaded.entries)));
    const controller = new AbortController();
    this.#active.add(controller);
    const sentUs = nowMicros();
    let result;
    try {
      result = await this.#deliverer.deliver(url, body, webhookHeaders(this.#key, webhookId(runId), body), controller.signal);
    } finally {
      this.#active.delete(controller);
      release();
    }
    if (controller.signal.aborted && result.error !== null) {
      // Shutting down: not the receiver's failure, so no attempt is spent; another worker sends it.
      log.info('callback delivery interrupted by shutdown; moved back to the queue');
      await job.moveToDelayed(Date.now(), token);
      throw new DelayedError();
    }

    const lastTry = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
    const attempt: CallbackAttempt = {
      attempt: loaded.lastAttempt + 1,
      at: microsToIso(sentUs),
      status_code: result.statusCode,
      error: result.error,
      duration_ms: result.durationMs,
      gave_up: result.error !== null && (result.final || lastTry),
    };
    await this.#deps.store.recordCallbackAttempt(runId, attempt, sentUs);
    this.#deps.metrics?.callbackAttempt(callbackState(attempt), result.durationMs);
    const fields = { status_code: result.statusCode, duration_ms: result.durationMs, attempt: attempt.attempt };
    if (result.error === null) {
      log.info(fields, 'callback delivered');
      return;
    }
    if (attempt.gave_up) {
      log.warn({ ...fields, err: result.error }, 'callback given up');
      throw result.final ? new UnrecoverableError(result.error) : new CallbackDeliveryError(result.error, result.statusCode);
    }
    log.info({ ...fields, err: result.error }, 'callback attempt failed; it will be retried');
    throw new CallbackDeliveryError(result.error, result.statusCode);
  }

  /** The run, its messages and its callback state in one round trip (the hot path of every delivery). */
  async #load(runId: string): Promise<Loaded | undefined> {
    const { redis, store } = this.#deps;
    const k = store.keys;
    // Four commands sent back to back (one round trip) without a pipeline object: ioredis copies every
    // script defined on the connection into each pipeline, and BullMQ defines dozens.
    const [hash, raw, last, log] = await Promise.all([
      redis.hgetall(k.run(runId)),
      redis.xrange(k.messages(runId), '-', '+', 'COUNT', STREAM_PAGE),
      redis.lindex(k.callbackAttempts(runId), -1),
      redis.lrange(k.messageLog(runId), 0, -1),
    ]);
    if (hash.id === undefined) return undefined;
    const entries = entriesFromReads(log, raw);
    for (let page = log.length > 0 ? 0 : raw.length; page === STREAM_PAGE; ) {
      const more = await store.streamEntries(runId, entries.at(-1)!.seq_id, STREAM_PAGE);
      entries.push(...more);
      page = more.length;
    }
    return {
      record: hashToRecord(hash),
      entries,
      state: hash.callback_state,
      lastAttempt: last ? (JSON.parse(last) as CallbackAttempt).attempt : 0,
    };
  }

  /**
   * Stops taking jobs and lets deliveries in flight end; past the grace period they are cut off and
   * their jobs go back to the queue unspent. Waits for a start in progress. Safe to call twice.
   */
  close(graceMs = this.#deps.config.shutdownGraceMs): Promise<void> {
    this.#closing ??= (async () => {
      await this.#starting?.catch(() => undefined);
      const worker = this.#worker;
      if (worker) {
        const timer = setTimeout(() => {
          for (const c of this.#active) c.abort(new ShutdownAbort('worker shutting down'));
        }, graceMs);
        try {
          await worker.close();
        } finally {
          clearTimeout(timer);
        }
      }
      await this.#deliverer.close();
    })();
    return this.#closing;
  }
}
