import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CallbackHost } from '../../src/callbacks/breaker.ts';
import { callbackJobId } from '../../src/queue/queues.ts';
import { startService, type Service } from '../../src/service.ts';
import { startApiService, type ApiHarness } from '../helpers/api.ts';
import { Receiver } from '../helpers/receiver.ts';
import { silentLog, waitFor } from '../helpers/setup.ts';

/**
 * Receiver health (CONTRACT section 10): a host that keeps failing opens its breaker, deliveries to it
 * wait without spending attempts and only one probe at a time goes through; other hosts are untouched;
 * once it answers again, every held delivery goes out on its own.
 */
describe('the per-host callback breaker, with real receivers', () => {
  let h: ApiHarness;
  /** A second callback worker on the same Redis and prefix: the breaker is shared, not per process. */
  let other: Service;
  let dead: Receiver;
  let healthy: Receiver;
  const DEAD_RUNS = 20;
  const deadRuns: string[] = [];

  beforeAll(async () => {
    // Answers 503 after a little while, so that overlapping requests can be seen at the receiver.
    dead = await Receiver.start({ status: 503, delayMs: 30 });
    healthy = await Receiver.start({ status: 200 });
    h = await startApiService(
      {
        callbackTimeoutMs: 1_000,
        // Ten attempts, close together: without the breaker, 20 runs would cost the dead host 200 requests.
        callbackRetryDelaysMs: [0, 20, 20, 20, 20, 20, 20, 20, 20, 20],
        callbackBreakerFailures: 3,
        callbackBreakerOpenMs: 100,
        callbackBreakerMaxOpenMs: 300,
      },
      ['runs', 'callbacks'],
    );
    other = await startService(h.config, silentLog, new Set(['callbacks']));
  });
  afterAll(async () => {
    await other?.close();
    await h?.close();
    await Promise.all([dead?.close(), healthy?.close()]);
  });

  const hosts = async (): Promise<CallbackHost[]> => (await (await h.call('/v1/callbacks/hosts')).json()) as CallbackHost[];
  const hostOf = (r: Receiver) => `127.0.0.1:${r.port}`;
  const attemptsOf = async (ids: string[]) => {
    const all = await Promise.all(ids.map((id) => h.service.runhook.store.callbackAttempts(id)));
    return all.reduce((n, a) => n + a.length, 0);
  };
  const create = async (url: string) => {
    const res = await h.call('/v1/runs', { method: 'POST', json: { agent_id: 'agent-breaker', input: { text: 'hi' }, callback_url: url } });
    expect(res.status).toBe(201);
    return ((await res.json()) as { id: string }).id;
  };

  it('opens after consecutive failures; then a dead host gets one probe at a time and held deliveries spend no attempt', async () => {
    for (let i = 0; i < DEAD_RUNS; i++) deadRuns.push(await create(dead.url('/hook')));
    const open = await waitFor(async () => (await hosts()).find((x) => x.host === hostOf(dead) && x.state !== 'ok'), 15_000, 'the breaker to open');
    expect(open.consecutive_failures).toBeGreaterThanOrEqual(3);
    expect(open.next_probe_at).not.toBeNull();

    // Deliveries that had started before it opened finish; from then on, at most one request at a time.
    await waitFor(() => dead.inFlight === 0, 15_000, 'requests in flight when it opened to end');
    dead.maxInFlight = 0;
    const before = dead.requests.length;
    await dead.waitForRequests(before + 4);
    expect(dead.maxInFlight).toBe(1);

    // Every request the dead host got is an attempt recorded on a run, and nothing else is: a held
    // delivery is no attempt. (Read between two probes: the host's count is taken last.)
    await waitFor(() => dead.inFlight === 0, 15_000, 'the probe in flight to end');
    const recorded = await attemptsOf(deadRuns);
    expect(dead.requests.length).toBeGreaterThanOrEqual(recorded);
    expect(dead.requests.length - recorded).toBeLessThanOrEqual(1); // a probe that arrived but is not recorded yet
    // BullMQ agrees: a held job's attemptsMade did not move (its schedule is not spent while it waits).
    const jobs = await Promise.all(deadRuns.map((id) => h.service.runhook.callbackQueue.getJob(callbackJobId(id))));
    const spent = jobs.reduce((n, j) => n + (j ? j.attemptsMade + (j.data.offset ?? 0) : 1), 0);
    expect(spent).toBeLessThanOrEqual(recorded);
    expect(recorded - spent).toBeLessThanOrEqual(1); // an attempt recorded whose job has not moved on yet
    // Far fewer than the schedule would have made: 20 runs × 10 attempts.
    expect(dead.requests.length).toBeLessThan(DEAD_RUNS * 10);
    const counts = await h.service.runhook.store.callbackCounts();
    expect(counts.given_up).toBe(0);
    console.info(`breaker: ${DEAD_RUNS} runs to a dead host cost it ${dead.requests.length} requests (${before} before it opened and went quiet, then one probe at a time)`);
  });

  it("leaves another host's deliveries alone while one host's breaker is open", async () => {
    expect((await hosts()).find((x) => x.host === hostOf(dead))?.state).not.toBe('ok');
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) ids.push(await create(healthy.url('/hook')));
    await healthy.waitForRequests(10);
    await waitFor(async () => (await attemptsOf(ids)) === 10, 15_000, 'the healthy deliveries to be recorded');
    for (const id of ids) {
      const a = await h.service.runhook.store.callbackAttempts(id);
      expect(a.map((x) => x.status_code)).toEqual([200]);
    }
    expect((await hosts()).find((x) => x.host === hostOf(healthy))).toBeUndefined();
  });

  it('closes when the host answers again, and every held delivery goes out on its own', async () => {
    dead.answer({ status: 200 });
    await waitFor(
      async () => {
        const states = await Promise.all(deadRuns.map((id) => h.service.runhook.redis.hget(h.service.runhook.store.keys.run(id), 'callback_state')));
        return states.every((s) => s === 'delivered');
      },
      30_000,
      'every held callback to be delivered',
    );
    const host = (await hosts()).find((x) => x.host === hostOf(dead));
    expect(host).toMatchObject({ state: 'ok', consecutive_failures: 0, next_probe_at: null });
    // Each run's callback arrived, with its own webhook-id.
    const ids = new Set(dead.requests.filter((r) => r.headers['webhook-id'] && r.at > 0).map((r) => r.headers['webhook-id']));
    for (const id of deadRuns) expect(ids.has(`msg_${id}`)).toBe(true);
  });

  it('reports the breakers in /metrics without a host label', async () => {
    const text = await (await fetch(`${h.url}/metrics`)).text();
    expect(text).toMatch(/^runhook_callback_breakers\{state="ok"\} \d+$/m);
    expect(text).toMatch(/^runhook_callback_breakers\{state="open"\} 0$/m);
    expect(text).toMatch(/^runhook_callback_breakers\{state="half_open"\} 0$/m);
  });
});
