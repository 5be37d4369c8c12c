/**
 * Where a run lives in Redis. Every key starts with the deployment's hash tag (`{runhook}`), so that on
 * a Redis Cluster the run store and the BullMQ queues share one slot and the Lua scripts may touch them
 * together.
 */
export class RunKeys {
  constructor(readonly prefix: string) {}

  run(id: string): string {
    return `${this.prefix}:run:${id}`;
  }

  messages(id: string): string {
    return `${this.prefix}:msgs:${id}`;
  }

  /**
   * An ended run's messages, compacted from its stream into one string of `seq\tfield\tvalue` lines: a
   * small stream costs ~4 KiB in Redis (its node is preallocated), a short string a few hundred bytes.
   */
  messageLog(id: string): string {
    return `${this.prefix}:mlog:${id}`;
  }

  callbackAttempts(id: string): string {
    return `${this.prefix}:cb:attempts:${id}`;
  }

  idempotency(key: string): string {
    return `${this.prefix}:idem:${key}`;
  }

  get expiry(): string {
    return `${this.prefix}:expiry`;
  }

  /** Deleted runs' places in creation order (id → seq), so that a list cursor naming one still pages on. */
  get cursorTombstones(): string {
    return `${this.prefix}:runs:gone`;
  }

  /** Runs by callback state: delivered, retrying, given_up. */
  get callbackCounts(): string {
    return `${this.prefix}:cb:counts`;
  }

  get callbackOutbox(): string {
    return `${this.prefix}:cb:outbox`;
  }

  index(kind: 'all' | 'agent' | 'status' | 'conv' | 'stop' | 'bg', value?: string): string {
    return value === undefined ? `${this.prefix}:idx:${kind}` : `${this.prefix}:idx:${kind}:${value}`;
  }
}
