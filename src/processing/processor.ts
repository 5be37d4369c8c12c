import type { Logger } from '../logger.ts';
import type { Run, RunUsage, StopReasonType } from '../runs/schema.ts';
import type { StepInput } from '../runs/steps.ts';

/** A message as a processor emits it: a Letta message; id, date and run_id are filled in if absent. */
export interface EmittedMessage {
  message_type: string;
  id?: string;
  [field: string]: unknown;
}

export interface ProcessorContext {
  readonly runId: string;
  readonly attempt: number;
  readonly log: Logger;
  /**
   * Appends a message to the run, in order; the first one of an attempt sets ttft_ns. It does not need to
   * be awaited (writes are pipelined and a failure surfaces when the processor returns); await it to
   * learn the message's seq id.
   */
  emit(message: EmittedMessage): Promise<number>;
  /** Adds to the run's usage; the totals are stored when the run ends. */
  reportUsage(usage: Partial<RunUsage>): void;
  /**
   * Records a step (Letta's `Step`: one model call, its tokens and timings) and returns its id
   * (`step-<uuid>`). Like `emit`, the write rides with the next batch of messages or with the run's end, so
   * it is atomic with them; a retried attempt starts with no steps. The run's `usage.step_count` is the
   * number of steps; a step's tokens are not added to the run's usage (report those with `reportUsage`
   * or the result). Throws a ZodError at once on invalid input.
   */
  step(input: StepInput): string;
}

export interface ProcessorArgs {
  run: Run;
  input: unknown;
  /** Aborted when the run is cancelled or the worker shuts down past its grace period. */
  signal: AbortSignal;
  context: ProcessorContext;
}

export interface ProcessorResult {
  stop_reason?: StopReasonType;
  usage?: Partial<RunUsage>;
}

export interface Processor {
  readonly name: string;
  run(args: ProcessorArgs): Promise<ProcessorResult | void>;
}

/** Makes a processor; a module named by RUNHOOK_PROCESSOR default-exports one. */
export function defineProcessor(p: Processor | { name?: string; run: Processor['run'] } | Processor['run']): Processor {
  if (typeof p === 'function') return { name: p.name || 'anonymous', run: p };
  return { name: p.name ?? 'anonymous', run: p.run.bind(p) };
}

/**
 * Thrown by a processor to end the run `failed` with a given stop reason; with `retry: false` the run
 * fails at once instead of being tried again.
 */
export class RunFailure extends Error {
  readonly stopReason: StopReasonType;
  readonly retry: boolean;
  constructor(message: string, options: { stopReason?: StopReasonType; retry?: boolean } = {}) {
    super(message);
    this.name = 'RunFailure';
    this.stopReason = options.stopReason ?? 'error';
    this.retry = options.retry ?? true;
  }
}

/** Resolves after `ms`, or rejects with the signal's reason as soon as it aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (ms <= 0 && !signal?.aborted) return Promise.resolve();
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
