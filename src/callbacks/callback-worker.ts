import { DelayedError, MetricsTime, UnrecoverableError, Worker, type Job, type MinimalJob, type Queue } from 'bullmq';
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
import { isTerminal } from '../runs/status.ts';
import { callbackState, entriesFromReads, type EndedRun, type RunStore, type StreamEntry } from '../runs/store.ts';
import { CallbackBreaker, hostOf, type Gate } from './breaker.ts';
import { Deliverer, type DeliveryResult } from './deliver.ts';
import { callbackJobOptions } from './dispatch.ts';
import { EndpointSlots } from './endpoint-slots.ts';
import { CallbackDeliveryError } from './errors.ts';
import { buildPayload } from './payload.ts';
import { failRecovery, RECOVER_JOB, runRecovery } from './recover.ts';
import { secretKey, webhookHeaders, webhookId } from './sign.ts';

export interface CallbackWorkerDeps {
  config: Config;
  /** A connection with maxRetriesPerRequest: null; BullMQ duplicates it for its blocking reads. */
  redis: RedisClient;
  store: RunStore;
  log: Logger;
  /** Told of every recorded delivery attempt (attempts by outcome, latency). */
  metrics?: CallbackObserver;
  /** The callbacks queue: with it, first attempts can be made at once (tryDeliverNow). */
  queue?: Queue<CallbackJobData, void, string>;
}

/** Stream entries read in the first round trip; a longer stream is paged after it. */
const STREAM_PAGE = 1000;

interface Loaded {
  record: RunRecord;
  entries: StreamEntry[];
  state: string | undefined;
  lastAttempt: number;
}

/** `cb-<run id>`, `cb-<run id>-retry-<ms>` or `cb-<run id>-recover-<uuid>` (see callbackJobId, Runhook.retryCallback, recover.ts). */
function runIdOfJob(jobId: string): string {
  return jobId.replace(/^cb-/, '').replace(/-(retry-\d+|recover-[0-9a-f-]+)$/, '');
}

/**
 * When a delivery held by an open breaker looks again: at the breaker's next probe time, spread a little
 * so that the held deliveries of one host do not all ask in the same millisecond.
 */
function heldUntil(untilMs: number, nowMs = Date.now()): number {
  const wait = Math.max(0, untilMs - nowMs);
  return nowMs + wait + Math.random() * Math.min(1_000, 50 + wait / 4);
}

type Sent = { result: DeliveryResult; sentUs: number; aborted: boolean };

function loadedFrom(hash: Record<string, string>, log: Buffer | string | null, stream: Array<[string, string[]]> = []): Loaded {
  return {
    record: hashToRecord(hash),
    entries: entriesFromReads(log, stream),
    state: hash.callback_state,
    lastAttempt: Number(hash.callback_attempts ?? 0),
  };
}

/** How often a callback job whose run has not ended looks again (plus jitter). */
const NOT_ENDED_RECHECK_MS = 5_000;

/** How long a callback waits when its receiver has its full share of deliveries in flight (plus jitter). */
const ENDPOINT_BUSY_DELAY_MS = 250;

