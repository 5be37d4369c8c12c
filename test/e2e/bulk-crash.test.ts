import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BulkOperation } from '../../src/operations/schema.ts';
import type { Runhook } from '../../src/runhook.ts';
import { startApiService, type ApiHarness } from '../helpers/api.ts';
import { childEnv, startRunhook, type RunhookProcess } from '../helpers/processes.ts';
import { waitFor } from '../helpers/setup.ts';

// Short locks so the killed worker's bulk job is taken over in seconds; a paced walk (400 runs/s) so
// the kill lands mid-operation.
let api: ApiHarness;
let runhook: Runhook;
const children: RunhookProcess[] = [];

function worker(): RunhookProcess {
  const p = startRunhook(
    ['worker', '--only', 'runs'],
    childEnv(api.config, {
      RUNHOOK_LOCK_DURATION_MS: '2000',
      RUNHOOK_STALLED_INTERVAL_MS: '1000',
      RUNHOOK_BULK_RATE: '400',
      RUNHOOK_MAINTENANCE_INTERVAL_MS: '600000',
    }),
  );
  children.push(p);
  return p;
}

beforeAll(async () => {
  // The API alone in this process; the workers are child processes.
  api = await startApiService({ lockDurationMs: 2_000, stalledIntervalMs: 1_000 });
  runhook = api.service.runhook;
});
afterAll(async () => {
  await Promise.all(children.map((c) => c.kill('SIGKILL')));
  await api?.close();
});

const getOp = async (id: string) => (await (await api.call(`/v1/runs/bulk/${id}`)).json()) as BulkOperation;
const cancelledLines = (p: RunhookProcess) => p.output().split('\n').filter((l) => l.includes('"msg":"run cancelled"')).length;

describe('a bulk cancel whose worker is SIGKILLed mid-operation', () => {
  it('cancels every one of 1,000 waiting runs of the agent exactly once, and no run of another agent', async () => {
    // Waiting runs: the run queue is paused, so no worker starts them; the bulk queue is not.
    await runhook.queue.pause();
    const create = (agent: string, n: number) =>
      Promise.all(Array.from({ length: n }, (_, i) => runhook.createRun({ agent_id: agent, input: { text: `${agent} ${i}` } })));
    for (let i = 0; i < 10; i++) await create('bulk-target', 100);
    await create('bulk-bystander', 50);
    expect((await runhook.store.countByStatus()).created).toBe(1050);

    const first = worker();
    await first.waitForOutput('run worker started');
    const res = await api.call('/v1/runs/bulk', { method: 'POST', json: { action: 'cancel', filter: { agent_id: 'bulk-target' } } });
    expect(res.status).toBe(202);
    const started = (await res.json()) as BulkOperation;
    expect(started).toMatchObject({ action: 'cancel', status: 'running', done: 0 });

    // Killed part-way: some runs cancelled, not all.
    const mid = await waitFor(async () => ((o) => (o.done >= 150 ? o : undefined))(await getOp(started.id)), 20_000, 'the walk to get going');
    await first.kill('SIGKILL');
    const atKill = await getOp(started.id);
    expect(mid.status).toBe('running');
    expect(atKill.status).toBe('running');
    expect(atKill.done).toBeLessThan(1000);

    // Another worker takes the stalled job over and resumes the walk.
    const second = worker();
    await second.waitForOutput('run worker started');
    const end = await waitFor(async () => ((o) => (o.status !== 'running' ? o : undefined))(await getOp(started.id)), 30_000, 'the operation to end');
    expect(end).toMatchObject({ status: 'done', matched: 1000, done: 1000, failed: 0, error: null });
    expect(second.output()).toContain('bulk operation resumed');

    const runs = await runhook.listRuns({ agent_ids: ['bulk-target'], limit: 1000 });
    expect(runs).toHaveLength(1000);
    expect(runs.filter((r) => r.status !== 'cancelled')).toEqual([]);
    const bystanders = await runhook.listRuns({ agent_ids: ['bulk-bystander'], limit: 1000 });
    expect(bystanders.map((r) => r.status)).toEqual(bystanders.map(() => 'created'));
    expect(bystanders).toHaveLength(50);
    // Each run was moved to cancelled by one of the two processes, once: the resumed walk's repeats of
    // the interrupted step found their runs cancelled already and changed nothing.
    expect(cancelledLines(first) + cancelledLines(second)).toBeLessThanOrEqual(1000);
    expect(cancelledLines(second)).toBeGreaterThan(0);
    await second.kill('SIGTERM');
  });
});
