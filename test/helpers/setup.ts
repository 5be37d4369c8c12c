import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, inject } from 'vitest';
import { withConfig, type Config } from '../../src/config.ts';
import { createLogger, type Logger } from '../../src/logger.ts';
import { closeRedis, createRedis, ready } from '../../src/queue/connection.ts';
import { Runhook } from '../../src/runhook.ts';
import { RunStore } from '../../src/runs/store.ts';

/** The suite's own redis-server (see global-setup.ts). */
export function redisUrl(): string {
  return inject('redisUrl');
}

/** A config for one test file: the suite's Redis, a prefix of its own, short timings. */
export function testConfig(overrides: Partial<Config> = {}): Config {
  return withConfig({
    redisUrl: redisUrl(),
    keyPrefix: `{t-${randomUUID().slice(0, 8)}}`,
    logLevel: 'silent',
    runBackoffMs: 10,
    maintenanceIntervalMs: 60_000,
    createdGraceMs: 0,
    shutdownGraceMs: 2_000,
    callbackAllowPrivate: true,
    callbackRetryDelaysMs: [0, 20, 40],
    ...overrides,
  });
}

export const silentLog: Logger = createLogger(process.env.TEST_LOG_LEVEL ?? 'silent');

/** A worker-role connection to the suite's Redis, closed by the returned release. */
export async function connect(): Promise<Redis> {
  // The suite's Redis is a single server, so the client is a plain Redis.
  const redis = createRedis(redisUrl(), 'worker') as Redis;
  await ready(redis);
  return redis;
}

export { closeRedis };

/** Polls until `check` returns a value other than undefined/false, or fails after `timeoutMs`. */
export async function waitFor<T>(check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 15_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v as T;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A Runhook (store and queues) on its own connection to the suite's Redis, for tests that drive runs directly. */
export async function openTestRunhook(config: Config): Promise<Runhook> {
  return new Runhook(config, await connect(), silentLog);
}

/** Closes a Runhook from openTestRunhook and its connection. */
export async function closeTestRunhook(runhook: Runhook | undefined): Promise<void> {
  if (!runhook) return;
  await runhook.close();
  await closeRedis(runhook.redis);
}

/** A RunStore on a connection of its own, opened before the enclosing describe's (or file's) tests and closed after. */
export function useTestStore(overrides: Partial<Config> = {}): { readonly config: Config; readonly redis: Redis; readonly store: RunStore } {
  const config = testConfig(overrides);
  const t = { config } as { config: Config; redis: Redis; store: RunStore };
  beforeAll(async () => {
    t.redis = await connect();
    t.store = new RunStore(t.redis, { keyPrefix: config.keyPrefix, retentionMs: config.retentionMs });
  });
  afterAll(() => closeRedis(t.redis));
  return t;
}
