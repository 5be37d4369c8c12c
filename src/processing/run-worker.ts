import { MetricsTime, UnrecoverableError, Worker, type Job } from 'bullmq';
import type { RedisClient } from '../queue/connection.ts';
import type { Config } from '../config.ts';
import type { Logger } from '../logger.ts';
import type { RunObserver } from '../monitoring/metrics.ts';
import { telemetry } from '../monitoring/tracing.ts';
import { statusOfStopReason } from '../runs/status.ts';
import type { RunStore } from '../runs/store.ts';
import { cancelChannel, RUNS_QUEUE, type RunJobData, type RunJobResult } from '../queue/queues.ts';
import { abortReasonOf, RunContext, type AbortReason } from './context.ts';
import { RunFailure, type Processor } from './processor.ts';
import { chooseProcessor } from './routing.ts';

export interface RunWorkerDeps {
  config: Config;
  /** A connection with maxRetriesPerRequest: null; BullMQ duplicates it for its blocking reads. */
  redis: RedisClient;
  store: RunStore;
  /** What runs whose processor is RUNHOOK_PROCESSOR (or that name none) run. */
  processor: Processor;
  /**
   * Every configured processor by its name (see routing.ts); a run names its own. Without it, every run
   * runs `processor`.
   */
  processors?: ReadonlyMap<string, Processor>;
  log: Logger;
  /** Told of every run this worker ends (the run duration and ttft histograms). */
  metrics?: RunObserver;
}

/**
 * Takes run jobs and moves each Run through its statuses where it happens: `running` when the attempt
 * starts, then `completed`/`failed`/`cancelled` before the job itself is finished. BullMQ's events are
 * not a ledger (they can be missed); the store is, and the reconciler repairs what a crash leaves.
 */
export class RunWorker {
  readonly #deps: RunWorkerDeps;
  /** Runs this worker is processing; their abort signals are BullMQ's own (`worker.cancelJob`). */
  readonly #active = new Set<string>();
  #worker: Worker<RunJobData, RunJobResult> | undefined;
  #subscriber: RedisClient | undefined;
  #closing: Promise<void> | undefined;

  constructor(deps: RunWorkerDeps) {
    this.#deps = deps;
  }

  get activeCount(): number {
    return this.#active.size;
  }

