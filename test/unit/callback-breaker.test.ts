import { describe, expect, it } from 'vitest';
import { hostOf, hostOutcome } from '../../src/callbacks/breaker.ts';
import type { DeliveryResult } from '../../src/callbacks/deliver.ts';
import type { QueuesReport, QueueState } from '../../src/monitoring/schemas.ts';
import { renderStatus, WIDTH } from '../../src/monitoring/status-view.ts';

const result = (statusCode: number | null, error: string | null, final = false): DeliveryResult => ({ statusCode, error, durationMs: 1, final });

describe('what the breaker counts', () => {
  it('keeps one breaker per host and port', () => {
    expect(hostOf('https://hooks.example.com/a?b=1')).toBe('hooks.example.com');
    expect(hostOf('http://127.0.0.1:4000/hook')).toBe('127.0.0.1:4000');
    expect(hostOf('http://127.0.0.1:4001/hook')).not.toBe(hostOf('http://127.0.0.1:4000/hook'));
  });

  it('counts no answer, 5xx, 408 and 429 as the host failing, and any other answer as the host up', () => {
    expect(hostOutcome(result(200, null))).toBe('answered');
    expect(hostOutcome(result(404, 'HTTP 404'))).toBe('answered');
    expect(hostOutcome(result(410, 'HTTP 410', true))).toBe('answered');
    expect(hostOutcome(result(302, 'redirect refused'))).toBe('answered');
    for (const code of [500, 502, 503, 408, 429]) expect(hostOutcome(result(code, `HTTP ${code}`))).toBe('failed');
    expect(hostOutcome(result(null, 'connection refused'))).toBe('failed');
    expect(hostOutcome(result(null, 'timeout after 5000 ms'))).toBe('failed');
    // An unusable URL never reached a host.
    expect(hostOutcome(result(null, 'invalid callback url', true))).toBe('none');
  });
});

describe('receiver hosts in runhook status', () => {
  const q = (name: 'runs' | 'callbacks'): QueueState => ({
    name,
    paused: false,
    counts: { waiting: 0, active: 0, delayed: 0, completed: 0, failed: 0, prioritized: 0 },
    workers: [],
    throughput: {
      completed_per_minute: new Array<number>(60).fill(0),
      failed_per_minute: new Array<number>(60).fill(0),
      completed_last_hour: 0,
      failed_last_hour: 0,
      failure_rate: null,
      completed_total: 0,
      failed_total: 0,
    },
    oldest_waiting: null,
  });
  const base: QueuesReport = {
    generated_at: '2026-12-01T22:00:00.000Z',
    queues: { runs: q('runs'), callbacks: q('callbacks') },
    runs_by_status: { created: 0, running: 0, completed: 0, failed: 0, cancelled: 0 },
    callbacks_by_state: { delivered: 0, retrying: 0, given_up: 0 },
    streams: { watchers: 0, reader_connections: 0, api_processes: 0 },
  };

  it('shows hosts by state and the ones not ok, within 80 columns', () => {
    const text = renderStatus(
      {
        ...base,
        callback_hosts: {
          ok: 2,
          open: 1,
          half_open: 1,
          not_ok: [
            { host: `${'a'.repeat(90)}.example.com`, state: 'open', consecutive_failures: 12, next_probe_at: '2026-12-01T22:00:10.000Z', updated_at: '2026-12-01T22:00:00.000Z' },
            { host: 'hooks.example.com', state: 'half_open', consecutive_failures: 7, next_probe_at: '2026-12-01T22:00:05.000Z', updated_at: '2026-12-01T22:00:00.000Z' },
          ],
        },
      },
      { where: 'prefix {runhook}' },
    );
    expect(text).toContain('HOSTS       ok 2 · open 1 · half open 1');
    expect(text).toContain('half open hooks.example.com · 7 failures · next probe 22:00:05Z');
    for (const line of text.split('\n')) expect([...line].length, line).toBeLessThanOrEqual(WIDTH);
  });

  it('shows no hosts line for a report without them (an older API process)', () => {
    expect(renderStatus(base, { where: 'x' })).not.toContain('HOSTS');
  });
});
