import { randomUUID } from 'node:crypto';
import type { RedisClient } from './connection.ts';

/**
 * Takes the lease when it is free, or extends it when this holder has it.
 * KEYS[1] the lease key   ARGV[1] the holder's token   ARGV[2] time to live (ms)
 * Returns 1 when the caller holds the lease now, 0 when someone else does.
 */
const HOLD = `
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if holder then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`;

/**
 * Gives the lease up, only if the caller still holds it: a holder whose lease expired and was taken by
 * another must not delete the new holder's.
 * KEYS[1] the lease key   ARGV[1] the holder's token   Returns 1 when released.
 */
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

type LeaseCommands = {
  rh_leaseHold(key: string, token: string, ttlMs: number): Promise<number>;
  rh_leaseRelease(key: string, token: string): Promise<number>;
};

/**
 * A lease on a chore that one process at a time should do: a Redis key holding the holder's random
 * token, with a time to live. The holder extends it while it works; if it crashes, the key expires and
 * another process takes it at its next try. Release and extension check the token, so a holder that
 * stalled past its lease can never take the lease back from, or delete it under, the next holder.
 */
export class Lease {
  readonly token = randomUUID();
  readonly #redis: RedisClient & LeaseCommands;

  constructor(
    redis: RedisClient,
    readonly key: string,
    readonly ttlMs: number,
  ) {
    const r = redis as RedisClient & Partial<LeaseCommands>;
    if (typeof r.rh_leaseHold !== 'function') redis.defineCommand('rh_leaseHold', { numberOfKeys: 1, lua: HOLD });
    if (typeof r.rh_leaseRelease !== 'function') redis.defineCommand('rh_leaseRelease', { numberOfKeys: 1, lua: RELEASE });
    this.#redis = redis as RedisClient & LeaseCommands;
  }

  /** True when this holder has the lease for the next `ttlMs` (taken now or extended); false when another has it. */
  async hold(): Promise<boolean> {
    return (await this.#redis.rh_leaseHold(this.key, this.token, this.ttlMs)) === 1;
  }

  /** Gives the lease up if this holder still has it; true when it did. */
  async release(): Promise<boolean> {
    return (await this.#redis.rh_leaseRelease(this.key, this.token)) === 1;
  }
}
