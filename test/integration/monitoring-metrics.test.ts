import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Run } from '../../src/runs/schema.ts';
import { startService, type Part, type Service } from '../../src/service.ts';
import { startApiService, type ApiHarness } from '../helpers/api.ts';
import { Receiver } from '../helpers/receiver.ts';
import { silentLog, testConfig, waitFor } from '../helpers/setup.ts';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/**
 * The Prometheus text format, strictly: every line a comment (`# HELP`/`# TYPE`) or a sample with a
 * numeric value, every sample of a declared metric. Throws on anything else.
 */
function parseExposition(text: string): Sample[] {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const comment = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (comment) {
      if (comment[1] === 'TYPE') types.set(comment[2]!, comment[3]!);
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[k!] = v!;
    // Prometheus reads values with Go's ParseFloat: NaN and Inf in any case (prom-client writes `Nan`).
    const special = /^([+-]?)(inf|nan)$/i.exec(m[3]!);
    const value = special ? (special[2]!.toLowerCase() === 'nan' ? NaN : special[1] === '-' ? -Infinity : Infinity) : Number(m[3]);
    if (Number.isNaN(value) && !special) throw new Error(`not a number: ${line}`);
    const family = m[1]!.replace(/_(bucket|sum|count)$/, '');
    if (!types.has(m[1]!) && !types.has(family)) throw new Error(`sample of an undeclared metric: ${line}`);
    samples.push({ name: m[1]!, labels, value });
  }
  return samples;
}

const value = (samples: Sample[], name: string, labels: Record<string, string> = {}) =>
  samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);

describe('GET /metrics', () => {
  let api: ApiHarness;
  let ok: Receiver;
  let down: Receiver;
  const scrape = async () => {
    const res = await api.call('/metrics');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    return parseExposition(await res.text());
  };
  const create = async (input: object, callbackUrl?: string) =>
    (await (await api.call('/v1/runs', { method: 'POST', json: { agent_id: 'a1', input, callback_url: callbackUrl ?? null } })).json()) as Run;

  beforeAll(async () => {
    ok = await Receiver.start({ status: 200 });
    down = await Receiver.start({ status: 503 });
    api = await startApiService({ runAttempts: 1, callbackRetryDelaysMs: [0, 10] }, ['runs', 'callbacks']);
  });
  afterAll(async () => {
    await api?.close();
    await ok?.close();
    await down?.close();
  });

  it('parses, and its counters move as runs complete and callbacks succeed or fail', async () => {
    const before = await scrape();
    expect(value(before, 'runhook_run_duration_seconds_count')).toBe(0);
    expect(value(before, 'runhook_queue_state_up')).toBe(1);

    await create({ text: 'hello there', ttft_ms: 5 }, ok.url('/hook'));
    await create({ text: 'second' }, down.url('/hook'));
    await create({ text: 'x', fail: 'boom' });

    // Everything settled: three runs ended and their jobs finished, three delivery attempts recorded.
    const after = await waitFor(async () => {
      const s = await scrape();
      const settled =
        value(s, 'runhook_run_duration_seconds_count') === 3 &&
        value(s, 'runhook_queue_jobs_finished_total', { queue: 'runs' }) === 3 &&
        value(s, 'runhook_callback_attempts_total') === 3;
      return settled ? s : undefined;
    }, 15_000, 'runs to end and callbacks to be delivered or given up');

    expect(value(after, 'runhook_run_duration_seconds_count', { status: 'completed' })).toBe(2);
    expect(value(after, 'runhook_run_duration_seconds_count', { status: 'failed' })).toBe(1);
    expect(value(after, 'runhook_run_duration_seconds_sum', { status: 'completed' })).toBeGreaterThan(0.005);
    // The echo processor answers before it fails as told: all three had a first token.
    expect(value(after, 'runhook_run_ttft_seconds_count')).toBe(3);
    expect(value(after, 'runhook_run_ttft_seconds_bucket', { le: '+Inf' })).toBe(3);
    expect(value(after, 'runhook_callback_attempts_total', { outcome: 'delivered' })).toBe(1);
    expect(value(after, 'runhook_callback_attempts_total', { outcome: 'retrying' })).toBe(1);
    expect(value(after, 'runhook_callback_attempts_total', { outcome: 'given_up' })).toBe(1);
    expect(value(after, 'runhook_callback_duration_seconds_count')).toBe(3);

    expect(value(after, 'runhook_queue_jobs', { queue: 'runs', state: 'completed' })).toBe(2);
    expect(value(after, 'runhook_queue_jobs', { queue: 'runs', state: 'failed' })).toBe(1);
    expect(value(after, 'runhook_queue_jobs_finished_total', { queue: 'runs', state: 'completed' })).toBe(2);
    expect(value(after, 'runhook_queue_workers', { queue: 'callbacks' })).toBe(1);
    expect(value(after, 'runhook_runs', { status: 'completed' })).toBe(2);
    expect(value(after, 'runhook_runs', { status: 'failed' })).toBe(1);
    expect(value(after, 'runhook_callbacks', { state: 'delivered' })).toBe(1);
    expect(value(after, 'runhook_callbacks', { state: 'given_up' })).toBe(1);

    // Requests by route template, not by path; nothing is labelled with a run id.
    expect(value(after, 'runhook_http_request_duration_seconds_count', { method: 'POST', route: '/v1/runs', status_code: '201' })).toBe(3);
    expect(after.some((s) => Object.values(s.labels).some((v) => v.includes('run-')))).toBe(false);
    // The process's own metrics.
    expect(after.some((s) => s.name === 'process_cpu_user_seconds_total')).toBe(true);
    expect(after.some((s) => s.name === 'nodejs_heap_size_used_bytes')).toBe(true);
  });

  it('labels a request by the route it matched', async () => {
    await api.call('/v1/runs/run-00000000-0000-4000-8000-000000000000');
    await api.call('/no/such/route');
    const s = await scrape();
    expect(value(s, 'runhook_http_request_duration_seconds_count', { route: '/v1/runs/:run_id', status_code: '404' })).toBe(1);
    expect(value(s, 'runhook_http_request_duration_seconds_count', { route: 'unmatched', status_code: '404' })).toBe(1);
  });
});

