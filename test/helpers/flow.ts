import type { Runhook } from '../../src/runhook.ts';

/** When a run started and ended, in epoch µs, from its record (the store keeps both to the microsecond). */
export interface RunSpan {
  id: string;
  status: string;
  startedUs: number;
  completedUs: number;
}

export async function spansOf(runhook: Runhook, ids: readonly string[]): Promise<RunSpan[]> {
  return Promise.all(
    ids.map(async (id) => {
      const [status, started, completed] = await runhook.redis.hmget(runhook.store.keys.run(id), 'status', 'started_us', 'completed_us');
      return { id, status: status ?? 'missing', startedUs: Number(started ?? NaN), completedUs: Number(completed ?? NaN) };
    }),
  );
}

/** Throws unless each run started after the one before it ended (they ran one at a time, in this order). */
export function expectInOrderWithoutOverlap(spans: readonly RunSpan[], what = 'runs'): void {
  for (let i = 1; i < spans.length; i++) {
    const prev = spans[i - 1]!;
    const cur = spans[i]!;
    if (!(cur.startedUs >= prev.completedUs)) {
      throw new Error(`${what}: ${cur.id} started at ${cur.startedUs} before ${prev.id} ended at ${prev.completedUs}`);
    }
  }
}
