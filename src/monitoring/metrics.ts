import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Logger } from '../logger.ts';
import type { Runhook } from '../runhook.ts';
import type { RunStatus } from '../runs/schema.ts';
import type { CallbackState } from '../runs/store.ts';
import { readQueuesReport } from './queue-state.ts';
import { QUEUE_NAMES, JOB_STATES, type QueuesReport } from './schemas.ts';

/** What the run worker reports: a run it moved to a terminal status. */
export interface RunObserver {
  /** `processor`: the run's processor name (a label of the run histograms). */
  runEnded(status: RunStatus, totalDurationNs: number | undefined, ttftNs: number | null | undefined, processor?: string): void;
}

/** What the callback worker reports: one recorded delivery attempt. */
export interface CallbackObserver {
  callbackAttempt(outcome: CallbackState, durationMs: number): void;
}

/** What the reconciler reports: one pass this process made (it holds the reconcile lease), and its repairs. */
export interface ReconcileObserver {
  reconcilePass(durationMs: number, repairs: Record<'requeued' | 'completed' | 'failed', number>): void;
}

/** How long a scrape may wait for Redis before it answers with what it has (and `…_up 0`). */
const STATE_TIMEOUT_MS = 3_000;

let processRegistry: Registry | undefined;

/**
 * Node's process metrics (CPU, memory, event loop, GC) belong to the process, not to a service:
 * collected once per process into a registry of its own (never prom-client's global one), because each
 * collection starts an event-loop monitor and a GC observer that cannot be stopped.
 */
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

const seconds = (ms: number) => ms / 1000;

/**
 * The Prometheus metrics of one runhook process. Histograms and counters are observed where things
 * happen (the run worker, the callback worker, the API); queue depth, runs by status and callbacks by
 * state are read from Redis when scraped, with the same handful of calls as GET /v1/queues. Labels are
 * small, fixed sets: queue, state, status, outcome, route template; never a run id.
 */
export class Metrics implements RunObserver, CallbackObserver, ReconcileObserver {
  readonly registry = new Registry();
  readonly #runhook: Runhook;
  readonly #log: Logger;

  readonly #histogram = <L extends string>(name: string, help: string, labelNames: readonly L[], buckets: number[]) =>
    new Histogram<L>({ name, help, labelNames, buckets, registers: [this.registry] });
  readonly #gauge = <L extends string>(name: string, help: string, labelNames: readonly L[] = []) =>
    new Gauge<L>({ name, help, labelNames, registers: [this.registry] });
  readonly #counter = <L extends string>(name: string, help: string, labelNames: readonly L[]) =>
    new Counter<L>({ name, help, labelNames, registers: [this.registry] });