/** First attempts made at once may outnumber the queue's slots: they are I/O waits, not work. */
const INLINE_PER_SLOT = 4;

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
  /** Deliveries in flight; all of them are cut off together when a shutdown's grace period ends. */
  #inFlight = 0;
  readonly #shutdown = new AbortController();
  /** First attempts made at once, outside the queue (tryDeliverNow). */
  readonly #inline = new Set<Promise<void>>();
  /** Deliveries in flight per receiver origin, so one slow receiver cannot take every slot. */
  readonly #slots: EndpointSlots;
  /** Receiver health, shared with every other callback worker through Redis. */
  readonly #breaker: CallbackBreaker;
  #worker: Worker<CallbackJobData, void> | undefined;
  #starting: Promise<void> | undefined;
  #closing: Promise<void> | undefined;

  constructor(deps: CallbackWorkerDeps) {
    this.#deps = deps;
    const { config } = deps;
    this.#deliverer = new Deliverer({ timeoutMs: config.callbackTimeoutMs, allowPrivate: config.callbackAllowPrivate });
    this.#key = config.webhookSecret ? secretKey(config.webhookSecret) : undefined;
    this.#slots = new EndpointSlots(config.callbackEndpointConcurrency, Math.min(1_000, config.callbackTimeoutMs / 2));
    this.#breaker = new CallbackBreaker(deps.redis, deps.store.keys, config);
  }

  get activeCount(): number {
    return this.#inFlight;
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
        // A job that follows a first attempt made at once (tryDeliverNow) starts `offset` steps in.
        backoffStrategy: (attemptsMade: number, type?: string, _err?: Error, job?: MinimalJob<CallbackJobData>) =>
          type === 'callback-schedule'
            ? (delays[Math.min(attemptsMade + (job?.data.offset ?? 0), delays.length - 1)] ?? 0)
            : 0,
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
    if (job.name === RECOVER_JOB) {
      const { config, redis, store } = this.#deps;
      try {
        await runRecovery({ config, redis, keys: store.keys, queue: this.#deps.queue! }, job.data.recovery!, job);
      } catch (err) {
        if (job.attemptsMade + 1 >= (job.opts.attempts ?? 1)) await failRecovery(redis, store.keys, job.data.recovery!, (err as Error).message);
        throw err;
      }
      return;
    }
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
    if (!isTerminal(record.run.status)) {
      // Only an ended run has a callback: a job that finds its run still going (a stale retry of an
      // earlier run under this id, or one added by hand) must not post "running" and record it as
      // delivered. It waits for the end, spending no attempt; the terminal move's dispatch finds this
      // job (same id) and adds no other, so this one delivers once the run has ended.
      log.warn({ status: record.run.status }, 'callback job for a run that has not ended; it waits for the end');
      await job.moveToDelayed(Date.now() + NOT_ENDED_RECHECK_MS * (1 + Math.random()), token);
      throw new DelayedError();
    }
    // The job id makes a second automatic job unlikely, not impossible (its record is trimmed after an
    // hour and an outbox sweep may add it again); a delivered callback is not sent twice for that.
    if (!job.data.manual && loaded.state === 'delivered') {
      log.debug('callback already delivered; job skipped');
      return;
    }

    const sent = await this.#send(runId, loaded, url);
    if (sent === 'busy') {
      // This receiver already holds its share of slots and is not answering fast (it may hang or
      // drip): come back shortly, without spending an attempt, and let other callbacks through.
      await job.moveToDelayed(Date.now() + ENDPOINT_BUSY_DELAY_MS * (1 + 3 * Math.random()), token);
      throw new DelayedError();
    }
    if ('heldUntilMs' in sent) {
      // The receiver's breaker is open (or its one probe is out): wait for the next probe time without
      // spending an attempt, so a dead receiver does not use up this run's retry schedule.
      log.debug({ until: new Date(sent.heldUntilMs).toISOString() }, 'callback held: its receiver is not answering');
      await job.moveToDelayed(heldUntil(sent.heldUntilMs), token);
      throw new DelayedError();
    }
    if (sent.aborted) {
      // Shutting down: not the receiver's failure, so no attempt is spent; another worker sends it.
      log.info('callback delivery interrupted by shutdown; moved back to the queue');
      await job.moveToDelayed(Date.now(), token);
      throw new DelayedError();
    }
    const { result } = sent;
    const attempt = await this.#record(runId, loaded, sent, job.attemptsMade + 1 >= (job.opts.attempts ?? 1), log);
    if (result.error === null) return;
    if (attempt.gave_up) {
      throw result.final ? new UnrecoverableError(result.error) : new CallbackDeliveryError(result.error, result.statusCode);
    }
    throw new CallbackDeliveryError(result.error, result.statusCode);
  }

  /**
   * The first attempt of a callback, made at once in the process that ended the run, with no queue job:
   * when the receiver answers, the callback costs no job at all. The run stays in the outbox until the
   * attempt is recorded; a failed attempt hands the rest of the schedule to a queue job; if this process
   * dies first, the outbox sweep adds the job. False when no slot is free: the caller queues a job.
   */
  tryDeliverNow(runId: string, ended?: EndedRun): boolean {
    if (this.#closing || !this.#worker || !this.#deps.queue || this.#inline.size >= INLINE_PER_SLOT * this.#deps.config.callbackConcurrency) {
      return false;
    }
    const p = this.#deliverNow(runId, ended).finally(() => this.#inline.delete(p));
    this.#inline.add(p);
    return true;
  }

  async #deliverNow(runId: string, ended?: EndedRun): Promise<void> {
    const log = this.#deps.log.child({ run_id: runId, inline: true });
    try {
      // The terminal move hands over the run as it ended: nothing to read back.
      const loaded = ended ? loadedFrom(ended.hash, ended.messageLog) : await this.#load(runId);
      const url = loaded?.record.run.callback_url;
      if (loaded && url && !isTerminal(loaded.record.run.status)) {
        // Not ended (see #process): its job waits for the end.
        await this.#queueJob(runId, 0);
        await this.#deps.redis.zrem(this.#deps.store.keys.callbackOutbox, runId);
        return;
      }
      if (!loaded || !url || loaded.state === 'delivered') {
        await this.#deps.redis.zrem(this.#deps.store.keys.callbackOutbox, runId);
        return;
      }
      const sent = await this.#send(runId, loaded, url);
      if (sent === 'busy' || 'heldUntilMs' in sent || sent.aborted) {
        await this.#queueJob(runId, 0);
        await this.#deps.redis.zrem(this.#deps.store.keys.callbackOutbox, runId);
        return;
      }
      const failed = sent.result.error !== null && !sent.result.final && this.#deps.config.callbackRetryDelaysMs.length > 1;
      // The retry job is queued before the attempt is recorded, which takes the run out of the outbox:
      // a crash between the two leaves it to the sweep rather than losing the retries.
      if (failed) await this.#queueJob(runId, 1);
      await this.#record(runId, loaded, sent, !failed, log);
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'first callback attempt not recorded; the outbox sweep takes it');
    }
  }

  /** A queue job for the schedule from step `offset` on (0: all of it; 1: after a first attempt here). */
  async #queueJob(runId: string, offset: number): Promise<void> {
    await this.#deps.queue!.add('deliver', { run_id: runId, offset }, callbackJobOptions(this.#deps.config, runId, { offset }));
  }

  /**
   * One POST of the run's callback, if its receiver has a free slot ('busy' otherwise) and its breaker
   * lets it through (`heldUntilMs` otherwise); the outcome is told to the breaker.
   */
  async #send(runId: string, loaded: Loaded, url: string): Promise<'busy' | { heldUntilMs: number } | Sent> {
    const release = this.#slots.tryAcquire(originOf(url));
    if (!release) return 'busy';
    const host = hostOf(url);
    let gate: Gate;
    try {
      gate = await this.#breaker.acquire(host);
    } catch (err) {
      release();
      throw err;
    }
    if (gate.kind === 'wait') {
      release();
      return { heldUntilMs: gate.untilMs };
    }
    let sent: Sent;
    const body = JSON.stringify(buildPayload(loaded.record, assembleMessages(loaded.entries)));
    const signal = this.#shutdown.signal;
    this.#inFlight++;
    const sentUs = nowMicros();
    try {
      const result = await this.#deliverer.deliver(url, body, webhookHeaders(this.#key, webhookId(runId), body), signal);
      sent = { result, sentUs, aborted: signal.aborted && result.error !== null };
    } finally {
      this.#inFlight--;
      release();
    }
    // A cut-off attempt says nothing of the host (a probe's lease then lapses on its own).
    if (!sent.aborted) {
      await this.#breaker.report(host, gate, sent.result).catch((err: Error) =>
        this.#deps.log.warn({ run_id: runId, host, err: err.message }, 'callback breaker not updated'),
      );
    }
    return sent;
  }

  /** Records an attempt on the run and in its log, counts it, and logs it. */
  async #record(
    runId: string,
    loaded: Loaded,
    { result, sentUs }: { result: DeliveryResult; sentUs: number },
    lastTry: boolean,
    log: Logger,
  ): Promise<CallbackAttempt> {
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
    if (result.error === null) log.info(fields, 'callback delivered');
    else if (attempt.gave_up) log.warn({ ...fields, err: result.error }, 'callback given up');
    else log.info({ ...fields, err: result.error }, 'callback attempt failed; it will be retried');
    return attempt;
  }

  /** The run, its messages and its callback state in one round trip (the hot path of every delivery). */
  async #load(runId: string): Promise<Loaded | undefined> {
    const { redis, store } = this.#deps;
    const k = store.keys;
    // Three commands sent back to back (one round trip) without a pipeline object: ioredis copies every
    // script defined on the connection into each pipeline, and BullMQ defines dozens.
    const [hash, raw, log] = await Promise.all([
      redis.hgetall(k.run(runId)),
      redis.xrange(k.messages(runId), '-', '+', 'COUNT', STREAM_PAGE),
      // A folded log may be compressed (binary): read as a Buffer.
      redis.getBuffer(k.messageLog(runId)),
    ]);
    if (hash.id === undefined) return undefined;
    const loaded = loadedFrom(hash, log, raw);
    const { entries } = loaded;
    for (let page = log ? 0 : raw.length; page === STREAM_PAGE; ) {
      const more = await store.streamEntries(runId, entries.at(-1)!.seq_id, STREAM_PAGE);
      entries.push(...more);
      page = more.length;
    }
    return loaded;
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
          this.#shutdown.abort(new ShutdownAbort('worker shutting down'));
        }, graceMs);
        try {
          await Promise.all([worker.close(), ...this.#inline]);
        } finally {
          clearTimeout(timer);
        }
      }
      await this.#deliverer.close();
    })();
    return this.#closing;
  }
}
