import { STREAM_LINGER_MS } from '../../src/runs/store.ts';
import { closeRedis, createRedis, ready } from '../../src/queue/connection.ts';
import { Runhook } from '../../src/runhook.ts';
import { BareQueue } from '../bare.ts';
import { BenchChild } from '../child.ts';
import type { BenchEnv } from '../env.ts';
import { alternate, skipBare, progress, type Scenario, type ScenarioResult } from '../scenario.ts';
import { median, ratio, round } from '../stats.ts';
import { lanes, sleep, waitForCount } from '../util.ts';

/**
 * Memory after N runs with a short echo answer. The measured process is a child of its own (runhook all
 * in one: api + run worker + callback worker, each run calling back to the receiver; or a bare BullMQ
 * no-op worker that keeps every completed job, BullMQ's default, so that both sides keep a record of
 * every run). The benchmark enqueues from its own process. Redis's figure is the used_memory delta over
 * the N runs divided by N; a key-by-key MEMORY USAGE census says where it goes.
 */
interface MemoryRound {
  runs: number;
  seconds: number;
  redis_bytes_per_run: number;
  redis_used_delta_mb: number;
  rss_mb: number;
  peak_rss_mb: number;
  heap_used_mb: number;
  /** Per category of key: how many keys and their MEMORY USAGE per run. */
  census: Record<string, { keys: number; bytes_per_run: number; encoding: string }>;
}

const MB = 2 ** 20;

/** What a key pattern is, where the benchmark knows it; unknown patterns are reported as they are. */
const LABELS: Record<string, string> = {
  'run:<run>': 'run hash',
  'msgs:<run>': 'run message stream',
  'cb:attempts:<run>': 'callback attempt log',
  'mlog:<run>': 'message log, folded',
  'mchunk:<run>': 'chunk copy for the replay window',
  'runs:<run>': 'bullmq job hash (runs queue)',
  'callbacks:cb-<run>': 'bullmq job hash (callbacks queue)',
  'bare:<n>': 'bullmq job hash (bare queue)',
};

/**
 * Every key under `prefix`, grouped by pattern (run and job ids replaced by <run>/<n>), with MEMORY
 * USAGE per run summed over the group and the encoding of one of its keys (a hash with a value past
 * hash-max-listpack-value, 64 bytes by default, becomes a much larger hashtable).
 */
export async function census(env: BenchEnv, prefix: string, runs: number): Promise<MemoryRound['census']> {
  const totals = new Map<string, { keys: number; bytes: number; sample: string }>();
  let cursor = '0';
  do {
    const [next, keys] = await env.admin.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 2000);
    cursor = next;
    if (keys.length === 0) continue;
    const p = env.admin.pipeline();
    // SAMPLES 0: every field of a hash counts (the default samples 5 and guesses the rest).
    for (const k of keys) p.memory('USAGE', k, 'SAMPLES', '0');
    const sizes = (await p.exec()) ?? [];
    keys.forEach((k, i) => {
      const pattern = k
        .slice(prefix.length + 1)
        .replace(/run-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, '<run>')
        .replace(/:\d+$/, ':<n>');
      const t = totals.get(pattern) ?? { keys: 0, bytes: 0, sample: k };
      t.keys++;
      t.bytes += Number(sizes[i]?.[1] ?? 0);
      totals.set(pattern, t);
    });
  } while (cursor !== '0');
  const out: MemoryRound['census'] = {};
  for (const [pattern, v] of [...totals].sort((a, b) => b[1].bytes - a[1].bytes)) {
    if (v.bytes / runs < 1) continue;
    const encoding = String(await env.admin.object('ENCODING', v.sample));
    out[LABELS[pattern] ? `${pattern} (${LABELS[pattern]})` : pattern] = { keys: v.keys, bytes_per_run: Math.round(v.bytes / runs), encoding };
  }
  return out;
}

