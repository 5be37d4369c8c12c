import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import type { Config } from '../config.ts';
import type { RedisClient } from '../queue/connection.ts';
import type { RunKeys } from '../runs/keys.ts';
import type { DeliveryResult } from './deliver.ts';

export const BreakerState = z.enum(['ok', 'open', 'half_open']);
export type BreakerState = z.infer<typeof BreakerState>;

/** One receiver host as GET /v1/callbacks/hosts lists it. */
export const CallbackHost = z
  .object({
    host: z.string().describe('host:port of the callback URLs it receives'),
    state: BreakerState,
    consecutive_failures: z.number().int().nonnegative(),
    /** When the next probe may go (open) or the probe in flight lapses (half_open); null when ok. */
    next_probe_at: z.string().nullable(),
    updated_at: z.string(),
  })
  .meta({ id: 'CallbackHost' });
export type CallbackHost = z.infer<typeof CallbackHost>;

/** What a delivery may do now: go; go as the one probe of an open breaker; or wait until `untilMs`. */
export type Gate = { kind: 'go'; failures: number } | { kind: 'probe'; token: string } | { kind: 'wait'; untilMs: number };

/** Hosts kept in the hosts set (the one changed longest ago is forgotten past it). */
export const MAX_HOSTS = 1_000;

const LUA = readFileSync(new URL('./lua/breaker.lua', import.meta.url), 'utf8');

/** The host a breaker is kept for: host and port of the URL (two receivers on one machine are two hosts). */
export function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url.slice(0, 200);
  }
}

/**
 * Whether a delivery's outcome says the host is answering. A 2xx, and any 4xx but 408/429, are answers
 * (the receiver is up, even if it refuses this callback); no response, a 5xx, 408 and 429 are failures
 * of the host. A final outcome that never reached a host (an unusable URL) says nothing.
 */
export function hostOutcome(r: DeliveryResult): 'answered' | 'failed' | 'none' {
  if (r.error === null) return 'answered';
  if (r.statusCode === null) return r.final ? 'none' : 'failed';
  return r.statusCode >= 500 || r.statusCode === 408 || r.statusCode === 429 ? 'failed' : 'answered';
}

/**
 * Per-host circuit breakers in Redis, shared by every callback worker (breaker.lua does each step
 * atomically). A dead receiver therefore costs one probe at a time across the deployment, and the
 * deliveries held for it spend no attempt of their schedule.
 */
export class CallbackBreaker {
  readonly #redis: RedisClient & { rh_breaker?: (...args: (string | number)[]) => Promise<unknown> };

  constructor(
    redis: RedisClient,
    private readonly keys: RunKeys,
    private readonly config: Pick<Config, 'callbackBreakerFailures' | 'callbackBreakerOpenMs' | 'callbackBreakerMaxOpenMs' | 'callbackTimeoutMs'>,
    /** Epoch ms; every caller must agree on it, so it is the wall clock outside tests. */
    private readonly now: () => number = Date.now,
  ) {
    this.#redis = redis;
    if (typeof this.#redis.rh_breaker !== 'function') redis.defineCommand('rh_breaker', { numberOfKeys: 2, lua: LUA });
  }

  async #call(op: 'acquire' | 'answered' | 'failed', host: string, token: string): Promise<[string, number, number]> {
    const c = this.config;
    const r = (await this.#redis.rh_breaker!(
      this.keys.callbackHost(host),
      this.keys.callbackHosts,
      op,
      host,
      this.now(),
      c.callbackBreakerFailures,
      c.callbackBreakerOpenMs,
      c.callbackBreakerMaxOpenMs,
      // A probe's lease outlasts its longest attempt (connect, headers and body each bounded by the timeout).
      3 * c.callbackTimeoutMs + 1_000,
      token,
      this.keys.callbackHost(''),
      MAX_HOSTS,
    )) as [string, number, number];
    return [r[0], Number(r[1]), Number(r[2])];
  }

  /** Asked before each delivery to `host`. */
  async acquire(host: string): Promise<Gate> {
    const token = randomUUID();
    const [kind, failures, until] = await this.#call('acquire', host, token);
    if (kind === 'go') return { kind, failures };
    if (kind === 'probe') return { kind, token };
    return { kind: 'wait', untilMs: until };
  }

  /**
   * Told after each delivery the gate let through. A success to a host with no failure on record costs
   * no round trip: the breaker has nothing to change.
   */
  async report(host: string, gate: Gate, result: DeliveryResult): Promise<void> {
    const outcome = hostOutcome(result);
    if (outcome === 'none' || gate.kind === 'wait') return;
    if (outcome === 'answered' && gate.kind === 'go' && gate.failures === 0) return;
    await this.#call(outcome, host, gate.kind === 'probe' ? gate.token : '');
  }

  /** The hosts with a breaker on record, most recently changed first. */
  async hosts(limit = 100): Promise<CallbackHost[]> {
    const entries = await this.#redis.zrevrange(this.keys.callbackHosts, 0, limit - 1, 'WITHSCORES');
    const hosts: { host: string; at: number }[] = [];
    for (let i = 0; i < entries.length; i += 2) hosts.push({ host: entries[i]!, at: Number(entries[i + 1]) });
    const hashes = await Promise.all(hosts.map((h) => this.#redis.hmget(this.keys.callbackHost(h.host), 'state', 'failures', 'next_probe', 'lease_until')));
    return hosts.map(({ host, at }, i) => {
      const [state, failures, nextProbe, leaseUntil] = hashes[i]!;
      const s = BreakerState.safeParse(state).success ? (state as BreakerState) : 'ok';
      const next = s === 'half_open' ? Number(leaseUntil ?? 0) : s === 'open' ? Number(nextProbe ?? 0) : 0;
      return {
        host,
        state: s,
        consecutive_failures: Number(failures ?? 0),
        next_probe_at: next > 0 ? new Date(next).toISOString() : null,
        updated_at: new Date(at).toISOString(),
      };
    });
  }
}
