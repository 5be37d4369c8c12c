import type { Queue } from 'bullmq';
import type { Runhook } from '../runhook.ts';
import { waitingCounts } from '../flow/flow.ts';
import { JOB_STATES, type JobState, type QueueName, type QueueState, type QueuesReport } from './schemas.ts';
import { perMinute } from './per-minute.ts';
import { readPresence } from '../streams/stream-presence.ts';
import { CallbackBreaker } from '../callbacks/breaker.ts';

/** The queues that can be shown, paused and resumed, by name. */
export function queuesOf(runhook: Runhook): Record<QueueName, Queue> {
  return { runs: runhook.queue as Queue, callbacks: runhook.callbackQueue as Queue };
}

/** Hosts read for the report: every one the breaker keeps (see breaker.ts MAX_HOSTS), in one pipelined pass. */
const HOSTS_READ = 1_000;

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

/**
 * The job that has waited longest. BullMQ pushes new jobs on the left of the wait list and workers
 * take from the right, so the oldest is the last element (BullMQ 6 keeps a paused queue's jobs in the
 * same list). Two round trips, whatever the queue's length.
 */
async function oldestWaiting(runhook: Runhook, queue: Queue, nowMs: number): Promise<QueueState['oldest_waiting']> {
  const id = await runhook.redis.lindex(queue.keys.wait!, -1);
  if (!id) return null;
  const added = await runhook.redis.hget(queue.toKey(id), 'timestamp');
  // The job left the list between the two reads: report none now; the next read shows the new oldest.
  if (added === null) return null;
  const ms = Number(added);
  return { job_id: id, created_at: new Date(ms).toISOString(), age_ms: Math.max(0, Math.round(nowMs - ms)) };
}

async function readQueue(runhook: Runhook, name: QueueName, queue: Queue, nowMs: number): Promise<QueueState> {
  const [counts, paused, workers, completed, failed, oldest] = await Promise.all([
    queue.getJobCounts(...JOB_STATES),
    queue.isPaused(),
    queue.getWorkers(),
    queue.getMetrics('completed'),
    queue.getMetrics('failed'),
    oldestWaiting(runhook, queue, nowMs),
  ]);
  const completedPerMinute = perMinute(completed, nowMs);
  const failedPerMinute = perMinute(failed, nowMs);
  const done = sum(completedPerMinute);
  const fails = sum(failedPerMinute);
  return {
    name,
    paused,
    counts: Object.fromEntries(JOB_STATES.map((s) => [s, counts[s] ?? 0])) as Record<JobState, number>,
    workers: workers.map((w) => ({
      name: w.rawname ?? w.name ?? '',
      addr: w.addr ?? '',
      age_s: Number(w.age ?? 0),
      idle_s: Number(w.idle ?? 0),
    })),
    throughput: {
      completed_per_minute: completedPerMinute,
      failed_per_minute: failedPerMinute,
      completed_last_hour: done,
      failed_last_hour: fails,
      failure_rate: done + fails === 0 ? null : fails / (done + fails),
      completed_total: completed.meta.count,
      failed_total: failed.meta.count,
    },
    oldest_waiting: oldest,
  };
}

/**
 * The state of both queues and the run store, read with a fixed handful of Redis calls (counts,
 * metrics and the ends of lists, never a scan), so a dashboard or a scraper may ask often.
 */
export async function readQueuesReport(runhook: Runhook, nowMs = Date.now()): Promise<QueuesReport> {
  const queues = queuesOf(runhook);
  const [runs, callbacks, runsByStatus, callbacksByState, streams, hosts, flow] = await Promise.all([
    readQueue(runhook, 'runs', queues.runs, nowMs),
    readQueue(runhook, 'callbacks', queues.callbacks, nowMs),
    runhook.store.countByStatus(),
    runhook.store.callbackCounts(),
    readPresence(runhook.redis, runhook.config.keyPrefix, nowMs),
    new CallbackBreaker(runhook.redis, runhook.store.keys, runhook.config).hosts(HOSTS_READ),
    waitingCounts(runhook.redis, runhook.config.keyPrefix),
  ]);
  const byState = { ok: 0, open: 0, half_open: 0 };
  for (const x of hosts) byState[x.state]++;
  return {
    generated_at: new Date(nowMs).toISOString(),
    processors: { default: runhook.config.processor, routes: runhook.config.routes.map((r) => ({ ...r })) },
    queues: { runs, callbacks },
    runs_by_status: runsByStatus,
    callbacks_by_state: callbacksByState,
    streams,
    callback_hosts: { ...byState, not_ok: hosts.filter((x) => x.state !== 'ok').slice(0, 10) },
    flow: { waiting_on_conversation: flow.conversation, waiting_on_limit: flow.limit },
  };
}
