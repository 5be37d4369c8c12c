import { randomUUID } from 'node:crypto';
import type { Logger } from '../logger.ts';
import type { RunUsage } from '../runs/schema.ts';
import type { RunStore } from '../runs/store.ts';
import type { EmittedMessage, ProcessorContext } from './processor.ts';

/** Why the worker aborted a processor's signal. */
export type AbortReason = 'cancelled' | 'shutdown' | 'superseded';

export class RunAbort extends Error {
  constructor(readonly reason: AbortReason) {
    super(`run aborted: ${reason}`);
    this.name = 'RunAbort';
  }
}

/**
 * The context one attempt's processor writes through. Messages are sent without waiting (one
 * connection keeps them in order) and `flush()` waits for all of them before the run is moved on, so the
 * terminal transition always follows the last message.
 */
export class RunContext implements ProcessorContext {
  readonly #pending = new Set<Promise<unknown>>();
  #failure: Error | undefined;
  #usage: RunUsage | null = null;

  constructor(
    readonly runId: string,
    readonly attempt: number,
    readonly log: Logger,
    private readonly store: RunStore,
    private readonly controller: AbortController,
  ) {}

  emit(message: EmittedMessage): Promise<number> {
    const full = {
      ...message,
      id: message.id ?? `message-${randomUUID()}`,
      date: new Date().toISOString(),
      run_id: this.runId,
    };
    const p = this.store.emit(this.runId, this.attempt, full).then(
      (seq) => {
        // 0: the run was cancelled or another attempt took over; this one must stop.
        if (seq === 0 && !this.controller.signal.aborted) this.controller.abort(new RunAbort('superseded'));
        return seq;
      },
      (err: Error) => {
        this.#failure ??= err;
        throw err;
      },
    );
    this.#pending.add(p);
    void p.catch(() => {}).finally(() => this.#pending.delete(p));
    return p;
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

  get usage(): RunUsage | null {
    return this.#usage;
  }

  /** Waits for every message written so far; throws the first write that failed. */
  async flush(): Promise<void> {
    await Promise.allSettled([...this.#pending]);
    if (this.#failure) throw this.#failure;
  }
}
