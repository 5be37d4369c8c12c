import type { Metrics as BullMetrics } from 'bullmq';

export const MINUTE_MS = 60_000;
/** Points kept per queue (BullMQ's MetricsTime.ONE_HOUR) and reported: the last hour, a point a minute. */
export const POINTS = 60;

/**
 * BullMQ's finished-job counts per minute, realigned so that index 0 is the current minute.
 *
 * BullMQ (collectMetrics.lua) only writes a data point when a job finishes in a later minute than the
 * last one written: `meta.prevTS` is that write's time, `data[0]` the minute before it, `data[i]` the
 * i-th minute before that, and the jobs finished since (`count - prevCount`) belong to prevTS's minute
 * and are in no data point yet. Read as-is, the list is shifted by however long the queue has been
 * quiet, so it is re-indexed against the clock here.
 */
export function perMinute(m: BullMetrics, nowMs: number, points = POINTS): number[] {
  const out = new Array<number>(points).fill(0);
  if (!m.meta.prevTS) return out;
  const current = Math.floor(nowMs / MINUTE_MS);
  const last = Math.floor(m.meta.prevTS / MINUTE_MS);
  const place = (minute: number, n: number) => {
    const i = current - minute;
    if (i >= 0 && i < points) out[i] = (out[i] ?? 0) + n;
  };
  place(last, Math.max(0, m.meta.count - m.meta.prevCount));
  m.data.forEach((n, i) => place(last - 1 - i, n));
  return out;
}
