import { webhookId } from '../../src/callbacks/sign.ts';
import { startService } from '../../src/service.ts';
import { BareCallbackSender, BareQueue, bareJobOptions } from '../bare.ts';
import type { BenchEnv } from '../env.ts';
import { alternate, skipBare, progress, type Scenario, type ScenarioResult } from '../scenario.ts';
import { median, percentiles, ratio, round, type Percentiles } from '../stats.ts';
import { nowUs, sleep, waitForCount } from '../util.ts';

/**
 * Callback latency at a steady rate: from the terminal transition to the receiver having the whole
 * request. Method:
 * - runhook's terminal time is the run's `completed_us`, the epoch µs the worker stamped (src/clock.ts:
 *   performance.timeOrigin + performance.now()) when it asked transition-run.lua to end the run; read
 *   back from the run hash after the round. (`completed_at` in the payload is whole ms: too coarse.)
 * - the bare side's terminal time is the same clock read in the Worker's `completed` event, after
 *   BullMQ's moveToFinished; the bare worker then POSTs the signed payload inline.
 * - the arrival is the receiver process's reading of the same kind of clock once the body is in.
 *   The two processes' clocks are compared NTP-style over IPC before each round (shortest of 200
 *   ping-pongs); the offset is subtracted and its bound (half that round trip, typically < 0.1 ms) is
 *   reported as clock_error_ms.
 */
interface LatencyRound {
  sent: number;
  achieved_rate: number;
  latency_ms: Percentiles;
  /** From the create/add call to the arrival: what a user waits end to end. */
  end_to_end_ms: Percentiles;
  /**
   * runhook only: terminal transition → the callback worker starting the POST (the run's
   * callback_sent_us): outbox dispatch, the callbacks queue and loading the run. The rest is HTTP.
   */
  to_send_ms?: Percentiles;
  clock_error_ms: number;
  negative: number;
}

/** Calls fire() `rate` times a second for `durationSec`, catching up after any timer lateness. */
async function atRate(rate: number, durationSec: number, fire: () => void): Promise<number> {
  const total = Math.round(rate * durationSec);
  const t0 = performance.now();
  let issued = 0;
  while (issued < total) {
    const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * rate) + 1);
    while (issued < due) {
      issued++;
      fire();
    }
    await sleep(1);
  }
  return total / ((performance.now() - t0) / 1000);
}

function figures(sent: number, rate: number, lat: number[], e2e: number[], clockErrorUs: number, toSend?: number[]): LatencyRound {
  const pr = (p: Percentiles): Percentiles => ({
    n: p.n,
    p50: round(p.p50),
    p90: round(p.p90),
    p99: round(p.p99),
    max: round(p.max),
    mean: round(p.mean),
  });
  return {
    sent,
    achieved_rate: Math.round(rate),
    latency_ms: pr(percentiles(lat)),
    end_to_end_ms: pr(percentiles(e2e)),
    ...(toSend && { to_send_ms: pr(percentiles(toSend)) }),
    clock_error_ms: round(clockErrorUs / 1000)!,
    negative: lat.filter((x) => x < 0).length,
  };
}

async function runhookRound(env: BenchEnv, rate: number, durationSec: number): Promise<LatencyRound> {
  const receiver = await env.receiver();
  const config = env.runhookConfig('lat');
  const service = await startService(config, env.log, new Set(['runs', 'callbacks']));
  const rh = service.runhook;
  try {
    await receiver.reset();
    const clock = await receiver.clockOffset();
    const ids: string[] = [];
    const pending: Promise<unknown>[] = [];
    const body = { agent_id: 'agent-bench', input: { text: 'hi' }, callback_url: receiver.url() };
    const achieved = await atRate(rate, durationSec, () => {
      pending.push(rh.createRun(body).then(({ run }) => ids.push(run.id)));
    });
    await Promise.all(pending);
    await waitForCount('callbacks received', async () => (await receiver.count()).count, ids.length, { stallMs: env.params.stallMs });
    const arrivals = await receiver.arrivals();
    const p = env.admin.pipeline();
    for (const id of ids) p.hmget(rh.store.keys.run(id), 'created_us', 'completed_us', 'callback_sent_us');
    const times = ((await p.exec()) ?? []).map(([, v]) => (v as string[]).map(Number));
    const lat: number[] = [];
    const e2e: number[] = [];
    const toSend: number[] = [];
    ids.forEach((id, i) => {
      const at = arrivals.get(webhookId(id));
      const [created, completed, sent] = times[i]!;
      if (at === undefined || !completed || !created) return;
      const arrival = at - clock.offsetUs;
      lat.push((arrival - completed) / 1000);
      e2e.push((arrival - created) / 1000);
      if (sent) toSend.push((sent - completed) / 1000);
    });
    if (lat.length !== ids.length) throw new Error(`only ${lat.length} of ${ids.length} runs have both times`);
    return figures(ids.length, achieved, lat, e2e, clock.errorUs, toSend);
  } finally {
    await service.close();
  }
}

