import type { RawEntry, StreamSubscriber } from './stream-hub.ts';

/**
 * One client's side of a followed stream: what the hub read for it and the client has not taken yet.
 * The buffer is bounded, so a client that stops reading costs a fixed amount of memory and never holds
 * up the hub's reader or the other watchers; past the bound it is dropped (`onOverflow`) and resumes
 * later with its last seq id.
 */
export class StreamWatcher implements StreamSubscriber {
  #queue: RawEntry[] = [];
  #wake: (() => void) | undefined;
  #overflowed = false;

  constructor(
    /** Entries held for a client before it counts as too far behind. */
    readonly limit: number,
    private readonly onOverflow: () => void,
  ) {}

  get overflowed(): boolean {
    return this.#overflowed;
  }

  push(entries: readonly RawEntry[]): void {
    if (this.#overflowed) return;
    for (const e of entries) this.#queue.push(e);
    if (this.#queue.length > this.limit) {
      this.#overflowed = true;
      this.#queue = [];
      this.onOverflow();
    }
    this.#wake?.();
  }

  /** The entries held now; waits up to `ms` (or until `signal` aborts) when there are none. */
  async take(ms: number, signal: AbortSignal): Promise<RawEntry[]> {
    if (this.#queue.length === 0 && !this.#overflowed && !signal.aborted) {
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          signal.removeEventListener('abort', done);
          this.#wake = undefined;
          resolve();
        };
        const timer = setTimeout(done, ms);
        signal.addEventListener('abort', done, { once: true });
        this.#wake = done;
      });
    }
    const out = this.#queue;
    this.#queue = [];
    return out;
  }
}
