import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApiService, type ApiHarness } from '../helpers/api.ts';

/** A small seeded PRNG (mulberry32), so a failing case can be replayed from its seed. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  return { next, int, pick };
}
type Rand = ReturnType<typeof prng>;

const NASTY_STRINGS = ['', ' ', '\u0000', '💥', 'ünïcødé', '../../etc/passwd', '%00', '<script>', 'run-', 'run-not-a-uuid', '-1', '1e309', 'NaN', 'null', '__proto__', 'constructor', 'a'.repeat(300), 'x'.repeat(70_000)];
const NASTY_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'metadata_', ''];
const STATUSES = ['created', 'running', 'completed', 'failed', 'cancelled', 'pending', 'expired', 'RUNNING', 'done'];

function value(r: Rand, depth = 0): unknown {
  switch (r.int(depth > 3 ? 6 : 9)) {
    case 0: return r.pick(NASTY_STRINGS);
    case 1: return r.pick([0, -1, 1.5, 2 ** 53 + 1, -1e308, 1e308]);
    case 2: return r.pick([true, false, null]);
    case 3: return r.pick(STATUSES);
    case 4: return `http://${r.pick(['127.0.0.1', 'example.com', '169.254.169.254', '[::1]', ''])}/${r.pick(NASTY_STRINGS).slice(0, 50)}`;
    case 5: return r.pick(['end_turn', 'error', 'cancelled', 'not_a_reason']);
    case 6: return Array.from({ length: r.int(4) }, () => value(r, depth + 1));
    default: {
      const o: Record<string, unknown> = {};
      for (let i = r.int(5); i > 0; i--) o[r.next() < 0.3 ? r.pick(NASTY_KEYS) : r.pick(['agent_id', 'input', 'status', 'callback_url', 'metadata', 'stop_reason', 'limit', 'run_ids', 'messages', 'background'])] = value(r, depth + 1);
      return o;
    }
  }
}

function deepNest(n: number): string {
  return '['.repeat(n) + ']'.repeat(n);
}

/** A request body: JSON of a random value, or raw bytes that are not JSON at all. */
function body(r: Rand): { payload: string | Buffer; contentType: string } {
  switch (r.int(10)) {
    case 0: return { payload: Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]), contentType: 'application/json' }; // invalid UTF-8
    case 1: return { payload: deepNest(r.pick([100, 10_000, 200_000])), contentType: 'application/json' };
    case 2: return { payload: '{"agent_id": "a", ', contentType: 'application/json' };
    case 3: return { payload: JSON.stringify({ agent_id: 'a', input: 'y'.repeat(r.pick([10, 2_000_000])) }), contentType: 'application/json' };
    case 4: return { payload: 'agent_id=a', contentType: r.pick(['application/x-www-form-urlencoded', 'text/plain', 'application/xml']) };
    case 5: return { payload: JSON.stringify({ agent_id: 'fuzz', metadata: JSON.parse('{"__proto__": {"polluted": true}, "constructor": {"prototype": {"polluted": true}}}') }), contentType: 'application/json' };
    default: return { payload: JSON.stringify(value(r)), contentType: 'application/json' };
  }
}

function query(r: Rand): string {
  const params: string[] = [];
  for (let i = r.int(5); i > 0; i--) {
    const k = r.pick(['limit', 'after', 'before', 'order', 'statuses', 'agent_id', 'agent_ids', 'active', 'background', 'ascending', 'stop_reason', 'conversation_id', '__proto__', 'starting_after']);
    const v = r.pick([...NASTY_STRINGS.slice(0, 16), '-5', '0', '1001', '50', 'asc', 'desc', 'true', 'maybe', ...STATUSES, '%E0%A4%A', '%ff']);
    params.push(`${encodeURIComponent(k)}=${v.startsWith('%') ? v : encodeURIComponent(v)}`);
  }
  return params.length ? `?${params.join('&')}` : '';
}

