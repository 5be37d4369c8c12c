import Fastify from 'fastify';
import { Queue } from 'bullmq';
import type { AddressInfo } from 'node:net';
import { closeRedis, createRedis, ready } from '../../src/queue/connection.ts';
import { startService } from '../../src/service.ts';
import { bareJobOptions, BARE_QUEUE } from '../bare.ts';
import { BenchChild } from '../child.ts';
import type { BenchEnv } from '../env.ts';
import { alternate, skipBare, type Scenario, type ScenarioResult } from '../scenario.ts';
import { median, ratio, round } from '../stats.ts';

/**
 * POST /v1/runs under 50 connections (autocannon in its own process) against a bare Fastify route that
 * only calls BullMQ's queue.add on the same kind of connection (fail-fast, as runhook's API uses). No
 * worker runs on either side, so the server's process and Redis do nothing but take requests.
 */
interface ApiRound {
  requests_per_s: number;
  total: number;
  ok_2xx: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  latency_ms: { p50: number; p90: number; p99: number; max: number; mean: number };
}

const BODY = JSON.stringify({ agent_id: 'agent-bench', input: { text: 'hi' } });

async function load(env: BenchEnv, loader: BenchChild, url: string, warmup: boolean): Promise<ApiRound> {
  const { connections, durationSec, warmupSec } = env.params.api;
  const { result } = await loader.request<{ result: ApiRound }>(
    'run',
    { url: `${url}/v1/runs`, connections, duration: durationSec, warmup: warmup ? warmupSec : 0, body: BODY },
    (durationSec + warmupSec + 30) * 1000,
  );
  if (result.ok_2xx === 0) throw new Error(`${url}/v1/runs answered no 2xx (non2xx ${result.non2xx}, errors ${result.errors})`);
  return result;
}

async function bareRound(env: BenchEnv, loader: BenchChild): Promise<ApiRound> {
  const redis = createRedis(env.redisUrl, 'api');
  await ready(redis);
  const queue = new Queue(BARE_QUEUE, { connection: redis, prefix: env.prefix('api-bare') });
  const opts = bareJobOptions();
  const app = Fastify({ logger: false });
  app.post('/v1/runs', async (req, reply) => {
    const job = await queue.add('run', req.body, opts);
    return reply.code(201).send({ id: job.id });
  });
  try {
    await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = app.server.address() as AddressInfo;
    return await load(env, loader, `http://127.0.0.1:${port}`, true);
  } finally {
    await app.close();
    await queue.close();
    await closeRedis(redis);
  }
}

async function runhookRound(env: BenchEnv, loader: BenchChild): Promise<ApiRound> {
  const service = await startService(env.runhookConfig('api'), env.log, new Set(['api']));
  try {
    if (!service.api) throw new Error('startService did not start the api part');
    return await load(env, loader, service.api.url, true);
  } finally {
    await service.close();
  }
}

export const apiCreate: Scenario = {
  name: 'api_create',
  async run(env): Promise<ScenarioResult> {
    const loader = await BenchChild.start('./children/api-load.ts', []);
    try {
      const rounds = await alternate(
        'api_create',
        env.params.rounds,
        { bare: () => bareRound(env, loader), runhook: () => runhookRound(env, loader) },
        {
          skip: skipBare(env),
          describe: (r) =>
            `${Math.round(r.requests_per_s)} req/s, p50 ${r.latency_ms.p50} ms, p99 ${r.latency_ms.p99} ms` +
            (r.non2xx || r.errors ? ` (non-2xx ${r.non2xx}, errors ${r.errors})` : ''),
        },
      );
      for (const [v, rs] of Object.entries(rounds)) {
        const bad = rs.reduce((n, r) => n + r.non2xx + r.errors + r.timeouts, 0);
        if (bad > 0) throw new Error(`${v}: ${bad} requests were not answered 2xx`);
      }
      const rps = (v: string) => median(rounds[v]!.map((r) => r.requests_per_s));
      const p99 = (v: string) => median(rounds[v]!.map((r) => r.latency_ms.p99));
      const rh = rps('runhook');
      const bare = rps('bare');
      const r = ratio(rh, bare);
      const rhP99 = p99('runhook');
      return {
        runhook: round(rh),
        bare: round(bare),
        ratio: round(r),
        unit: 'requests/s',
        target: 'ratio >= 0.6, p99 <= 25 ms',
        met: r === null || rhP99 === null ? null : r >= 0.6 && rhP99 <= 25,
        p99_ms: { runhook: round(rhP99), bare: round(p99('bare')) },
        p50_ms: { runhook: round(median(rounds.runhook!.map((x) => x.latency_ms.p50))), bare: round(median(rounds.bare!.map((x) => x.latency_ms.p50))) },
        connections: env.params.api.connections,
        duration_s: env.params.api.durationSec,
        warmup_s: env.params.api.warmupSec,
        rounds,
        table_rows: [['  api p99', String(round(rhP99) ?? '-'), String(round(p99('bare')) ?? '-'), '', 'ms', '', '']],
      };
    } finally {
      await loader.stop();
    }
  },
};