  // Observed where things happen.
  readonly #runDuration = this.#histogram(
    'runhook_run_duration_seconds',
    'From created_at to the terminal status, of runs a worker of this process ended',
    ['status', 'processor'],
    [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600],
  );
  readonly #ttft = this.#histogram(
    'runhook_run_ttft_seconds',
    "From created_at to the processor's first token, of runs a worker of this process ended",
    ['processor'],
    [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
  );
  readonly #callbackAttempts = this.#counter(
    'runhook_callback_attempts_total',
    'Callback delivery attempts made by this process, by outcome: delivered, retrying (failed, will be retried), given_up',
    ['outcome'],
  );
  readonly #callbackDuration = this.#histogram(
    'runhook_callback_duration_seconds',
    'How long one callback delivery attempt took, by outcome',
    ['outcome'],
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  );
  readonly #http = this.#histogram(
    'runhook_http_request_duration_seconds',
    'API requests by method, route template and status code',
    ['method', 'route', 'status_code'],
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  );
  readonly #reconcileDuration = this.#histogram(
    'runhook_reconcile_duration_seconds',
    'How long one reconciler pass took, of passes made by this process (one process at a time holds the reconcile lease)',
    [],
    [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
  );
  readonly #reconcileRepairs = this.#counter(
    'runhook_reconcile_repairs_total',
    'Runs the reconciler of this process repaired, by kind: requeued (a created run without a job), completed, failed',
    ['kind'],
  );

  // Read from Redis at each scrape.
  readonly #queueJobs = this.#gauge('runhook_queue_jobs', 'Jobs in a queue by state (BullMQ)', ['queue', 'state']);
  readonly #queuePaused = this.#gauge('runhook_queue_paused', '1 when the queue is paused', ['queue']);
  readonly #queueWorkers = this.#gauge('runhook_queue_workers', 'Workers connected to the queue, in all processes', ['queue']);
  readonly #queueOldest = this.#gauge('runhook_queue_oldest_waiting_seconds', 'Age of the job that has waited longest; 0 when none waits', [
    'queue',
  ]);
  readonly #queueFinished = this.#counter(
    'runhook_queue_jobs_finished_total',
    'Jobs finished since the queue was created, by final state (BullMQ metrics; the same in every process)',
    ['queue', 'state'],
  );
  readonly #runs = this.#gauge('runhook_runs', 'Runs in the store by status (terminal runs are kept for the retention period)', ['status']);
  readonly #callbacks = this.#gauge('runhook_callbacks', 'Runs by callback state: delivered, retrying, given_up', ['state']);
  readonly #breakers = this.#gauge('runhook_callback_breakers', 'Receiver hosts by callback breaker state: ok, open, half_open (no host label)', ['state']);
  readonly #flowWaiting = this.#gauge('runhook_flow_waiting_runs', 'Created runs flow control holds, by reason: conversation (behind an earlier run), limit', ['reason']);
  readonly #stateUp = this.#gauge('runhook_queue_state_up', '1 when this scrape could read the queue state from Redis');

  constructor({ runhook, log }: { runhook: Runhook; log: Logger }) {
    this.#runhook = runhook;
    this.#log = log;
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The durations come from the terminal move itself, so they are the Run's own `ttft_ns` and `total_duration_ns`. */
  runEnded(status: RunStatus, totalDurationNs: number | undefined, ttftNs: number | null | undefined, processor = 'unknown'): void {
    if (totalDurationNs !== undefined) this.#runDuration.observe({ status, processor }, totalDurationNs / 1e9);
    if (ttftNs !== null && ttftNs !== undefined) this.#ttft.observe({ processor }, ttftNs / 1e9);
  }

  callbackAttempt(outcome: CallbackState, durationMs: number): void {
    this.#callbackAttempts.inc({ outcome });
    this.#callbackDuration.observe({ outcome }, seconds(durationMs));
  }

  reconcilePass(durationMs: number, repairs: Record<'requeued' | 'completed' | 'failed', number>): void {
    this.#reconcileDuration.observe(seconds(durationMs));
    // Every kind, zeros too: a series that exists from the first pass can be rated and alerted on.
    for (const kind of ['requeued', 'completed', 'failed'] as const) this.#reconcileRepairs.inc({ kind }, repairs[kind]);
  }

  /** Live-stream watchers and the Redis connections that serve them, read from `source` at each scrape. */
  observeStreams(source: { readonly watchers: number; readonly connections: number }): void {
    const live = (name: string, help: string, read: () => number) =>
      new Gauge({ name, help, registers: [this.registry], collect() { this.set(read()); } });
    live('runhook_stream_watchers', 'SSE clients following a live run in this process', () => source.watchers);
    live('runhook_stream_reader_connections', 'Redis connections this process reads live streams with (one, however many watchers)', () => source.connections);
  }

  observeRequest(method: string, route: string, statusCode: number, durationMs: number): void {
    this.#http.observe({ method, route, status_code: String(statusCode) }, seconds(durationMs));
  }

  /** The exposition text: queue state read now, then everything observed so far and the process metrics. */
  async render(): Promise<string> {
    await this.#refresh();
    return Registry.merge([processMetrics(), this.registry]).metrics();
  }

  async #refresh(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    try {
      const report = await Promise.race([
        readQueuesReport(this.#runhook),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${STATE_TIMEOUT_MS} ms`)), STATE_TIMEOUT_MS);
        }),
      ]);
      this.#set(report);
      this.#stateUp.set(1);
    } catch (err) {
      // Stale numbers would read as real ones: drop them, and say why in `…_up`.
      for (const g of [this.#queueJobs, this.#queuePaused, this.#queueWorkers, this.#queueOldest, this.#runs, this.#callbacks, this.#breakers, this.#flowWaiting]) g.reset();
      this.#queueFinished.reset();
      this.#stateUp.set(0);
      this.#log.warn({ err: (err as Error).message }, 'metrics: queue state not read');
    } finally {
      clearTimeout(timer);
    }
  }

  #set(report: QueuesReport): void {
    // Counters cannot be set; this one mirrors a counter kept in Redis, so it is rebuilt each scrape.
    this.#queueFinished.reset();
    for (const name of QUEUE_NAMES) {
      const q = report.queues[name];
      for (const state of JOB_STATES) this.#queueJobs.set({ queue: name, state }, q.counts[state]);
      this.#queuePaused.set({ queue: name }, q.paused ? 1 : 0);
      this.#queueWorkers.set({ queue: name }, q.workers.length);
      this.#queueOldest.set({ queue: name }, q.oldest_waiting ? seconds(q.oldest_waiting.age_ms) : 0);
      this.#queueFinished.inc({ queue: name, state: 'completed' }, q.throughput.completed_total);
      this.#queueFinished.inc({ queue: name, state: 'failed' }, q.throughput.failed_total);
    }
    for (const [status, n] of Object.entries(report.runs_by_status)) this.#runs.set({ status }, n);
    for (const [state, n] of Object.entries(report.callbacks_by_state)) this.#callbacks.set({ state }, n);
    const hosts = report.callback_hosts;
    if (hosts) for (const state of ['ok', 'open', 'half_open'] as const) this.#breakers.set({ state }, hosts[state]);
    if (report.flow) {
      this.#flowWaiting.set({ reason: 'conversation' }, report.flow.waiting_on_conversation);
      this.#flowWaiting.set({ reason: 'limit' }, report.flow.waiting_on_limit);
    }
  }
}
