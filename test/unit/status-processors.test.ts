import { describe, expect, it } from 'vitest';
import type { QueuesReport, QueueState } from '../../src/monitoring/schemas.ts';
import { processorItems, renderStatus, WIDTH } from '../../src/monitoring/status-view.ts';

const queue = (name: 'runs' | 'callbacks'): QueueState => ({
  name,
  paused: false,
  counts: { waiting: 0, active: 0, delayed: 0, prioritized: 0, completed: 0, failed: 0 },
  workers: [],
  throughput: { completed_per_minute: new Array<number>(60).fill(0), failed_per_minute: new Array<number>(60).fill(0), completed_last_hour: 0, failed_last_hour: 0, failure_rate: null, completed_total: 0, failed_total: 0 },
  oldest_waiting: null,
});

describe('runhook status: processors', () => {
  const processors = {
    default: 'echo',
    routes: [
      { agent: 'support-*', processor: 'openai' },
      { agent: 'batch-*', processor: 'http' },
      { agent: 'lab-*', processor: `/srv/agents/${'very-long-directory-name/'.repeat(4)}processor.js` },
    ],
  };

  it('lists the routes in the order they are tried, then the default', () => {
    expect(processorItems(processors)).toEqual(['support-* → openai', 'batch-* → http', `lab-* → ${processors.routes[2]!.processor}`, 'default echo']);
  });

  it('shows them in 80 columns', () => {
    const report = {
      generated_at: '2026-12-01T22:00:00.000Z',
      processors,
      queues: { runs: queue('runs'), callbacks: queue('callbacks') },
      runs_by_status: { created: 0, running: 0, completed: 0, failed: 0, cancelled: 0 },
      callbacks_by_state: { delivered: 0, retrying: 0, given_up: 0 },
      streams: { watchers: 0, reader_connections: 0, api_processes: 0 },
    } as unknown as QueuesReport;
    const text = renderStatus(report, { where: 'prefix {runhook}' });
    const lines = text.split('\n');
    const at = lines.findIndex((l) => l.startsWith('PROCESSORS'));
    expect(lines[at]).toBe('PROCESSORS  support-* → openai · batch-* → http');
    expect(lines[at + 2]).toBe('            default echo');
    for (const line of lines) expect([...line].length, line).toBeLessThanOrEqual(WIDTH);
  });
});
