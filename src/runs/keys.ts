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
   * An ended run's messages, compacted from its stream into one string (a small stream costs ~4 KiB in
   * Redis, its node is preallocated; a short string a few hundred bytes), then folded into whole
   * messages: see message-log.ts for its forms.
   */
  messageLog(id: string): string {
    return `${this.prefix}:mlog:${id}`;
  }

  /**
   * An ended run's chunk lines while its replay window is open (see message-log.ts): compressed, and
   * expiring by itself when the window closes.
   */
  messageChunks(id: string): string {
    return `${this.prefix}:mchunk:${id}`;
  }

  /** Ended runs whose message log is not folded yet (id → end, epoch ms); the maintenance pass folds leftovers. */
  get unfoldedLogs(): string {
    return `${this.prefix}:mlog:unfolded`;
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

  /** Runs whose callback was given up, by when (epoch ms): what POST /v1/callbacks/recover walks. */
  get callbackGivenUp(): string {
    return `${this.prefix}:cb:given_up`;
  }

  /** One receiver host's breaker (see callbacks/lua/breaker.lua). */
  callbackHost(host: string): string {
    return `${this.prefix}:cb:host:${host}`;
  }

  /** Receiver hosts with a breaker, by last change (epoch ms). */
  get callbackHosts(): string {
    return `${this.prefix}:cb:hosts`;
  }

  /** A callback recovery operation, and the ids it snapshotted from callbackGivenUp. */
  callbackRecovery(id: string): string {
    return `${this.prefix}:cb:recover:${id}`;
  }

  callbackRecoveryIds(id: string): string {
    return `${this.prefix}:cb:recover:${id}:ids`;
  }

  index(kind: 'all' | 'agent' | 'status' | 'conv' | 'stop' | 'bg', value?: string): string {
    return value === undefined ? `${this.prefix}:idx:${kind}` : `${this.prefix}:idx:${kind}:${value}`;
  }
}
