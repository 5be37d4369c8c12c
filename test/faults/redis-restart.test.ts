import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { withConfig } from '../../src/config.ts';
import { freePort, RedisServer } from '../../src/redis-server.ts';
import { RunStore } from '../../src/runs/store.ts';
import { startRunhook, type RunhookProcess } from '../helpers/processes.ts';
import { Receiver } from '../helpers/receiver.ts';
import { waitFor } from '../helpers/setup.ts';
import { faultEnv, sleep } from './chaos.ts';

const dir = mkdtempSync(join(tmpdir(), 'runhook-redis-restart-'));
const procs: RunhookProcess[] = [];
let redisServer: RedisServer | undefined;

afterAll(async () => {
  await Promise.all(procs.map((p) => p.kill('SIGKILL')));
  await redisServer?.stop();
  rmSync(dir, { recursive: true, force: true });
});

interface Outcome {
  status: number | 'timeout' | 'network';
  runId?: string;
}

/** POSTs one run; answers within `timeoutMs` or counts as a hang. */
async function post(url: string, callbackUrl: string, i: number): Promise<Outcome> {
  try {
    const res = await fetch(`${url}/v1/runs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ agent_id: `restart-${i % 5}`, input: { text: 'a b c', token_ms: 5 }, callback_url: callbackUrl }),
      signal: AbortSignal.timeout(5_000),
    });
    const body = (await res.json()) as { id?: string; error?: { code: string } };
    return { status: res.status, runId: body.id };
  } catch (err) {
    return { status: (err as Error).name === 'TimeoutError' ? 'timeout' : 'network' };
  }
}

describe('fault suite: Redis stopped and restarted mid-load', () => {
  it('answers 503 while Redis is down, recovers by itself, and ends every accepted run with its callback', async () => {
    // AOF with fsync on every write: whatever Redis acknowledged survives the kill.
    redisServer = await RedisServer.start({ dir, appendOnly: true, appendFsync: 'always' });
    const port = await freePort();
    const config = withConfig({ redisUrl: redisServer.url, keyPrefix: '{restart}' });
    const env = faultEnv(config, { PORT: String(port), HOST: '127.0.0.1' });
    const receiver = await Receiver.start({ status: 200 });
    const api = startRunhook(['api'], env);
    const workers = startRunhook(['worker'], env);
    procs.push(api, workers);
    await Promise.all([api.waitForOutput('api listening'), workers.waitForOutput('runhook is up')]);
    const url = `http://127.0.0.1:${port}`;

    const outcomes: Outcome[] = [];
    let stop = false;
    const load = (async () => {
      for (let i = 0; !stop; i++) {
        outcomes.push(...(await Promise.all(Array.from({ length: 10 }, (_, j) => post(url, receiver.url('/hook'), i * 10 + j)))));
        await sleep(10);
      }
    })();

    await waitFor(() => outcomes.filter((o) => o.status === 201).length >= 200, 30_000, '200 runs accepted');
    await redisServer.kill();
    const downFrom = outcomes.length;
    await waitFor(() => outcomes.slice(downFrom).filter((o) => o.status === 503).length >= 20, 30_000, '503s while Redis is down');
    await sleep(1_000);
    await redisServer.start();
    const upFrom = outcomes.length;
    await waitFor(() => outcomes.slice(upFrom).filter((o) => o.status === 201).length >= 200, 60_000, 'runs accepted again');
    stop = true;
    await load;

    const statuses = new Set(outcomes.map((o) => o.status));
    // Only successes and 503s: no other 5xx, no hang, no dropped connection (the API never crashed).
    expect([...statuses].sort()).toEqual([201, 503]);
    expect(api.child.exitCode).toBeNull();

    const accepted = outcomes.filter((o) => o.status === 201).map((o) => o.runId!);
    const redis = new Redis(redisServer.url);
    const store = new RunStore(redis, { keyPrefix: config.keyPrefix, retentionMs: config.retentionMs });
    try {
      await waitFor(
        async () => {
          const runs = await Promise.all(accepted.map((id) => store.get(id)));
          return runs.every((r) => r && ['completed', 'failed', 'cancelled'].includes(r.status)) || undefined;
        },
        90_000,
        'every accepted run to end',
      );
      const runs = await Promise.all(accepted.map((id) => store.get(id)));
      expect(runs.filter((r) => r?.status === 'completed')).toHaveLength(accepted.length);
      await waitFor(
        () => {
          const seen = new Set(receiver.requests.map((r) => String(r.headers['webhook-id'])));
          return accepted.every((id) => seen.has(`msg_${id}`)) || undefined;
        },
        90_000,
        'every accepted run’s callback',
      );
      console.log(
        'redis restart:',
        JSON.stringify({ accepted: accepted.length, answered_503: outcomes.filter((o) => o.status === 503).length, callbacks: receiver.requests.length }),
      );
    } finally {
      redis.disconnect();
      await receiver.close();
    }
  }, 240_000);
});
