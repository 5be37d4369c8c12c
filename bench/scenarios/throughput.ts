import { startService } from '../../src/service.ts';
import type { Runhook } from '../../src/runhook.ts';
import type { RunCreate } from '../../src/runs/schema.ts';
import { BareCallbackSender, BareQueue } from '../bare.ts';
import type { BenchEnv } from '../env.ts';
import { commandSnapshot, commandsPerRun, cpuPerRun, cpuSnapshot, redisCommandStats, redisStatsPerRun, roundTripsPerRun } from '../instrument.ts';
import { alternate, skipBare, type Scenario, type ScenarioResult } from '../scenario.ts';
import { median, ratio, round } from '../stats.ts';
import { lanes, waitForCount } from '../util.ts';

/** The figures of one variant in one round. */
export interface ThroughputRound {
  runs_per_s: number;
  elapsed_ms: number;
  /** Until the last enqueue call resolved (the worker is already taking runs meanwhile). */
  enqueue_ms: number;
  commands_per_run: Record<string, number>;
  round_trips_per_run: number;
  /** Redis's side: calls and µs per run, by command (INFO commandstats). */
  redis_commands_per_run: Record<string, { calls: number; usec: number }>;
  node_cpu_us_per_run: number;
  redis_cpu_us_per_run: number;
  receiver?: { requests: number; duplicates: number; badSignatures: number };
  /** How the runhook side enqueued (a bulk method, or createRun calls in flight). */
  enqueue_path?: string;
}

const INPUT = { text: 'hi' };

/**
 * Creates n runs through the library's enqueue path: a bulk method where runhook has one, else
 * createRun with `window` calls in flight (ioredis pipelines what is in flight on one connection).
 */
export async function enqueueRuns(rh: Runhook, n: number, body: RunCreate, window: number): Promise<string> {
  const bulk = (rh as unknown as { createRuns?: (bodies: RunCreate[]) => Promise<unknown> }).createRuns;
  if (typeof bulk === 'function') {
    const chunk = 1_000;
    for (let i = 0; i < n; i += chunk) await bulk.call(rh, Array.from({ length: Math.min(chunk, n - i) }, () => body));
    return 'createRuns (bulk)';
  }
  await lanes(n, window, () => rh.createRun(body));
  return `createRun x ${window} in flight`;
}

async function measure(
  env: BenchEnv,
  n: number,
  enqueue: () => Promise<unknown>,
  done: () => Promise<number>,
): Promise<Omit<ThroughputRound, 'receiver'>> {
  const cmd0 = commandSnapshot();
  const stats0 = await redisCommandStats(env.admin);
  const cpu0 = await cpuSnapshot(env.admin);
  const t0 = performance.now();
  let enqueuedAt = 0;
  const enqueued = enqueue().then(() => (enqueuedAt = performance.now()));
  const [end] = await Promise.all([done(), enqueued]);
  const cpu1 = await cpuSnapshot(env.admin);
  const stats1 = await redisCommandStats(env.admin);
  const perRun = commandsPerRun(cmd0, commandSnapshot(), n);
  const elapsed = end - t0;
  return {
    runs_per_s: Math.round(n / (elapsed / 1000)),
    elapsed_ms: Math.round(elapsed),
    enqueue_ms: Math.round(enqueuedAt - t0),
    commands_per_run: perRun,
    round_trips_per_run: roundTripsPerRun(perRun),
    redis_commands_per_run: redisStatsPerRun(stats0, stats1, n),
    ...cpuPerRun(cpu0, cpu1, n),
  };
}

/** Completed runs, read on the benchmark's own connection (so the polling is not counted as runhook's). */
export async function completedRuns(env: BenchEnv, rh: Runhook): Promise<number> {
  const [[, done], [, failed]] = (await env.admin
    .pipeline()
    .zcard(rh.store.keys.index('status', 'completed'))
    .zcard(rh.store.keys.index('status', 'failed'))
    .exec()) as [[null, number], [null, number]];
  if (failed > 0) throw new Error(`runhook: ${failed} runs failed`);
  return done;
}

export async function bareRound(env: BenchEnv, n: number, callbackUrl?: string): Promise<ThroughputRound> {
  const bare = await BareQueue.open(env.redisUrl, env.prefix('bare'));
  const sender = callbackUrl ? new BareCallbackSender(callbackUrl, env.webhookSecret) : undefined;
  const receiver = callbackUrl ? await env.receiver() : undefined;
  try {
    await receiver?.reset();
    await bare.startWorker(env.params.concurrency, sender ? (job) => sender.send(job.id!) : undefined);
    const figures = await measure(
      env,
      n,
      () => bare.addBulk(n, INPUT, env.params.bulkChunk),
      receiver
        ? () => waitForCount('bare callbacks received', async () => (await receiver.count()).count, n, { stallMs: env.params.stallMs })
        : () => waitForCount('bare jobs completed', async () => bare.completed + bare.failed, n, { stallMs: env.params.stallMs }),
    );
    if (bare.failed > 0) throw new Error(`bare: ${bare.failed} jobs failed`);
    return receiver ? { ...figures, receiver: await receiver.count() } : figures;
  } finally {
    await bare.close();
    await sender?.close();
  }
}

