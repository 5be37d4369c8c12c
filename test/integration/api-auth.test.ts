import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.ts';
import { RedisServer } from '../../src/redis-server.ts';
import type { Run } from '../../src/runs/schema.ts';
import { startService, type Service } from '../../src/service.ts';
import { startApiService, type ApiHarness } from '../helpers/api.ts';
import { testConfig, waitFor } from '../helpers/setup.ts';

const KEYS = ['key-alpha-0123456789', 'key-beta-0123456789', 'key-gamma-0123456789', 'key-delta-0123456789'];
const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
const code = async (res: Response) => ((await res.json()) as { error: { code: string } }).error.code;

describe('API keys', () => {
  let api: ApiHarness;
  const lines: string[] = [];
  beforeAll(async () => {
    // Everything the API logs, at every level, to check that no key ever reaches a log line.
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const config = testConfig({ host: '127.0.0.1', port: 0, apiKeys: KEYS.slice(0, 2), logLevel: 'trace' });
    const service = await startService(config, createLogger('trace', sink), new Set(['api']));
    const url = service.api!.url;
    api = {
      service,
      url,
      config,
      call: (path, init = {}) => fetch(`${url}${path}`, init as RequestInit),
      close: () => service.close(),
    };
  });
  afterAll(() => api.close());

  it('refuses /v1 without a key, or with a wrong one, with 401 UNAUTHORIZED', async () => {
    const none = await api.call('/v1/runs');
    expect(none.status).toBe(401);
    expect(await code(none)).toBe('UNAUTHORIZED');
    for (const authorization of ['Bearer nope', `Basic ${KEYS[0]}`, `Bearer ${KEYS[0]}x`, `Bearer ${KEYS[2]}`, 'Bearer ']) {
      const res = await api.call('/v1/runs', { headers: { authorization } });
      expect(res.status, authorization).toBe(401);
    }
    const post = await api.call('/v1/runs', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"agent_id":"a"}' });
    expect(post.status).toBe(401);
  });

  it('lets every configured key in', async () => {
    for (const key of KEYS.slice(0, 2)) {
      const res = await api.call('/v1/runs', { headers: bearer(key) });
      expect(res.status).toBe(200);
    }
    const lower = await api.call('/v1/runs', { headers: { authorization: `bearer ${KEYS[1]}` } });
    expect(lower.status).toBe(200);
    const created = await api.call('/v1/runs', {
      method: 'POST',
      headers: { ...bearer(KEYS[0]!), 'content-type': 'application/json', 'idempotency-key': 'secret-idem-key-42' },
      body: JSON.stringify({ agent_id: 'a' }),
    });
    expect(created.status).toBe(201);
  });

  it('keeps the health routes and the docs open', async () => {
    expect((await api.call('/healthz')).status).toBe(200);
    expect((await api.call('/readyz')).status).toBe(200);
    expect((await api.call('/openapi.json')).status).toBe(200);
  });

  it('never writes a key to the log', async () => {
    expect(lines.length).toBeGreaterThan(0);
    const all = lines.join('');
    for (const key of KEYS) expect(all).not.toContain(key);
    expect(all).not.toContain('secret-idem-key-42');
  });
});

describe('the per-key rate limit', () => {
  let api: ApiHarness;
  beforeAll(async () => {
    api = await startApiService({ apiKeys: KEYS, rateLimitPerMinute: 5 });
  });
  afterAll(() => api.close());

  it('answers 429 RATE_LIMITED past the limit, counting each key on its own', async () => {
    // A burst that straddles a minute boundary lands in two windows; such a burst is tried again with
    // a key that has not been used yet.
    const pairs: [string, string][] = [
      [KEYS[0]!, KEYS[1]!],
      [KEYS[2]!, KEYS[3]!],
    ];
    for (const [key, other] of pairs) {
      const window = Math.floor(Date.now() / 60_000);
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++) statuses.push((await api.call('/v1/runs', { headers: bearer(key) })).status);
      const limited = await api.call('/v1/runs', { headers: bearer(key) });
      const otherKey = await api.call('/v1/runs', { headers: bearer(other) });
      if (Math.floor(Date.now() / 60_000) !== window) continue;
      expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
      expect(limited.status).toBe(429);
      expect(await code(limited)).toBe('RATE_LIMITED');
      expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(otherKey.status).toBe(200);
      expect(otherKey.headers.get('x-ratelimit-remaining')).toBe('4');
      expect((await api.call('/healthz')).status).toBe(200);
      return;
    }
    throw new Error('every burst straddled a minute boundary');
  });
});

describe('Redis unreachable', () => {
  const dir = mkdtempSync(join(tmpdir(), 'runhook-api-503-'));
  let redis: RedisServer;
  let service: Service;
  let url: string;
  beforeAll(async () => {
    redis = await RedisServer.start({ dir });
    service = await startService(testConfig({ redisUrl: redis.url, host: '127.0.0.1', port: 0 }), createLogger('silent'), new Set(['api']));
    url = service.api!.url;
  });
  afterAll(async () => {
    await redis.start().catch(() => {});
    await service.close();
    await redis.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers 503 REDIS_UNAVAILABLE at once while Redis is down, and recovers when it is back', async () => {
    const created = await fetch(`${url}/v1/runs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"agent_id":"a"}' });
    const run = (await created.json()) as Run;
    await redis.stop();
    const down = await fetch(`${url}/v1/runs/${run.id}`);
    expect(down.status).toBe(503);
    expect(await code(down)).toBe('REDIS_UNAVAILABLE');
    expect(down.headers.get('retry-after')).toBe('1');
    const post = await fetch(`${url}/v1/runs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"agent_id":"a"}' });
    expect(post.status).toBe(503);
    expect((await fetch(`${url}/readyz`)).status).toBe(503);
    expect((await fetch(`${url}/healthz`)).status).toBe(200);

    await redis.start();
    await waitFor(async () => (await fetch(`${url}/readyz`)).status === 200, 15_000, 'the API to reconnect');
    expect((await fetch(`${url}/v1/runs?limit=1`)).status).toBe(200);
  });
});