let api: ApiHarness;
let knownRun: string;

beforeAll(async () => {
  api = await startApiService();
  const res = await api.call('/v1/runs', { method: 'POST', json: { agent_id: 'fuzz' } });
  knownRun = ((await res.json()) as { id: string }).id;
});
afterAll(() => api.close());

describe('fault suite: fuzzing the API with bad input', () => {
  it('answers 2,000+ malformed requests with contract errors, never a 5xx, never a crash', async () => {
    const seed = 20261125;
    const r = prng(seed);
    const seen: Record<number, number> = {};
    const CASES = 2_400;
    for (let i = 0; i < CASES; i++) {
      const id = r.pick([knownRun, 'run-00000000-0000-4000-8000-000000000000', ...NASTY_STRINGS.slice(0, 12).map(encodeURIComponent)]);
      const agent = r.pick(['a1', '%20', '..', encodeURIComponent('💥')]);
      const [method, path] = r.pick([
        ['POST', '/v1/runs'],
        ['POST', `/v1/agents/${agent}/messages/async`],
        ['POST', `/v1/agents/${agent}/messages/cancel`],
        ['PATCH', `/v1/runs/${id}`],
        ['GET', `/v1/runs${query(r)}`],
        ['GET', `/v1/runs/${id}${r.next() < 0.5 ? '' : r.pick(['/messages', '/usage', '/metrics', '/callback-attempts'])}${query(r)}`],
        ['POST', `/v1/runs/${id}/cancel`],
        ['POST', `/v1/runs/${id}/callback/retry`],
        ['DELETE', `/v1/runs/${r.pick(NASTY_STRINGS.slice(0, 10).map(encodeURIComponent))}`],
      ] as const);
      const hasBody = method === 'POST' || method === 'PATCH';
      const b = hasBody ? body(r) : undefined;
      const res = await request(`${api.url}${path}`, {
        method,
        headers: b ? { 'content-type': b.contentType, ...(r.next() < 0.1 && { 'idempotency-key': r.pick(['k', 'same-key', 'x'.repeat(300), '%00', '__proto__']) }) } : {},
        body: b?.payload,
      });
      const text = await res.body.text();
      seen[res.statusCode] = (seen[res.statusCode] ?? 0) + 1;
      const where = `case ${i} (seed ${seed}): ${method} ${path.slice(0, 120)} → ${res.statusCode} ${text.slice(0, 200)}`;
      expect(res.statusCode, where).toBeLessThan(500);
      if (res.statusCode >= 400) {
        const parsed = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
        expect(typeof parsed.error?.code, where).toBe('string');
        expect(typeof parsed.error?.message, where).toBe('string');
        expect(text, where).not.toMatch(/at .+\.(ts|js):\d+/);
      }
    }
    console.log('fuzz statuses:', JSON.stringify(seen));
    expect((await api.call('/healthz')).status).toBe(200);
  }, 300_000);

  it('never lets __proto__ or constructor keys in a body pollute objects: such bodies are refused', async () => {
    for (const poisoned of [
      '{"agent_id":"fuzz","metadata":{"__proto__":{"polluted":true}}}',
      '{"agent_id":"fuzz","metadata":{"constructor":{"prototype":{"polluted":true}}}}',
      '{"agent_id":"fuzz","__proto__":{"polluted":true}}',
    ]) {
      const res = await api.call('/v1/runs', { method: 'POST', headers: { 'content-type': 'application/json' }, body: poisoned });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('INVALID_INPUT');
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((Object.prototype as Record<string, unknown>).polluted).toBeUndefined();
    const ok = await api.call('/v1/runs', { method: 'POST', json: { agent_id: 'fuzz', metadata: { prototype: 1, toString: 'x' } } });
    expect(ok.status).toBe(201);
    const run = (await ok.json()) as { id: string; metadata: Record<string, unknown> };
    expect(run.metadata).toEqual({ prototype: 1, toString: 'x' });
  });
});