async function bareRound(env: BenchEnv, rate: number, durationSec: number): Promise<LatencyRound> {
  const receiver = await env.receiver();
  const bare = await BareQueue.open(env.redisUrl, env.prefix('lat-bare'));
  const sender = new BareCallbackSender(receiver.url(), env.webhookSecret);
  const added = new Map<string, number>();
  const terminal = new Map<string, number>();
  let sendErrors = 0;
  try {
    await receiver.reset();
    await bare.startWorker(env.params.concurrency);
    bare.worker!.on('completed', (job) => {
      terminal.set(job.id!, nowUs());
      sender.send(job.id!).catch(() => sendErrors++);
    });
    const clock = await receiver.clockOffset();
    const opts = bareJobOptions();
    const pending: Promise<unknown>[] = [];
    const achieved = await atRate(rate, durationSec, () => {
      const t = nowUs();
      pending.push(bare.queue.add('run', { text: 'hi' }, opts).then((job) => added.set(job.id!, t)));
    });
    await Promise.all(pending);
    await waitForCount('bare callbacks received', async () => (await receiver.count()).count, added.size, { stallMs: env.params.stallMs });
    if (sendErrors > 0) throw new Error(`bare: ${sendErrors} callbacks failed`);
    const arrivals = await receiver.arrivals();
    const lat: number[] = [];
    const e2e: number[] = [];
    for (const [id, t] of added) {
      const at = arrivals.get(webhookId(id));
      const done = terminal.get(id);
      if (at === undefined || done === undefined) continue;
      lat.push((at - clock.offsetUs - done) / 1000);
      e2e.push((at - clock.offsetUs - t) / 1000);
    }
    return figures(added.size, achieved, lat, e2e, clock.errorUs);
  } finally {
    await bare.close();
    await sender.close();
  }
}

export const callbackLatency: Scenario = {
  name: 'callback_latency',
  async run(env): Promise<ScenarioResult> {
    const { ratePerSec, durationSec } = env.params.latency;
    progress('callback_latency', `${ratePerSec} runs/s for ${durationSec} s per round and side`);
    const rounds = await alternate(
      'callback_latency',
      env.params.rounds,
      { bare: () => bareRound(env, ratePerSec, durationSec), runhook: () => runhookRound(env, ratePerSec, durationSec) },
      {
        skip: skipBare(env),
        describe: (f) => `p50 ${f.latency_ms.p50} ms, p99 ${f.latency_ms.p99} ms, max ${f.latency_ms.max} ms at ${f.achieved_rate}/s`,
        ...(env.params.warmup && {
          warmup: { bare: () => bareRound(env, ratePerSec, 2), runhook: () => runhookRound(env, ratePerSec, 2) },
        }),
      },
    );
    const pick = (v: string, k: 'p50' | 'p99' | 'max', of: 'latency_ms' | 'end_to_end_ms' = 'latency_ms') =>
      round(median(rounds[v]!.map((r) => r[of][k])));
    const rh = { p50: pick('runhook', 'p50'), p99: pick('runhook', 'p99'), max: pick('runhook', 'max') };
    const bare = { p50: pick('bare', 'p50'), p99: pick('bare', 'p99'), max: pick('bare', 'max') };
    return {
      runhook: rh.p50,
      bare: bare.p50,
      ratio: round(ratio(rh.p50, bare.p50)),
      unit: 'ms (p50)',
      target: 'p50 <= 5 ms, p99 <= 25 ms',
      met: rh.p50 === null || rh.p99 === null ? null : rh.p50 <= 5 && rh.p99 <= 25,
      p50: { runhook: rh.p50, bare: bare.p50 },
      p99: { runhook: rh.p99, bare: bare.p99 },
      max: { runhook: rh.max, bare: bare.max },
      end_to_end_p50: { runhook: pick('runhook', 'p50', 'end_to_end_ms'), bare: pick('bare', 'p50', 'end_to_end_ms') },
      end_to_end_p99: { runhook: pick('runhook', 'p99', 'end_to_end_ms'), bare: pick('bare', 'p99', 'end_to_end_ms') },
      runhook_to_send: {
        p50: round(median(rounds.runhook!.map((r) => r.to_send_ms?.p50))),
        p99: round(median(rounds.runhook!.map((r) => r.to_send_ms?.p99))),
      },
      rate_per_s: ratePerSec,
      duration_s: durationSec,
      bare_is: 'BullMQ no-op worker posting the signed callback inline from its completed event',
      method: 'terminal = run completed_us (worker clock, epoch µs); arrival = receiver clock, offset-corrected over IPC',
      rounds,
      table_rows: [
        ['  callback p99', String(rh.p99 ?? '-'), String(bare.p99 ?? '-'), '', 'ms', '', ''],
        ['  callback max', String(rh.max ?? '-'), String(bare.max ?? '-'), '', 'ms', '', ''],
      ],
    };
  },
};