  async start(): Promise<void> {
    if (this.#worker) return;
    const { config, redis, log } = this.#deps;
    // The end of a running run made elsewhere (cancel, PATCH, the reconciler; published by
    // transition-run.lua) comes over pub/sub; only the holder acts.
    this.#subscriber = redis.duplicate();
    this.#subscriber.on('message', (_channel: string, runId: string) => this.#abort(runId, 'cancelled'));
    this.#subscriber.on('error', (err) => log.warn({ err: err.message }, 'cancel subscriber error'));
    await this.#subscriber.subscribe(cancelChannel(config));

    // Three parameters: BullMQ 6 then gives each job an AbortSignal that `cancelJob`/`cancelAllJobs` abort.
    this.#worker = new Worker<RunJobData, RunJobResult>(RUNS_QUEUE, (job, _token, signal) => this.#process(job, signal!), {
      connection: redis,
      prefix: config.keyPrefix,
      concurrency: config.concurrency,
      lockDuration: config.lockDurationMs,
      stalledInterval: config.stalledIntervalMs,
      maxStalledCount: config.maxStalledCount,
      // Completed and failed per minute for GET /v1/queues and the dashboard, kept for an hour.
      metrics: { maxDataPoints: MetricsTime.ONE_HOUR },
      telemetry: telemetry(config),
      autorun: true,
    });
    this.#worker.on('error', (err) => log.warn({ err: err.message }, 'run worker error'));
    this.#worker.on('stalled', (runId) => log.warn({ run_id: runId }, 'run job stalled; BullMQ moves it back or fails it'));
    await this.#worker.waitUntilReady();
    const processors = this.#deps.processors ? [...this.#deps.processors.keys()] : [this.#deps.processor.name];
    log.info({ concurrency: config.concurrency, processor: config.processor, processors }, 'run worker started');
  }

  async #process(job: Job<RunJobData, RunJobResult>, signal: AbortSignal): Promise<RunJobResult> {
    const { store, config } = this.#deps;
    const runId = job.id!;
    const attempt = job.attemptsStarted;
    const log = this.#deps.log.child({ run_id: runId, attempt });

    const started = await store.start(runId, attempt);
    if (started.outcome !== 'started') {
      log.debug({ outcome: started.outcome }, 'run not started: it ended or is gone');
      return { skipped: started.outcome };
    }
    const { record } = started;
    this.#active.add(runId);
    // A run stored before runs kept their processor follows today's routes.
    const name = record.run.processor ?? chooseProcessor(config, record.run.agent_id);
    const processor = this.#processorNamed(name);
    const context = new RunContext(record, attempt, log, store, signal, (reason) => this.#abort(runId, reason), name);
    // Whether the signal had aborted when the processor returned; undefined until it returns.
    let abortedAtReturn: boolean | undefined;
    try {
      // Another worker (configured like this one should be) may have it: the attempt is retried.
      if (!processor) throw new RunFailure(`processor "${name}" is not loaded in this worker; check RUNHOOK_PROCESSOR and RUNHOOK_ROUTES`);
      const result = (await processor.run({ run: record.run, input: record.input, signal, context })) ?? {};
      // Read at once: a processor that returned after its signal aborted may have stopped short, but an
      // abort that comes later (a shutdown's grace period ending while the last messages are written) is
      // not its outcome and must not fail a run that succeeded.
      abortedAtReturn = signal.aborted;
      // Messages still buffered go with the terminal move; earlier batches must have landed first.
      const last = context.takeBuffered();
      const steps = context.takeSteps();
      await context.flush();
      if (abortedAtReturn) throw signal.reason;
      if (result.usage) context.reportUsage(result.usage);
      const stopReason = result.stop_reason ?? 'end_turn';
      const status = statusOfStopReason(stopReason);
      const moved = await store.transition(runId, status, {
        stopReason,
        usage: context.usage,
        attempt,
        messages: last.map((m) => m.json),
        steps,
        ...(last[0] && { messagesAtUs: last[0].atUs }),
      });
      context.settle(last, moved.outcome === 'moved' ? (moved.firstMessageSeq ?? 0) : 0);
      if (moved.outcome === 'moved') this.#deps.metrics?.runEnded(status, moved.totalDurationNs, moved.ttftNs, name);
      log.info({ stop_reason: stopReason, outcome: moved.outcome }, 'run finished');
      return { stop_reason: stopReason };
    } catch (err) {
      await context.flush().catch(() => {});
      return await this.#fail(job, err, abortedAtReturn === false ? undefined : abortReasonOf(signal), context, log);
    } finally {
      this.#active.delete(runId);
    }
  }

  /** Decides what a thrown processor means for the run: retry, fail now, or nothing (it was aborted). */
  async #fail(
    job: Job<RunJobData, RunJobResult>,
    err: unknown,
    reason: AbortReason | undefined,
    context: RunContext,
    log: Logger,
  ): Promise<RunJobResult> {
    const { store, config } = this.#deps;
    const runId = job.id!;
    if (reason === 'cancelled' || reason === 'superseded') {
      // The run was ended by whoever cancelled it, or another attempt owns it now.
      log.info({ reason }, 'run aborted');
      return { skipped: reason };
    }
    if (reason === 'shutdown') {
      const moved = await store.transition(runId, 'failed', {
        error: `worker shut down before the run finished (grace period ${config.shutdownGraceMs} ms)`,
        usage: context.usage,
        attempt: context.attempt,
      });
      if (moved.outcome === 'moved') this.#deps.metrics?.runEnded('failed', moved.totalDurationNs, moved.ttftNs, context.processor);
      log.warn('run aborted by worker shutdown');
      throw new UnrecoverableError('aborted by worker shutdown');
    }
    const message = err instanceof Error ? err.message : String(err);
    const retryable = !(err instanceof RunFailure && !err.retry) && !(err instanceof UnrecoverableError);
    const last = !retryable || job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
    if (last) {
      // A failure may name its stop reason, but only one that Letta maps to `failed`.
      const given = err instanceof RunFailure ? err.stopReason : 'error';
      const moved = await store.transition(runId, 'failed', {
        stopReason: statusOfStopReason(given) === 'failed' ? given : 'error',
        error: message,
        usage: context.usage,
        attempt: context.attempt,
      });
      if (moved.outcome === 'moved') this.#deps.metrics?.runEnded('failed', moved.totalDurationNs, moved.ttftNs, context.processor);
      log.warn({ err: message, attempts_made: job.attemptsMade + 1 }, 'run failed');
      throw retryable ? err : new UnrecoverableError(message);
    }
    log.warn({ err: message, attempts_made: job.attemptsMade + 1 }, 'run attempt failed; it will be retried');
    throw err;
  }

  #processorNamed(name: string): Processor | undefined {
    const { processors, processor, config } = this.#deps;
    if (!processors) return processor;
    return processors.get(name) ?? (name === config.processor ? processor : undefined);
  }

  #abort(runId: string, reason: AbortReason): void {
    if (this.#active.has(runId)) this.#worker?.cancelJob(runId, reason);
  }

  /**
   * Stops taking jobs and lets active runs finish; past the grace period they are aborted through their
   * signal (and end `failed`). Safe to call twice.
   */
  close(graceMs = this.#deps.config.shutdownGraceMs): Promise<void> {
    this.#closing ??= (async () => {
      const worker = this.#worker;
      if (worker) {
        const timer = setTimeout(() => worker.cancelAllJobs('shutdown'), graceMs);
        try {
          await worker.close();
        } finally {
          clearTimeout(timer);
        }
      }
      if (this.#subscriber) {
        await this.#subscriber.quit().catch(() => this.#subscriber?.disconnect());
      }
    })();
    return this.#closing;
  }
}
