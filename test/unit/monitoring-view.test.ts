import { describe, expect, it } from 'vitest';
import { perMinute } from '../../src/monitoring/per-minute.ts';
import type { QueuesReport, QueueState } from '../../src/monitoring/schemas.ts';
import { compact, duration, renderStatus, sparkline, WIDTH } from '../../src/monitoring/status-view.ts';

const MIN = 60_000;
const at = (minute: number, s = 0) => minute * MIN + s * 1000;

describe('per-minute throughput from BullMQ metrics', () => {
  it('puts the jobs not yet flushed in the minute of the last write, and older points before it', () => {
    // Last write at minute 100; 3 jobs since; data[0] is minute 99, data[1] minute 98.
    const m = { meta: { count: 10, prevTS: at(100, 30), prevCount: 7 }, data: [4, 2], count: 2 };
    const now = perMinute(m, at(100, 50));
    expect(now.slice(0, 3)).toEqual([3, 4, 2]);
    expect(now).toHaveLength(60);
  });

  it('shifts the points by the minutes the queue has been quiet since', () => {
    const m = { meta: { count: 10, prevTS: at(100, 30), prevCount: 7 }, data: [4, 2], count: 2 };
    expect(perMinute(m, at(105, 1)).slice(0, 8)).toEqual([0, 0, 0, 0, 0, 3, 4, 2]);
  });

  it('drops what is older than an hour, and is all zeros for a queue that never finished a job', () => {
    const m = { meta: { count: 5, prevTS: at(100), prevCount: 0 }, data: [], count: 0 };
    expect(perMinute(m, at(160)).every((n) => n === 0)).toBe(true);
    expect(perMinute(m, at(159))[59]).toBe(5);
    expect(perMinute({ meta: { count: 0, prevTS: 0, prevCount: 0 }, data: [], count: 0 }, at(1)).every((n) => n === 0)).toBe(true);
  });
});

describe('the terminal view', () => {
  it('formats counts and ages compactly', () => {
    expect([compact(42), compact(9_999), compact(12_345), compact(123_456), compact(4_500_000)]).toEqual(['42', '9999', '12.3k', '123k', '4.5M']);
    expect([duration(850), duration(5_000), duration(65_000), duration(3 * 3_600_000 + 60_000), duration(50 * 3_600_000)]).toEqual([
      '850ms',
      '5s',
      '1m05s',
      '3h01m',
      '2d02h',
    ]);
  });

  it('draws the last hour oldest-left, blank where nothing finished', () => {
    const perMin = new Array<number>(60).fill(0);
    perMin[0] = 10; // the current minute
    perMin[59] = 5; // an hour ago
    const line = sparkline(perMin);
    expect(line).toHaveLength(30);
    expect(line.at(-1)).toBe('█');
    expect(line[0]).not.toBe(' ');
    expect(line.slice(1, -1).trim()).toBe('');
  });

  it('fits 80 columns even with huge numbers', () => {
    const big = 987_654_321;
    const q = (name: 'runs' | 'callbacks'): QueueState => ({
      name,
      paused: name === 'callbacks',
      counts: { waiting: big, active: big, delayed: big, completed: big, failed: big, prioritized: big },
      workers: [],
      throughput: {
        completed_per_minute: new Array<number>(60).fill(big),
        failed_per_minute: new Array<number>(60).fill(big),
        completed_last_hour: big,
        failed_last_hour: big,
        failure_rate: 0.5,
        completed_total: big,
        failed_total: big,
      },
      oldest_waiting: { job_id: 'run-x', created_at: new Date(0).toISOString(), age_ms: 99 * 86_400_000 },
    });
    const report: QueuesReport = {
      generated_at: new Date().toISOString(),
      queues: { runs: q('runs'), callbacks: q('callbacks') },
      runs_by_status: { created: big, running: big, completed: big, failed: big, cancelled: big },
      callbacks_by_state: { delivered: big, retrying: big, given_up: big },
      streams: { watchers: big, reader_connections: big, api_processes: big },
    };
    const text = renderStatus(report, { where: 'prefix {a-rather-long-prefix-name}', footer: 'every 2000 ms; Ctrl-C to stop' });
    for (const line of text.split('\n')) expect([...line].length, line).toBeLessThanOrEqual(WIDTH);
    expect(text).toContain('PAUSED');
    expect(text).toContain('988M');
  });
});
