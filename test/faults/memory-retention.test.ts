import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sweepExpiredRuns } from '../../src/runs/retention.ts';
import { STREAM_LINGER_MS } from '../../src/runs/store.ts';
import { startService, type Service } from '../../src/service.ts';
import { closeRedis, connect, silentLog, testConfig, waitFor } from '../helpers/setup.ts';

const RUNS = 100_000;
const config = testConfig({ concurrency: 50, retentionMs: 30 * 86_400_000 });
let service: Service;
let redis: Redis;

async function usedMemory(): Promise<number> {
  const info = await redis.info('memory');
  return Number(/used_memory:(\d+)/.exec(info)![1]);
}

async function countKeys(pattern = '*'): Promise<number> {
  let n = 0;
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${config.keyPrefix}:${pattern}`, 'COUNT', 5_000);
    n += keys.length;
    cursor = next;
  } while (cursor !== '0');
  return n;
}

beforeAll(async () => {
  redis = await connect();
  service = await startService(config, silentLog, new Set(['runs']));
});
afterAll(async () => {
  await service.close();
  await closeRedis(redis);
});

describe(`memory and retention over ${RUNS.toLocaleString('en')} runs`, () => {
  it('keeps RSS bounded, reports Redis memory per run, and removes expired runs with all their keys', async () => {
    const keysBefore = await countKeys();
    const memBefore = await usedMemory();
    const rssBefore = process.memoryUsage.rss();
    let rssPeak = rssBefore;
    for (let i = 0; i < RUNS; i += 1_000) {
      await Promise.all(Array.from({ length: 1_000 }, (_, j) => service.runhook.createRun({ agent_id: `mem-${(i + j) % 100}`, input: { text: 'ok' } })));
      rssPeak = Math.max(rssPeak, process.memoryUsage.rss());
    }
    await waitFor(async () => (await service.runhook.store.countByStatus()).completed === RUNS || undefined, 300_000, 'all runs to complete');
    rssPeak = Math.max(rssPeak, process.memoryUsage.rss());
    // An ended run's live stream lingers a few seconds for blocked readers, then only its compact log stays.
    await new Promise((r) => setTimeout(r, STREAM_LINGER_MS + 1_000));
    await waitFor(async () => (await countKeys('msgs:*')) === 0 || undefined, 60_000, 'lingering streams to expire');
    const perRun = (await usedMemory() - memBefore) / RUNS;
    const report = {
      runs: RUNS,
      rss_before_mb: Math.round(rssBefore / 2 ** 20),
      rss_peak_mb: Math.round(rssPeak / 2 ** 20),
      redis_bytes_per_retained_run: Math.round(perRun),
      keys_per_run: ((await countKeys()) - keysBefore) / RUNS,
    };
    console.log('memory:', JSON.stringify(report));
    // Bounded: the process holds no per-run state once a run is done (the store is in Redis).
    expect(rssPeak - rssBefore).toBeLessThan(300 * 2 ** 20);

    // Past the retention every run goes, with its hash, its message stream and its index entries.
    const removed = await sweepExpiredRuns(service.runhook.store, silentLog, Date.now() + config.retentionMs + 60_000);
    expect(removed).toBe(RUNS);
    const left: string[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${config.keyPrefix}:*`, 'COUNT', 5_000);
      left.push(...keys);
      cursor = next;
    } while (cursor !== '0');
    expect(left.filter((k) => k.includes(':run:') || k.includes(':msgs:') || k.includes(':idx:'))).toEqual([]);
  }, 400_000);
});
