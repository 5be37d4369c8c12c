/**
 * Deliveries in flight per receiver origin. Up to `limit` at once every receiver gets; past that, only
 * a receiver known to be fast (its deliveries finish well within `slowMs` and none in flight is older)
 * gets more. A receiver that hangs, drips or is new therefore holds at most `limit` delivery slots of a
 * process, and one that answers quickly is never held back.
 */
const MAX_REMEMBERED = 10_000;

export class EndpointSlots {
  readonly #byOrigin = new Map<string, { starts: number[]; avgMs: number | undefined }>();

  constructor(
    private readonly limit: number,
    private readonly slowMs: number,
  ) {}

  /** A release function when the delivery may go now; undefined when it must wait its turn. */
  tryAcquire(origin: string, now = performance.now()): (() => void) | undefined {
    let e = this.#byOrigin.get(origin);
    if (!e) {
      e = { starts: [], avgMs: undefined };
      this.#byOrigin.set(origin, e);
    }
    const entry = e;
    if (entry.starts.length >= this.limit && !this.#fast(entry, now)) return undefined;
    entry.starts.push(now);
    return () => {
      const i = entry.starts.indexOf(now);
      if (i >= 0) entry.starts.splice(i, 1);
      const took = performance.now() - now;
      // A moving average: one slow answer does not brand a receiver, a run of them does.
      entry.avgMs = entry.avgMs === undefined ? took : entry.avgMs * 0.8 + took * 0.2;
      // An idle slow receiver is forgotten (it starts again at `limit`); idle fast ones are kept, up to a
      // bound, so that a burst to a receiver known to be fast is not held back.
      if (entry.starts.length === 0 && (entry.avgMs >= this.slowMs || this.#byOrigin.size > MAX_REMEMBERED)) {
        this.#byOrigin.delete(origin);
      }
    };
  }

  #fast(e: { starts: number[]; avgMs: number | undefined }, now: number): boolean {
    const oldest = e.starts[0];
    return e.avgMs !== undefined && e.avgMs < this.slowMs && (oldest === undefined || now - oldest < this.slowMs);
  }
}
