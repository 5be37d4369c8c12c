import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MINUTE_MS } from '../../src/monitoring/per-minute.ts';
import type { QueuesReport } from '../../src/monitoring/schemas.ts';
import type { Run } from '../../src/runs/schema.ts';
import { startApiService, type ApiHarness } from '../helpers/api.ts';
import { childEnv, startRunhook } from '../helpers/processes.ts';
import { Receiver } from '../helpers/receiver.ts';
import { waitFor } from '../helpers/setup.ts';

const exec = promisify(execFile);
const BIN = fileURLToPath(new URL('../../bin/runhook.js', import.meta.url));

/** The report without what moves with the clock alone: ages, idle times, the time it was made. */
function stable(r: QueuesReport) {
  const queue = (q: QueuesReport['queues']['runs']) => ({
    ...q,
    workers: q.workers.map(({ name, addr }) => ({ name, addr })),
    oldest_waiting: q.oldest_waiting && { job_id: q.oldest_waiting.job_id, created_at: q.oldest_waiting.created_at },
    throughput: { ...q.throughput, completed_per_minute: [], failed_per_minute: [] },
  });
  return { ...r, generated_at: '', queues: { runs: queue(r.queues.runs), callbacks: queue(r.queues.callbacks) } };
}

/** A per-minute series as it reads `later` ms after it was read at `earlier` (index 0 = that minute). */
function shifted(series: number[], earlier: string, later: string): number[] {
  const by = Math.floor(Date.parse(later) / MINUTE_MS) - Math.floor(Date.parse(earlier) / MINUTE_MS);
  return [...new Array<number>(by).fill(0), ...series].slice(0, series.length);
}

describe('runhook status', () => {
  let api: ApiHarness;
  let receiver: Receiver;
  let env: Record<string, string>;

  beforeAll(async () => {
    receiver = await Receiver.start({ status: 200 }, { status: 500 });
    api = await startApiService({ runAttempts: 1, callbackRetryDelaysMs: [0, 600_000] }, ['runs', 'callbacks']);
    env = childEnv(api.config, { LOG_LEVEL: 'warn' });
    const create = async (input: object) =>
      (await (await api.call('/v1/runs', { method: 'POST', json: { agent_id: 'a1', input, callback_url: receiver.url('/hook') } })).json()) as Run;
    await create({ text: 'one' });
    await create({ text: 'two', fail: 'boom' });
    await waitFor(async () => {
      const r = (await (await api.call('/v1/queues')).json()) as QueuesReport;
      return r.queues.runs.throughput.completed_total + r.queues.runs.throughput.failed_total === 2 && r.callbacks_by_state.delivered + r.callbacks_by_state.retrying === 2;
    }, 15_000, 'both runs to end and their callbacks to be tried');
    // Then hold new runs, so that some wait and one of them is the oldest.
    expect((await api.call('/v1/queues/runs/pause', { method: 'POST' })).status).toBe(200);
    await create({ text: 'held 1' });
    await create({ text: 'held 2' });
  });
  afterAll(async () => {
    await api?.close();
    await receiver?.close();
  });

  it('--json prints what GET /v1/queues answers', async () => {
    const fromApi = (await (await api.call('/v1/queues')).json()) as QueuesReport;
    const { stdout } = await exec(process.execPath, [BIN, 'status', '--json'], { env });
    const fromCli = JSON.parse(stdout) as QueuesReport;

    expect(stable(fromCli)).toEqual(stable(fromApi));
    expect(fromCli.queues.runs).toMatchObject({ paused: true, counts: { waiting: 2, completed: 1, failed: 1 } });
    expect(fromCli.callbacks_by_state).toEqual({ delivered: 1, retrying: 1, given_up: 0 });
    // Read after the API's answer, so never younger.
    expect(fromCli.queues.runs.oldest_waiting!.age_ms).toBeGreaterThanOrEqual(fromApi.queues.runs.oldest_waiting!.age_ms);
    for (const name of ['runs', 'callbacks'] as const) {
      const [a, c] = [fromApi.queues[name].throughput, fromCli.queues[name].throughput];
      expect(c.completed_per_minute).toEqual(shifted(a.completed_per_minute, fromApi.generated_at, fromCli.generated_at));
      expect(c.failed_per_minute).toEqual(shifted(a.failed_per_minute, fromApi.generated_at, fromCli.generated_at));
    }
  });

  it('draws the same state for a terminal of 80 columns', async () => {
    const { stdout } = await exec(process.execPath, [BIN, 'status'], { env });
    for (const line of stdout.split('\n')) expect([...line].length, line).toBeLessThanOrEqual(80);
    const row = (name: string) => stdout.split('\n').find((l) => l.startsWith(`${name} `))!;
    // runs: 2 waiting (a paused queue keeps them in wait), 0 active, 0 delayed, 0 prioritized, paused, 1 worker.
    expect(row('runs').split(/\s+/).slice(0, 7)).toEqual(['runs', '2', '0', '0', '0', 'PAUSED', '1']);
    expect(stdout).toMatch(/RUNS\s+created 2 · running 0 · completed 1 · failed 1 · cancelled 0/);
    expect(stdout).toMatch(/CALLBACKS\s+delivered 1 · retrying 1 · given up 0/);
    // The API process of this file reports its stream hub: no watchers now, no reader opened yet.
    expect(stdout).toMatch(/STREAMS\s+watchers 0 · readers 0 · api procs 1/);
  });

  it('--watch redraws until it is stopped, then exits 0', async () => {
    const watch = startRunhook(['status', '--watch', '--interval', '100'], env);
    await waitFor(() => (watch.output().match(/runhook status ·/g) ?? []).length >= 3, 15_000, 'three frames');
    expect(await watch.kill('SIGINT')).toBe(0);
    expect(watch.output()).toContain('Ctrl-C to stop');
  });

  it('refuses a bad interval', async () => {
    const err = await exec(process.execPath, [BIN, 'status', '--interval', '5'], { env }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 2 });
    expect((err as { stderr: string }).stderr).toContain('--interval');
  });
});
