import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CallbackBreaker, MAX_HOSTS } from '../../src/callbacks/breaker.ts';
import type { DeliveryResult } from '../../src/callbacks/deliver.ts';
import { RunKeys } from '../../src/runs/keys.ts';
import { closeRedis, connect } from '../helpers/setup.ts';

const failed: DeliveryResult = { statusCode: 503, error: 'HTTP 503', durationMs: 1, final: false };
const answered: DeliveryResult = { statusCode: 200, error: null, durationMs: 1, final: false };

/**
 * breaker.lua's states, step by step, on a real Redis with a clock the test moves (every caller passes
 * its time, so two breakers on one key with one clock behave as two workers).
 */
describe('the callback breaker, step by step', () => {
  let redis: Redis;
  let t = 1_000_000;
  const config = { callbackBreakerFailures: 3, callbackBreakerOpenMs: 1_000, callbackBreakerMaxOpenMs: 3_000, callbackTimeoutMs: 100 };
  /** A probe's lease: 3 × timeout + 1 s. */
  const LEASE = 3 * 100 + 1_000;
  let keys: RunKeys;
  let a: CallbackBreaker;
  let b: CallbackBreaker;

  beforeAll(async () => {
    redis = await connect();
    keys = new RunKeys(`{t-breaker-${process.pid}-${Date.now()}}`);
    a = new CallbackBreaker(redis, keys, config, () => t);
    b = new CallbackBreaker(redis, keys, config, () => t);
  });
  afterAll(() => closeRedis(redis));

  const fail = async (breaker: CallbackBreaker, host: string) => breaker.report(host, await breaker.acquire(host), failed);
  const stateOf = async (host: string) => (await a.hosts(MAX_HOSTS)).find((x) => x.host === host);

  it('stays ok below the threshold, and an answer forgets the failures', async () => {
    await fail(a, 'h1');
    await fail(b, 'h1');
    expect(await stateOf('h1')).toMatchObject({ state: 'ok', consecutive_failures: 2, next_probe_at: null });
    const gate = await a.acquire('h1');
    expect(gate).toEqual({ kind: 'go', failures: 2 });
    await a.report('h1', gate, answered);
    expect(await stateOf('h1')).toMatchObject({ state: 'ok', consecutive_failures: 0 });
    // A 404 is an answer too: the host is up.
    await fail(a, 'h1');
    await a.report('h1', await a.acquire('h1'), { statusCode: 404, error: 'HTTP 404', durationMs: 1, final: false });
    expect((await stateOf('h1'))?.consecutive_failures).toBe(0);
  });

  it('opens at the threshold; deliveries wait until the probe time, then exactly one goes as the probe', async () => {
    for (let i = 0; i < 3; i++) await fail(i % 2 ? a : b, 'h2');
    expect(await stateOf('h2')).toMatchObject({ state: 'open', consecutive_failures: 3, next_probe_at: new Date(t + 1_000).toISOString() });
    expect(await a.acquire('h2')).toEqual({ kind: 'wait', untilMs: t + 1_000 });
    t += 1_000;
    const probe = await a.acquire('h2');
    expect(probe.kind).toBe('probe');
    // Another worker, at the same moment: the lease is taken, so it waits (at most the open period).
    expect(await b.acquire('h2')).toEqual({ kind: 'wait', untilMs: t + 1_000 });
    expect((await stateOf('h2'))?.state).toBe('half_open');

    // The probe fails: open again for twice as long; then three times... capped at the max.
    await a.report('h2', probe, failed);
    expect(await stateOf('h2')).toMatchObject({ state: 'open', consecutive_failures: 4, next_probe_at: new Date(t + 2_000).toISOString() });
    t += 2_000;
    await fail(b, 'h2');
    expect((await stateOf('h2'))?.next_probe_at).toBe(new Date(t + 3_000).toISOString());
    t += 3_000;
    await fail(a, 'h2');
    expect((await stateOf('h2'))?.next_probe_at).toBe(new Date(t + 3_000).toISOString());
  });

  it("counts a straggler's failure (a delivery begun before it opened) without touching the probe", async () => {
    t += 3_000;
    const probe = await a.acquire('h2');
    expect(probe.kind).toBe('probe');
    const before = await stateOf('h2');
    await b.report('h2', { kind: 'go', failures: 0 }, failed);
    expect(await stateOf('h2')).toMatchObject({ state: 'half_open', consecutive_failures: (before?.consecutive_failures ?? 0) + 1 });
    expect((await b.acquire('h2')).kind).toBe('wait');

    // The probe's worker died: once its lease lapses, another delivery becomes the probe.
    t += LEASE + 1;
    const next = await b.acquire('h2');
    expect(next.kind).toBe('probe');
    // The dead probe's late failure report names the old lease: it is counted, it does not reopen.
    await a.report('h2', probe, failed);
    expect((await stateOf('h2'))?.state).toBe('half_open');
    // The new probe gets an answer: closed, failures forgotten, every delivery goes.
    await b.report('h2', next, answered);
    expect(await stateOf('h2')).toMatchObject({ state: 'ok', consecutive_failures: 0, next_probe_at: null });
    expect(await a.acquire('h2')).toEqual({ kind: 'go', failures: 0 });
  });

  it('keeps at most MAX_HOSTS hosts, forgetting the one changed longest ago with its hash', async () => {
    const before = await redis.zcard(keys.callbackHosts);
    for (let i = 0; i < MAX_HOSTS - before + 1; i++) {
      t += 1;
      await a.report(`many-${i}`, { kind: 'go', failures: 0 }, failed);
    }
    expect(await redis.zcard(keys.callbackHosts)).toBe(MAX_HOSTS);
    // h1 changed first of all: it is the one forgotten, and its hash with it.
    expect(await redis.zscore(keys.callbackHosts, 'h1')).toBeNull();
    expect(await redis.exists(keys.callbackHost('h1'))).toBe(0);
    expect(await redis.zscore(keys.callbackHosts, 'h2')).not.toBeNull();
  });
});
