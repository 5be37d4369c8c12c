import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { CallbackPayload } from '../../src/callbacks/payload.ts';
import { verifyCallback } from '../../src/callbacks/verify.ts';
import { callbackJobId } from '../../src/queue/queues.ts';
import type { CallbackAttempt, Run } from '../../src/runs/schema.ts';
import { startService, type Service } from '../../src/service.ts';
import { Receiver, type Reply } from '../helpers/receiver.ts';
import { silentLog, testConfig, waitFor } from '../helpers/setup.ts';

const secret = `whsec_${randomBytes(24).toString('base64')}`;
const TIMEOUT_MS = 300;

describe('callbacks of real runs, delivered by the callback worker', () => {
  let service: Service;
  const receivers: Receiver[] = [];
  const receiver = async (...replies: Reply[]) => {
    const r = await Receiver.start(...replies);
    receivers.push(r);
    return r;
  };
  beforeAll(async () => {
    const config = testConfig({ webhookSecret: secret, callbackTimeoutMs: TIMEOUT_MS, callbackRetryDelaysMs: [0, 20, 40] });
    service = await startService(config, silentLog, new Set(['runs', 'callbacks']));
  });
  afterEach(async () => {
    await Promise.all(receivers.splice(0).map((r) => r.close()));
  });
  afterAll(() => service.close());

  const runTo = async (url: string, input: Record<string, unknown> = { text: 'hello world' }, metadata?: Record<string, unknown>) => {
    const { run } = await service.runhook.createRun({ agent_id: 'agent-cb', input, callback_url: url, ...(metadata && { metadata }) });
    return run.id;
  };
  const attempts = (id: string, n: number) =>
    waitFor(async () => {
      const a = await service.runhook.store.callbackAttempts(id);
      return a.length >= n ? a : undefined;
    }, 15_000, `${n} callback attempts`);
  const jobState = async (id: string) => (await service.runhook.callbackQueue.getJob(callbackJobId(id)))?.getState();
  const jobSettled = (id: string) => waitFor(async () => ['completed', 'failed'].includes((await jobState(id)) ?? '') && jobState(id), 15_000, 'the callback job to settle');
  /** 'completed' once the callback is delivered, 'failed' once it is given up (first attempts need no job). */
  const settled = (id: string) =>
    waitFor(
      async () => {
        const state = await service.runhook.redis.hget(service.runhook.store.keys.run(id), 'callback_state');
        return state === 'delivered' ? 'completed' : state === 'given_up' ? 'failed' : undefined;
      },
      15_000,
      'the callback to settle',
    );

  it("delivers Letta's payload, signed, and records the success on the run", async () => {
    const r = await receiver({ status: 200 });
    const id = await runTo(r.url('/hooks/letta'), { text: 'hello world' }, { team: 'a' });
    const [req] = await r.waitForRequests(1);
    await attempts(id, 1);
    const payload = verifyCallback(secret, req!.headers, req!.body);
    expect(new Webhook(secret).verify(req!.body, req!.headers as Record<string, string>)).toEqual(payload);
    expect(req!.headers['webhook-id']).toBe(`msg_${id}`);

    const run = await service.runhook.getRun(id);
    expect(payload).toMatchObject<Partial<CallbackPayload>>({
      run_id: id,
      status: 'completed',
      completed_at: run.completed_at,
      agent_id: 'agent-cb',
      stop_reason: 'end_turn',
      ttft_ns: run.ttft_ns,
      total_duration_ns: run.total_duration_ns,
    });
    expect(payload.metadata.team).toBe('a');
    expect(payload.metadata.result.stop_reason).toEqual({ message_type: 'stop_reason', stop_reason: 'end_turn' });
    expect(payload.metadata.result.usage.message_type).toBe('usage_statistics');
    expect(payload.metadata.result.messages.map((m) => m.content).join('')).toBe('hello world');

    expect(run).toMatchObject<Partial<Run>>({ callback_status_code: 200, callback_error: null });
    expect(run.callback_sent_at).not.toBeNull();
    const log = await service.runhook.store.callbackAttempts(id);
    expect(log).toEqual([expect.objectContaining<Partial<CallbackAttempt>>({ attempt: 1, status_code: 200, error: null, gave_up: false })]);
    expect(await settled(id)).toBe('completed');
  });

  it('retries after a 500 and records both attempts', async () => {
    const r = await receiver({ status: 500 }, { status: 200 });
    const id = await runTo(r.url());
    const log = await attempts(id, 2);
    expect(log.map((a) => [a.attempt, a.status_code, a.error])).toEqual([
      [1, 500, 'HTTP 500'],
      [2, 200, null],
    ]);
    const reqs = await r.waitForRequests(2);
    expect(reqs[0]!.headers['webhook-id']).toBe(reqs[1]!.headers['webhook-id']);
    expect(await service.runhook.getRun(id)).toMatchObject({ callback_status_code: 200, callback_error: null });
  });

  it('gives up after the whole schedule against a receiver that always fails, and logs every attempt', async () => {
    const r = await receiver({ status: 500 });
    const id = await runTo(r.url());
    expect(await settled(id)).toBe('failed');
    const log = await service.runhook.store.callbackAttempts(id);
    expect(log.map((a) => [a.status_code, a.error, a.gave_up])).toEqual([
      [500, 'HTTP 500', false],
      [500, 'HTTP 500', false],
      [500, 'HTTP 500', true],
    ]);
    expect(r.requests).toHaveLength(3);
    expect(await service.runhook.getRun(id)).toMatchObject({ callback_status_code: 500, callback_error: 'HTTP 500' });
  });

  it('does not follow a redirect, and counts it as a failed attempt', async () => {
    const elsewhere = await receiver({ status: 200 });
    const r = await receiver({ redirect: elsewhere.url(), status: 302 });
    const id = await runTo(r.url());
    expect(await settled(id)).toBe('failed');
    const log = await service.runhook.store.callbackAttempts(id);
    expect(log).toHaveLength(3);
    expect(log.every((a) => a.status_code === 302 && a.error === 'redirect refused')).toBe(true);
    expect(elsewhere.requests).toHaveLength(0);
  });

  it('stops at once on 410 Gone', async () => {
    const r = await receiver({ status: 410 });
    const id = await runTo(r.url());
    expect(await settled(id)).toBe('failed');
    const log = await service.runhook.store.callbackAttempts(id);
    expect(log).toEqual([expect.objectContaining({ attempt: 1, status_code: 410, error: 'HTTP 410', gave_up: true })]);
    expect(r.requests).toHaveLength(1);
  });

  it('records a timeout with no status code when the receiver hangs', async () => {
    const r = await receiver({ hang: true }, { hang: true }, { status: 200 });
    const id = await runTo(r.url());
    const log = await attempts(id, 3);
    expect(log.slice(0, 2).map((a) => [a.status_code, a.error])).toEqual([
      [null, `timeout after ${TIMEOUT_MS} ms`],
      [null, `timeout after ${TIMEOUT_MS} ms`],
    ]);
    expect(log[2]).toMatchObject({ status_code: 200, error: null });
  });

  it('retries after the receiver closes the connection', async () => {
    const r = await receiver({ close: true }, { status: 200 });
    const id = await runTo(r.url());
    const log = await attempts(id, 2);
    expect(log[0]!.status_code).toBeNull();
    expect(log[0]!.error).toMatch(/^connection (closed|reset)$/);
    expect(log[1]).toMatchObject({ status_code: 200, error: null });
  });

  it('succeeds against a receiver that answers with 50 MB, reading only a little of it', async () => {
    const r = await receiver({ hugeBodyBytes: 50 * 1024 * 1024 });
    const id = await runTo(r.url());
    const [a] = await attempts(id, 1);
    expect(a).toMatchObject({ status_code: 200, error: null });
    await waitFor(() => r.abandoned >= 1, 5_000, 'the huge answer to be abandoned');
  });

  it('records a refused connection', async () => {
    const gone = await Receiver.start();
    const url = gone.url();
    await gone.close();
    const id = await runTo(url);
    expect(await settled(id)).toBe('failed');
    const log = await service.runhook.store.callbackAttempts(id);
    expect(log.map((a) => a.error)).toEqual(['connection refused', 'connection refused', 'connection refused']);
    expect(await service.runhook.getRun(id)).toMatchObject({ callback_status_code: null, callback_error: 'connection refused' });
  });

  it('records a name that does not resolve', async () => {
    const id = await runTo('http://no-such-host.invalid/hook');
    expect(await settled(id)).toBe('failed');
    const run = await service.runhook.getRun(id);
    expect(run.callback_error).toMatch(/^DNS lookup failed for no-such-host\.invalid/);
  });

  it('calls back for failed and cancelled runs too', async () => {
    const r = await receiver({ status: 200 });
    const failed = await runTo(r.url(), { text: 'x', fail: 'boom' });
    const cancelled = await runTo(r.url(), { text: 'a b c d e f g', token_ms: 200 });
    await waitFor(async () => (await service.runhook.getRun(cancelled)).status === 'running', 10_000, 'the run to start');
    await service.runhook.cancelRun(cancelled);
    const reqs = await r.waitForRequests(2);
    const byRun = new Map(reqs.map((q) => [(q.json() as CallbackPayload).run_id, q.json() as CallbackPayload]));
    expect(byRun.get(failed)).toMatchObject({ status: 'failed', stop_reason: 'error', metadata: { error: 'boom' } });
    expect(byRun.get(cancelled)).toMatchObject({ status: 'cancelled', stop_reason: 'cancelled' });
  });

  it('delivers again on a manual retry, with the same webhook-id', async () => {
    const r = await receiver({ status: 200 });
    const id = await runTo(r.url());
    await attempts(id, 1);
    await service.runhook.retryCallback(id);
    const reqs = await r.waitForRequests(2);
    expect(reqs[1]!.headers['webhook-id']).toBe(reqs[0]!.headers['webhook-id']);
    const log = await attempts(id, 2);
    expect(log.map((a) => a.attempt)).toEqual([1, 2]);
  });

  it('does not deliver twice when the automatic job comes again after a delivery', async () => {
    const r = await receiver({ status: 200 });
    const id = await runTo(r.url());
    expect(await settled(id)).toBe('completed');
    // As after the job record was trimmed and the outbox was swept again.
    await service.runhook.callbackQueue.remove(callbackJobId(id));
    await service.runhook.dispatchCallbacks([id]);
    expect(await jobSettled(id)).toBe('completed');
    expect(r.requests).toHaveLength(1);
    expect(await service.runhook.store.callbackAttempts(id)).toHaveLength(1);
  });
});
