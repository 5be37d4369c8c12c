import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Run } from '../../src/runs/schema.ts';
import { RedisServer } from '../../src/redis-server.ts';
import { startApiService, type ApiHarness } from '../helpers/api.ts';
import { closeRedis, waitFor } from '../helpers/setup.ts';

const RUNS = 100;
const WATCHERS_PER_RUN = 5;
const MESSAGES = 10;

/** One SSE client over a plain socket of its own: the seq ids of the assistant messages it was sent. */
function watch(url: string): { seqs: number[]; contents: string[]; close(): void; opened: Promise<void> } {
  const seqs: number[] = [];
  const contents: string[] = [];
  let opened!: () => void;
  const req = request(url, { agent: false, headers: { accept: 'text/event-stream' } }, (res) => {
    opened();
    res.setEncoding('utf8');
    let buf = '';
    res.on('data', (chunk: string) => {
      buf += chunk;
      for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
        const data = buf.slice(0, i).split('\n').find((l) => l.startsWith('data: {'));
        buf = buf.slice(i + 2);
        if (!data) continue;
        const m = JSON.parse(data.slice(6)) as { message_type: string; seq_id: number; content: string };
        if (m.message_type !== 'assistant_message') continue;
        seqs.push(m.seq_id);
        contents.push(m.content);
      }
    });
    res.on('error', () => {});
  });
  req.on('error', () => {});
  req.end();
  return { seqs, contents, close: () => req.destroy(), opened: new Promise((r) => (opened = r)) };
}

async function clients(redis: Redis): Promise<number> {
  return String(await redis.client('LIST')).split('\n').filter(Boolean).length;
}

describe('live streams at scale: one API process, many watchers', () => {
  // A redis-server of this file's own, so that CLIENT LIST counts this API process's connections alone.
  const dir = mkdtempSync(join(tmpdir(), 'runhook-fanout-'));
  let server: RedisServer;
  let api: ApiHarness;
  let redis: Redis;
  beforeAll(async () => {
    server = await RedisServer.start({ dir });
    api = await startApiService({ redisUrl: server.url });
    redis = new Redis(server.url);
  });
  afterAll(async () => {
    await api?.close();
    if (redis) await closeRedis(redis);
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('gives 500 watchers on 100 live runs every entry of their run once and in order, over a constant number of Redis connections', async () => {
    const runs: Run[] = [];
    for (let i = 0; i < RUNS; i++) {
      runs.push((await (await api.call('/v1/runs', { method: 'POST', json: { agent_id: `a${i % 7}` } })).json()) as Run);
    }
    // Running, as a worker would leave them (no worker here, so the test writes their messages itself).
    await Promise.all(runs.map((r) => api.service.runhook.store.start(r.id, 1)));

    const before = await clients(redis);
    const watchers = runs.flatMap((r) => Array.from({ length: WATCHERS_PER_RUN }, () => ({ run: r, w: watch(`${api.url}/v1/runs/${r.id}/stream`) })));
    await Promise.all(watchers.map(({ w }) => w.opened));

    for (let k = 1; k <= MESSAGES; k++) {
      await Promise.all(runs.map((r) => api.service.runhook.store.emit(r.id, 1, { message_type: 'assistant_message', content: `${r.id}:${k}` })));
    }
    await waitFor(() => watchers.every(({ w }) => w.seqs.length >= MESSAGES), 30_000, 'every watcher to get every message');

    const expected = Array.from({ length: MESSAGES }, (_, i) => i + 1);
    for (const { run, w } of watchers) {
      expect(w.seqs).toEqual(expected);
      expect(w.contents).toEqual(expected.map((k) => `${run.id}:${k}`));
    }
    // The API process added one connection for 500 watchers: its stream hub's reader.
    expect((await clients(redis)) - before).toBe(1);
    for (const { w } of watchers) w.close();
  });
});
