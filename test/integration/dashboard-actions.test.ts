import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callbackJobId } from '../../src/queue/queues.ts';
import { startApiService, type ApiHarness } from '../helpers/api.ts';
import { Receiver } from '../helpers/receiver.ts';
import { waitFor } from '../helpers/setup.ts';

/**
 * Bull Board agrees with the run store (CONTRACT section 10): every job action its JSON API has, tried
 * on a run's and a callback's job in each state, is refused, and afterwards each run, its callback and
 * its job are exactly as before. (The UI offers no action: the queues say readOnlyMode.)
 */
describe("Bull Board's job actions, checked against the run store", () => {
  let h: ApiHarness;
  let receiver: Receiver;
  const API = '/admin/queues/api/queues';
  /** Requests per path, so each path can answer its own way. */
  const seen = new Map<string, number>();

  beforeAll(async () => {
    receiver = await Receiver.start((req) => {
      const n = (seen.get(req.url) ?? 0) + 1;
      seen.set(req.url, n);
      if (req.url === '/pending') return { status: 503 }; // retried, then waits (delayed) for a long while
      if (req.url === '/recovers') return { status: n === 1 ? 503 : 200 }; // its job completes
      return { status: n === 1 ? 503 : 410 }; // /gone: its job fails
    });
    h = await startApiService(
      { callbackRetryDelaysMs: [0, 10, 600_000], runAttempts: 1, callbackBreakerFailures: 10_000 },
      ['runs', 'callbacks'],
    );
  });
  afterAll(async () => {
    await h?.close();
    await receiver?.close();
  });

  const rh = () => h.service.runhook;
  const create = async (input: Record<string, unknown>, callbackPath?: string) => {
    const res = await h.call('/v1/runs', {
      method: 'POST',
      json: { agent_id: 'agent-board', input, ...(callbackPath && { callback_url: receiver.url(callbackPath) }) },
    });
    expect(res.status).toBe(201);
    return ((await res.json()) as { id: string }).id;
  };
  const runJobState = async (id: string) => (await rh().queue.getJob(id))?.getState();
  const cbJobState = async (id: string) => (await rh().callbackQueue.getJob(callbackJobId(id)))?.getState();
  /** What the run store and the queues say of a run: compared before and after every action. */
  const snapshot = async (id: string) => {
    const run = await rh().getRun(id);
    return {
      status: run.status,
      stop_reason: run.stop_reason,
      callback: await rh().redis.hget(rh().store.keys.run(id), 'callback_state'),
      attempts: (await rh().store.callbackAttempts(id)).length,
      runJob: await runJobState(id),
      callbackJob: await cbJobState(id),
    };
  };

  const ids: Record<string, string> = {};

  it('has a run and a callback job in every state it can show', async () => {
    ids.completedRun = await create({ text: 'done' });
    ids.failedRun = await create({ text: 'no', fail: 'boom' });
    ids.callbackPending = await create({ text: 'cb' }, '/pending');
    ids.callbackCompleted = await create({ text: 'cb' }, '/recovers');
    ids.callbackFailed = await create({ text: 'cb' }, '/gone');
    await waitFor(async () => (await runJobState(ids.completedRun!)) === 'completed', 15_000, 'a completed run job');
    await waitFor(async () => (await runJobState(ids.failedRun!)) === 'failed', 15_000, 'a failed run job');
    await waitFor(async () => (await cbJobState(ids.callbackPending!)) === 'delayed' && seen.get('/pending') === 2, 15_000, 'a delayed callback job');
    await waitFor(async () => (await cbJobState(ids.callbackCompleted!)) === 'completed', 15_000, 'a completed callback job');
    await waitFor(async () => (await cbJobState(ids.callbackFailed!)) === 'failed', 15_000, 'a failed callback job');
    // A waiting run's job: the runs queue paused (through runhook's API, which Bull Board leaves alone).
    expect((await h.call('/v1/queues/runs/pause', { method: 'POST' })).status).toBeLessThan(300);
    ids.waitingRun = await create({ text: 'waits' });
    await waitFor(async () => ['waiting', 'paused'].includes((await runJobState(ids.waitingRun!)) ?? ''), 15_000, 'a waiting run job');

    expect(await snapshot(ids.failedRun)).toMatchObject({ status: 'failed', runJob: 'failed' });
    expect(await snapshot(ids.callbackPending)).toMatchObject({ status: 'completed', callback: 'retrying', callbackJob: 'delayed' });
    expect(await snapshot(ids.callbackFailed)).toMatchObject({ callback: 'given_up', callbackJob: 'failed' });
    expect(await snapshot(ids.callbackCompleted)).toMatchObject({ callback: 'delivered', callbackJob: 'completed' });
  });

  it('tells the UI that no action is offered on either queue', async () => {
    const res = await fetch(`${h.url}${API}?activeQueue=runs&status=latest`);
    expect(res.status).toBe(200);
    const { queues } = (await res.json()) as { queues: { name: string; readOnlyMode: boolean; allowRetries: boolean; allowCompletedRetries: boolean }[] };
    expect(queues.map((q) => q.name).sort()).toEqual(['callbacks', 'runs']);
    for (const q of queues) expect(q).toMatchObject({ readOnlyMode: true, allowRetries: false, allowCompletedRetries: false });
  });

  it('refuses every job action on every job, and leaves the run store and the queues as they were', async () => {
    const before = new Map<string, Awaited<ReturnType<typeof snapshot>>>();
    for (const id of Object.values(ids)) before.set(id, await snapshot(id));
    const call = (method: string, path: string, body?: unknown) =>
      fetch(`${h.url}${API}${path}`, {
        method,
        ...(body !== undefined && { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
      });

    const jobActions: [string, string, unknown?][] = [
      ['PUT', 'retry'],
      ['PUT', 'clean'],
      ['PUT', 'promote'],
      ['PATCH', 'update-data', { jobData: { run_id: 'someone-else' } }],
      ['PATCH', 'delay', { runAt: Date.now() }],
      ['PATCH', 'priority', { priority: 1 }],
      ['PUT', 'remove-unprocessed-children'],
    ];
    const jobs: [string, string][] = [
      ['runs', ids.completedRun!],
      ['runs', ids.failedRun!],
      ['runs', ids.waitingRun!],
      ['callbacks', callbackJobId(ids.callbackPending!)],
      ['callbacks', callbackJobId(ids.callbackCompleted!)],
      ['callbacks', callbackJobId(ids.callbackFailed!)],
    ];
    for (const [queue, jobId] of jobs) {
      for (const [method, action, body] of jobActions) {
        const res = await call(method, `/${queue}/${encodeURIComponent(jobId)}/${action}`, body);
        expect(`${queue} ${jobId} ${action}: ${res.status}`).toBe(`${queue} ${jobId} ${action}: 405`);
      }
    }
    const queueActions: [string, string, unknown?][] = [
      ['PUT', 'retry/failed'],
      ['PUT', 'retry/completed'],
      ['PUT', 'promote'],
      ['PUT', 'clean/completed'],
      ['PUT', 'clean/failed'],
      ['PUT', 'clean/delayed'],
      ['PUT', 'clean/wait'],
      ['PUT', 'pause'],
      ['PUT', 'resume'],
      ['PUT', 'empty'],
      ['PUT', 'concurrency', { concurrency: 1 }],
      ['PUT', 'obliterate', { force: true }],
      ['PUT', 'rate-limit', { max: 1, duration: 1_000 }],
      ['PUT', 'rate-limit/release'],
      ['POST', 'add', { name: 'run', data: { agent_id: 'agent-board' } }],
    ];
    for (const queue of ['runs', 'callbacks']) {
      for (const [method, action, body] of queueActions) {
        const res = await call(method, `/${queue}/${action}`, body);
        expect(`${queue} ${action}: ${res.status}`).toBe(`${queue} ${action}: 405`);
      }
    }
    // Pause all / resume all skip read-only queues: they answer, and change nothing.
    expect((await call('PUT', '/pause')).status).toBe(200);
    expect((await call('PUT', '/resume')).status).toBe(200);

    for (const [id, was] of before) expect(await snapshot(id)).toEqual(was);
    expect(await rh().queue.isPaused()).toBe(true); // as runhook's API left it
    expect(await rh().callbackQueue.isPaused()).toBe(false);
    expect(await rh().queue.getWaitingCount()).toBe(1);
  });
});