export async function runhookRound(env: BenchEnv, n: number, withCallbacks: boolean): Promise<ThroughputRound> {
  const config = env.runhookConfig('rh');
  const receiver = withCallbacks ? await env.receiver() : undefined;
  const service = await startService(config, env.log, new Set(withCallbacks ? ['runs', 'callbacks'] : ['runs']));
  const rh = service.runhook;
  try {
    await receiver?.reset();
    const body: RunCreate = { agent_id: 'agent-bench', input: INPUT, ...(receiver && { callback_url: receiver.url() }) };
    let path = '';
    const completed = () => completedRuns(env, rh);
    const figures = await measure(
      env,
      n,
      async () => (path = await enqueueRuns(rh, n, body, env.params.enqueueWindow)),
      receiver
        ? () => waitForCount('runhook callbacks received', async () => (await receiver.count()).count, n, { stallMs: env.params.stallMs })
        : () => waitForCount('runhook runs completed', completed, n, { stallMs: env.params.stallMs }),
    );
    if (receiver) {
      const c = await rh.store.countByStatus();
      if (c.completed !== n) throw new Error(`callbacks arrived for ${n} runs but ${c.completed} are completed`);
    }
    return { ...figures, enqueue_path: path, ...(receiver && { receiver: await receiver.count() }) };
  } finally {
    await service.close();
  }
}

const describe = (f: ThroughputRound) =>
  `${f.runs_per_s} runs/s (${f.round_trips_per_run} round trips/run, node ${f.node_cpu_us_per_run} µs/run, redis ${f.redis_cpu_us_per_run} µs/run)`;

function summarize(rounds: Record<string, ThroughputRound[]>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [v, rs] of Object.entries(rounds)) {
    out[v] = {
      runs_per_s: rs.map((r) => r.runs_per_s),
      median_runs_per_s: median(rs.map((r) => r.runs_per_s)),
      enqueue_ms: rs.map((r) => r.enqueue_ms),
      node_cpu_us_per_run: median(rs.map((r) => r.node_cpu_us_per_run)),
      redis_cpu_us_per_run: median(rs.map((r) => r.redis_cpu_us_per_run)),
      round_trips_per_run: median(rs.map((r) => r.round_trips_per_run)),
      // The last round's breakdown: the counts are the same from round to round, give or take idle polls.
      commands_per_run: rs.at(-1)?.commands_per_run,
      redis_commands_per_run: rs.at(-1)?.redis_commands_per_run,
      ...(rs.at(-1)?.receiver && { receiver_last_round: rs.at(-1)!.receiver }),
      ...(rs.at(-1)?.enqueue_path && { enqueue_path: rs.at(-1)!.enqueue_path }),
    };
  }
  return out;
}

export const throughput: Scenario = {
  name: 'throughput',
  async run(env): Promise<ScenarioResult> {
    const { n } = env.params.throughput;
    const warmN = Math.min(2_000, n);
    const rounds = await alternate(
      'throughput',
      env.params.rounds,
      { bare: () => bareRound(env, n), runhook: () => runhookRound(env, n, false) },
      {
        skip: skipBare(env),
        describe,
        ...(env.params.warmup && { warmup: { bare: () => bareRound(env, warmN), runhook: () => runhookRound(env, warmN, false) } }),
      },
    );
    const rh = median(rounds.runhook!.map((r) => r.runs_per_s));
    const bare = median(rounds.bare!.map((r) => r.runs_per_s));
    const r = ratio(rh, bare);
    return {
      runhook: round(rh),
      bare: round(bare),
      ratio: round(r),
      unit: 'runs/s',
      target: 'ratio >= 0.5 (stretch 0.7)',
      met: r === null ? null : r >= 0.5,
      n,
      concurrency: env.params.concurrency,
      rounds: summarize(rounds),
    };
  },
};

export const throughputCallbacks: Scenario = {
  name: 'throughput_callbacks',
  async run(env): Promise<ScenarioResult> {
    const { n } = env.params.callbacks;
    const receiver = await env.receiver();
    const warmN = Math.min(2_000, n);
    const rounds = await alternate(
      'throughput_callbacks',
      env.params.rounds,
      {
        bare: () => bareRound(env, n),
        bare_inline_callback: () => bareRound(env, n, receiver.url()),
        runhook: () => runhookRound(env, n, true),
      },
      {
        skip: skipBare(env),
        describe,
        ...(env.params.warmup && {
          warmup: { bare_inline_callback: () => bareRound(env, warmN, receiver.url()), runhook: () => runhookRound(env, warmN, true) },
        }),
      },
    );
    const rh = median(rounds.runhook!.map((r) => r.runs_per_s));
    const bare = median(rounds.bare!.map((r) => r.runs_per_s));
    const inline = median(rounds.bare_inline_callback!.map((r) => r.runs_per_s));
    const r = ratio(rh, bare);
    return {
      runhook: round(rh),
      bare: round(bare),
      ratio: round(r),
      unit: 'runs/s',
      target: 'ratio >= 0.33',
      bare_is: 'the no-op worker without callbacks, as the issue defines it; bare_inline_callback posts from the worker',
      met: r === null ? null : r >= 0.33,
      bare_inline_callback: round(inline),
      ratio_to_bare_inline_callback: round(ratio(rh, inline)),
      n,
      concurrency: env.params.concurrency,
      rounds: summarize(rounds),
    };
  },
};
