import { randomUUID } from 'node:crypto';
import { nowMicros } from '../clock.ts';
import type { Logger } from '../logger.ts';
import type { RunUsage } from '../runs/schema.ts';
import type { RunRecord } from '../runs/record.ts';
import { encodeStep, MAX_STEPS_PER_RUN, stepIdOf, type StepInput, type StepWrites } from '../runs/steps.ts';
import type { RunStore } from '../runs/store.ts';
import type { EmittedMessage, ProcessorContext } from './processor.ts';

/** Why the worker aborted a processor's signal (the signal's `reason`, as BullMQ's `cancelJob` passes it). */
export type AbortReason = 'cancelled' | 'shutdown' | 'superseded';

const ABORT_REASONS: ReadonlySet<string> = new Set<AbortReason>(['cancelled', 'shutdown', 'superseded']);

/** The worker's reason for an aborted signal, whatever the processor threw after it. */
export function abortReasonOf(signal: AbortSignal): AbortReason | undefined {
  if (!signal.aborted) return undefined;
  const reason: unknown = signal.reason;
  if (reason instanceof RunAbort) return reason.reason;
  return typeof reason === 'string' && ABORT_REASONS.has(reason) ? (reason as AbortReason) : undefined;
}

export class RunAbort extends Error {
  constructor(readonly reason: AbortReason) {
    super(`run aborted: ${reason}`);
    this.name = 'RunAbort';
  }
}

interface Buffered {
  json: string;
  /** When the processor emitted it (epoch µs). */
  atUs: number;
  resolve(seq: number): void;
  reject(err: Error): void;
}

/**
 * The context one attempt's processor writes through. Messages (and steps) emitted within one turn of
 * the event loop go to Redis together, one script call, on the next turn; those still waiting when the
 * processor returns ride along with the run's terminal move instead (`takeBuffered`, `takeSteps`), so a
 * fast processor costs one script call fewer. One connection keeps every write in order, and `flush()` waits
 * for all of them, so the terminal move always follows the last message.
 */
export class RunContext implements ProcessorContext {
  readonly #pending = new Set<Promise<unknown>>();
  #buffer: Buffered[] = [];
  #timer: NodeJS.Immediate | undefined;
  #failure: Error | undefined;
  #usage: RunUsage | null = null;
  /** Steps recorded and not yet sent (run-hash field, value, …), and how many this attempt recorded in all. */
  #steps: string[] = [];
  #stepCount = 0;
  readonly runId: string;
  readonly #createdUs: number;

  constructor(
    record: Pick<RunRecord, 'run' | 'createdUs'>,
    readonly attempt: number,
    readonly log: Logger,
    private readonly store: RunStore,
    private readonly signal: AbortSignal,
    /** Aborts this attempt's signal (BullMQ's `worker.cancelJob`). */
    private readonly abort: (reason: AbortReason) => void,
    /** The name of the processor the run runs (for metrics and logs). */
    readonly processor = 'unknown',
  ) {
    this.runId = record.run.id;
    this.#createdUs = record.createdUs;
  }

  emit(message: EmittedMessage): Promise<number> {
    const json = JSON.stringify({
      ...message,
      id: message.id ?? `message-${randomUUID()}`,
      date: new Date().toISOString(),
      run_id: this.runId,
    });
    return new Promise<number>((resolve, reject) => {
      this.#buffer.push({ json, atUs: nowMicros(), resolve, reject });
      this.#timer ??= setImmediate(() => this.#send());
    });
  }

  /** Sends what is buffered now, as one batch. */
  #send(): void {
    this.#timer = undefined;
    const batch = this.#takeAll();
    const steps = this.takeSteps();
    if (batch.length === 0 && steps === null) return;
    const p = this.store.emitMany(this.runId, this.attempt, batch.map((b) => b.json), batch[0]?.atUs ?? nowMicros(), steps).then(
      (first) => this.settle(batch, first),
      (err: Error) => {
        this.#failure ??= err;
        for (const b of batch) b.reject(err);
      },
    );
    this.#pending.add(p);
    void p.finally(() => this.#pending.delete(p));
  }

  #takeAll(): Buffered[] {
    if (this.#timer) clearImmediate(this.#timer);
    this.#timer = undefined;
    const batch = this.#buffer;
    this.#buffer = [];
    return batch;
  }

  /** The messages not sent yet, for the caller to append with the terminal move (then `settle` them). */
  takeBuffered(): Buffered[] {
    return this.#takeAll();
  }

  /** Resolves messages with their seq ids; 0 means the run no longer takes this attempt's messages. */
  settle(batch: readonly Buffered[], firstSeq: number): void {
    // 0: the run was cancelled or another attempt took over; this one must stop.
    if (firstSeq === 0 && !this.signal.aborted) this.abort('superseded');
    batch.forEach((b, i) => b.resolve(firstSeq === 0 ? 0 : firstSeq + i));
  }

  reportUsage(u: Partial<RunUsage>): void {
    const cur = this.#usage ?? { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0, step_count: 0 };
    this.#usage = {
      prompt_tokens: cur.prompt_tokens + (u.prompt_tokens ?? 0),
      completion_tokens: cur.completion_tokens + (u.completion_tokens ?? 0),
      total_tokens: cur.total_tokens + (u.total_tokens ?? 0),
      step_count: cur.step_count + (u.step_count ?? 0),
    };
  }

  step(input: StepInput): string {
    const index = this.#stepCount;
    if (index >= MAX_STEPS_PER_RUN) throw new RangeError(`a run records at most ${MAX_STEPS_PER_RUN} steps`);
    this.#steps.push(...encodeStep(input, this.#createdUs, index));
    this.#stepCount += 1;
    this.#timer ??= setImmediate(() => this.#send());
    return stepIdOf(this.runId, index);
  }

  /** The steps not sent yet (their run-hash fields), for the caller to write with the terminal move; null: none. */
  takeSteps(): StepWrites | null {
    if (this.#steps.length === 0) return null;
    const fields = this.#steps;
    this.#steps = [];
    return { fields };
  }

  /** The run's usage; `step_count` is the number of recorded steps once there is one. */
  get usage(): RunUsage | null {
    if (this.#stepCount === 0) return this.#usage;
    const u = this.#usage ?? { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0, step_count: 0 };
    return { ...u, step_count: this.#stepCount };
  }

  /** Sends anything buffered and waits for every message written so far; throws the first failed write. */
  async flush(): Promise<void> {
    this.#send();
    await Promise.allSettled([...this.#pending]);
    if (this.#failure) throw this.#failure;
  }
}