async function measureRound(
  env: BenchEnv,
  mode: 'runhook' | 'bare',
  n: number,
  enqueue: (prefix: string) => Promise<{ done: () => Promise<number>; close: () => Promise<void> }>,
): Promise<MemoryRound> {
  const prefix = env.prefix(`mem-${mode}`);
  const child = await BenchChild.start('./children/memory-node.ts', [
    JSON.stringify({ mode, redisUrl: env.redisUrl, prefix, concurrency: env.params.concurrency, webhookSecret: env.webhookSecret, configOverrides: env.params.configOverrides }),
  ]);
  try {
    await sleep(500);
    const before = await env.usedMemory();
    const t0 = performance.now();
    const { done, close } = await enqueue(prefix);
    try {
      await waitForCount(`${mode} runs done`, done, n, { pollMs: 50, stallMs: env.params.stallMs });
    } finally {
      await close();
    }
    const seconds = (performance.now() - t0) / 1000;
    // An ended run's live message stream lingers a few seconds for blocked readers, then expires: the
    // figure is what a retained run keeps, so it is read once those have gone.
    await sleep(STREAM_LINGER_MS + 1_500);
    const after = await env.usedMemory();
    const mem = await child.request<{ rss: number; heapUsed: number; peakRss: number }>('mem');
    progress('memory', `${mode}: census of the keys...`);
    return {
      runs: n,
      seconds: round(seconds)!,
      redis_bytes_per_run: Math.round((after - before) / n),
      redis_used_delta_mb: round((after - before) / MB)!,
      rss_mb: round(mem.rss / MB)!,
      peak_rss_mb: round(mem.peakRss / MB)!,
      heap_used_mb: round(mem.heapUsed / MB)!,
      census: await census(env, prefix, n),
    };
  } finally {
    await child.stop();
  }
}

function runhookRound(env: BenchEnv, n: number): Promise<MemoryRound> {
  return measureRound(env, 'runhook', n, async (prefix) => {
    const receiver = await env.receiver();
    await receiver.reset();
    const redis = createRedis(env.redisUrl, 'worker');
    await ready(redis);
    const rh = new Runhook(env.runhookConfig('mem', { keyPrefix: prefix }), redis, env.log);
    const body = { agent_id: 'agent-bench', input: { text: 'hi' }, callback_url: receiver.url() };
    await lanes(n, env.params.enqueueWindow, () => rh.createRun(body));
    return {
      // Done when every run is completed and its callback has arrived.
      done: async () => {
        const [completed, received] = await Promise.all([env.admin.zcard(rh.store.keys.index('status', 'completed')), receiver.count()]);
        return Math.min(completed, received.count);
      },
      close: async () => {
        await rh.close();
        await closeRedis(redis);
      },
    };
  });
}

function bareRound(env: BenchEnv, n: number): Promise<MemoryRound> {
  return measureRound(env, 'bare', n, async (prefix) => {
    const bare = await BareQueue.open(env.redisUrl, prefix);
    // BullMQ's defaults: every completed job is kept, with its return value.
    await bare.addBulk(n, { text: 'hi' }, env.params.bulkChunk, {});
    return { done: () => bare.queue.getCompletedCount(), close: () => bare.close() };
  });
}

export const memory: Scenario = {
  name: 'memory',
  async run(env): Promise<ScenarioResult> {
    const { n, rounds: memRounds } = env.params.memory;
    const rounds = await alternate(
      'memory',
      Math.min(memRounds, env.params.rounds),
      { bare: () => bareRound(env, n), runhook: () => runhookRound(env, n) },
      { skip: skipBare(env), describe: (r) => `${r.redis_bytes_per_run} B/run in Redis, RSS ${r.rss_mb} MB (peak ${r.peak_rss_mb} MB), ${r.seconds} s` },
    );
    const pick = (v: string, k: 'redis_bytes_per_run' | 'rss_mb' | 'peak_rss_mb') => median(rounds[v]!.map((r) => r[k]));
    const rh = pick('runhook', 'redis_bytes_per_run');
    const bare = pick('bare', 'redis_bytes_per_run');
    const rss = pick('runhook', 'rss_mb');
    return {
      runhook: round(rh),
      bare: round(bare),
      ratio: round(ratio(rh, bare)),
      unit: 'bytes of Redis per retained run',
      target: 'Redis <= 2048 B/run, RSS <= 300 MB',
      met: rh === null || rss === null ? null : rh <= 2048 && rss <= 300,
      runs: n,
      rss_mb: { runhook: round(rss), bare: round(pick('bare', 'rss_mb')) },
      peak_rss_mb: { runhook: round(pick('runhook', 'peak_rss_mb')), bare: round(pick('bare', 'peak_rss_mb')) },
      bare_is: 'BullMQ no-op worker keeping every completed job (its default), returning "hi"',
      runhook_is: 'all-in-one process (api + run worker + callback worker), every run with a delivered callback',
      rounds,
      table_rows: [
        ['  memory RSS after', String(round(rss) ?? '-'), String(round(pick('bare', 'rss_mb')) ?? '-'), '', 'MB', '', ''],
        ['  memory RSS peak', String(round(pick('runhook', 'peak_rss_mb')) ?? '-'), String(round(pick('bare', 'peak_rss_mb')) ?? '-'), '', 'MB', '', ''],
      ],
    };
  },
};
