import type { Logger } from './logger.ts';

/**
 * A periodic chore: runs at start and then every `intervalMs`, never two at once, and a failing round
 * is logged and tried again next time (Redis may be down for a while).
 */
export class Periodic {
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #closed = false;

  constructor(
    private readonly name: string,
    private readonly intervalMs: number,
    private readonly task: () => Promise<unknown>,
    private readonly log: Logger,
  ) {}

  start(): void {
    if (this.#timer || this.#closed) return;
    void this.tick();
    this.#timer = setInterval(() => void this.tick(), this.intervalMs);
    this.#timer.unref();
  }

  /** One round now (or the one in progress). */
  tick(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#running ??= this.task()
      .then(() => undefined)
      .catch((err: Error) => this.log.warn({ task: this.name, err: err.message }, 'periodic task failed'))
      .finally(() => {
        this.#running = undefined;
      });
    return this.#running;
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    await this.#running;
  }
}
