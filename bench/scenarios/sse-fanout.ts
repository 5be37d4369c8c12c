import { closeRedis, createRedis, ready } from '../../src/queue/connection.ts';
import { Runhook } from '../../src/runhook.ts';
import { BenchChild } from '../child.ts';
import type { BenchEnv } from '../env.ts';
import { alternate, type Scenario, type ScenarioResult } from '../scenario.ts';
import { median, ratio, round } from '../stats.ts';
import { sleep } from '../util.ts';

/**
 * Many people watching live runs: `watchers` SSE clients (in a process of their own) spread over `runs`
 * running runs, while the benchmark appends `messages` messages to every run, one wave every `tickMs`.
 * Figures: the Redis connections the API process holds with every watcher connected, the delay from
 * emit to client (each message carries its emit time), and the API process's RSS. The other side is the
 * design runhook had before, bare: a connection per watcher blocking on XREAD for its run.
 */
interface FanoutRound {
  connections: number;
  p50_ms: number | null;
  p99_ms: number | null;
  rss_mb: number;
  received: number;
  repeats: number;
  gaps: number;
}

type Mode = 'runhook' | 'per-connection';

const now = () => performance.timeOrigin + performance.now();

async function clientCount(env: BenchEnv): Promise<number> {
  return String(await env.admin.client('LIST')).split('\n').filter(Boolean).length;
}

async function fanoutRound(env: BenchEnv, clients: BenchChild, mode: Mode): Promise<FanoutRound> {
  const { watchers, runs, messages, tickMs } = env.params.fanout;
  const config = env.runhookConfig(`fanout-${mode}`);
  const redis = createRedis(env.redisUrl, 'worker');
  await ready(redis);
  const runhook = new Runhook(config, redis, env.log);
  let server: BenchChild | undefined;
  try {
    const ids: string[] = [];
    for (let i = 0; i < runs; i += 100) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(100, runs - i) }, () => runhook.createRun({ agent_id: 'agent-fanout', input: { text: 'watch me' } })),
      );
      ids.push(...batch.map((b) => b.run.id));
    }
    // Running, as a worker would leave them, so that every stream is live.
    await Promise.all(ids.map((id) => runhook.store.start(id, 1)));

    const baseline = await clientCount(env);
    server = await BenchChild.start('./children/sse-server.ts', [mode, env.redisUrl, config.keyPrefix]);
    const url = String(server.ready.url);
    const urls = Array.from({ length: watchers }, (_, i) => `${url}/v1/runs/${ids[i % runs]}/stream`);
    await clients.request('open', { urls }, 120_000);

    for (let k = 0; k < messages; k++) {
      await Promise.all(ids.map((id) => runhook.store.emit(id, 1, { message_type: 'assistant_message', content: String(now()) })));
      await sleep(tickMs);
    }
    const { result } = await clients.request<{ result: Omit<FanoutRound, 'connections' | 'rss_mb'> }>('wait', { each: messages }, 120_000);
    // Counted with every watcher following: the API process's connections are all that came since.
    const connections = (await clientCount(env)) - baseline;
    const { rss_mb } = await server.request<{ rss_mb: number }>('rss');
    await clients.request('close');
    return { ...result, connections, rss_mb: Math.round(rss_mb) };
  } finally {
    await server?.stop();
    await runhook.close();
    await closeRedis(redis);
  }
}

export const sseFanout: Scenario = {
  name: 'sse_fanout',
  async run(env): Promise<ScenarioResult> {
    const clients = await BenchChild.start('./children/sse-watchers.ts', []);
    try {
      const rounds = await alternate(
        'sse_fanout',
        env.params.rounds,
        { 'per-connection': () => fanoutRound(env, clients, 'per-connection'), runhook: () => fanoutRound(env, clients, 'runhook') },
        {
          describe: (r) =>
            `${r.connections} Redis connections, p50 ${round(r.p50_ms, 1)} ms, p99 ${round(r.p99_ms, 1)} ms, rss ${r.rss_mb} MB` +
            (r.repeats || r.gaps ? ` (repeats ${r.repeats}, gaps ${r.gaps})` : ''),
        },
      );
      for (const [v, rs] of Object.entries(rounds)) {
        const bad = rs.reduce((n, r) => n + r.repeats + r.gaps, 0);
        if (bad > 0) throw new Error(`${v}: ${bad} entries were repeated or skipped`);
      }
      const pick = (v: string, f: (r: FanoutRound) => number | null) => median(rounds[v]!.map(f));
      const rh = pick('runhook', (r) => r.connections);
      const bare = pick('per-connection', (r) => r.connections);
      const p99 = pick('runhook', (r) => r.p99_ms);
      const { watchers, runs } = env.params.fanout;
      return {
        runhook: rh,
        bare,
        ratio: round(ratio(rh, bare)),
        unit: `Redis connections of the API process with ${watchers} watchers on ${runs} live runs`,
        target: 'connections <= 10, p99 <= 50 ms',
        met: rh === null || p99 === null ? null : rh <= 10 && p99 <= 50,
        p50_ms: round(pick('runhook', (r) => r.p50_ms), 2),
        p99_ms: round(p99, 2),
        rss_mb: pick('runhook', (r) => r.rss_mb),
        per_connection: {
          p50_ms: round(pick('per-connection', (r) => r.p50_ms), 2),
          p99_ms: round(pick('per-connection', (r) => r.p99_ms), 2),
          rss_mb: pick('per-connection', (r) => r.rss_mb),
        },
        watchers,
        runs,
        messages_per_run: env.params.fanout.messages,
        rounds,
        table_rows: [
          ['  fanout p99', String(round(p99, 1) ?? '-'), String(round(pick('per-connection', (r) => r.p99_ms), 1) ?? '-'), '', 'ms', '', ''],
          ['  fanout rss', String(pick('runhook', (r) => r.rss_mb) ?? '-'), String(pick('per-connection', (r) => r.rss_mb) ?? '-'), '', 'MB', '', ''],
        ],
      };
    } finally {
      await clients.stop();
    }
  },
};