describe('metrics behind API keys, and of a process without the API', () => {
  const KEY = 'metrics-key-0123456789';
  let api: ApiHarness;
  let worker: Service;
  beforeAll(async () => {
    api = await startApiService({ apiKeys: [KEY] });
    // A worker-only process on the same prefix, with its own /metrics port.
    const config = testConfig({ ...api.config, host: '127.0.0.1', metricsPort: 0 });
    worker = await startService(config, silentLog, new Set<Part>(['runs']));
  });
  afterAll(async () => {
    await worker?.close();
    await api?.close();
  });

  it('asks for the key as Bearer or Basic credentials', async () => {
    const none = await api.call('/metrics');
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Basic realm="runhook"/);
    expect((await api.call('/metrics', { headers: { authorization: `Bearer ${KEY}` } })).status).toBe(200);
    const basic = `Basic ${Buffer.from(`runhook:${KEY}`).toString('base64')}`;
    expect((await api.call('/metrics', { headers: { authorization: basic } })).status).toBe(200);
    const wrong = `Basic ${Buffer.from('runhook:nope').toString('base64')}`;
    expect((await api.call('/metrics', { headers: { authorization: wrong } })).status).toBe(401);
  });

  it("serves a worker process's run histograms on RUNHOOK_METRICS_PORT", async () => {
    expect(worker.metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    expect((await fetch(worker.metricsUrl!)).status).toBe(401);
    const res = await api.call('/v1/runs', { method: 'POST', headers: { authorization: `Bearer ${KEY}` }, json: { agent_id: 'a1', input: { text: 'hi' } } });
    expect(res.status).toBe(201);
    const samples = await waitFor(async () => {
      const text = await (await fetch(worker.metricsUrl!, { headers: { authorization: `Bearer ${KEY}` } })).text();
      const s = parseExposition(text);
      return value(s, 'runhook_run_duration_seconds_count', { status: 'completed' }) === 1 ? s : undefined;
    }, 15_000, 'the worker to count the run');
    expect(value(samples, 'runhook_queue_workers', { queue: 'runs' })).toBe(1);
  });
});
