import { CallbackHost } from '../callbacks/breaker.ts';
import { z } from 'zod';

/**
 * The shape of queue state, as GET /v1/queues answers and `runhook status --json` prints it; the
 * OpenAPI document is generated from these.
 */

export const QUEUE_NAMES = ['runs', 'callbacks'] as const;
export type QueueName = (typeof QUEUE_NAMES)[number];

// BullMQ 6 has no `paused` job state: a paused queue keeps its jobs in `wait` (the queue's `paused` flag says so).
export const JOB_STATES = ['waiting', 'active', 'delayed', 'completed', 'failed', 'prioritized'] as const;
export type JobState = (typeof JOB_STATES)[number];

const count = z.number().int().min(0);

export const JobCounts = z
  .object(Object.fromEntries(JOB_STATES.map((s) => [s, count])) as Record<JobState, typeof count>)
  .describe("BullMQ's jobs by state. Completed and failed jobs are trimmed after a while: the run store is the record");

export const QueueWorker = z.object({
  name: z.string().describe("The worker connection's client name in Redis"),
  addr: z.string().describe('Its address as Redis sees it'),
  age_s: z.number().int().describe('Seconds since it connected'),
  idle_s: z.number().int().describe('Seconds since its last command'),
});

export const Throughput = z.object({
  completed_per_minute: z.array(count).describe('Jobs completed in each of the last 60 minutes; index 0 is the current minute'),
  failed_per_minute: z.array(count).describe('Jobs failed (after their last attempt) in each of the last 60 minutes'),
  completed_last_hour: count,
  failed_last_hour: count,
  failure_rate: z.number().min(0).max(1).nullable().describe('failed / (completed + failed) over the last hour; null when none finished'),
  completed_total: count.describe('Since the queue was created (BullMQ metrics counter)'),
  failed_total: count,
});

export const OldestWaiting = z.object({
  job_id: z.string(),
  created_at: z.string().describe('When the job was added'),
  age_ms: z.number().int().min(0),
});

export const QueueState = z
  .object({
    name: z.enum(QUEUE_NAMES),
    paused: z.boolean(),
    counts: JobCounts,
    workers: z.array(QueueWorker).describe('Workers connected to this queue, in any process'),
    throughput: Throughput,
    oldest_waiting: OldestWaiting.nullable().describe('The job that has waited longest to be taken; null when none waits'),
  })
  .meta({ id: 'QueueState' });

export const RunStatusCounts = z.object({
  created: count,
  running: count,
  completed: count,
  failed: count,
  cancelled: count,
});

export const CallbackStateCounts = z.object({
  delivered: count.describe('Runs whose callback got a 2xx'),
  retrying: count.describe('Runs whose last attempt failed and that will be tried again'),
  given_up: count.describe('Runs whose callback ran out of attempts (or got 410 Gone)'),
});

export const StreamsReport = z.object({
  watchers: count.describe('SSE clients following a live run, in every API process'),
  reader_connections: count.describe('Redis connections those API processes read live streams with (one each, however many watchers)'),
  api_processes: count.describe('API processes that reported in the last 15 s'),
});

export const CallbackHostsReport = z.object({
  ok: count,
  open: count.describe('Hosts whose deliveries wait for their next probe'),
  half_open: count.describe('Hosts with one probe in flight'),
  not_ok: z.array(CallbackHost).describe('Up to 10 hosts that are not ok, most recently changed first'),
});

export const FlowReport = z.object({
  waiting_on_conversation: count.describe('Created runs held behind an earlier run of their conversation'),
  waiting_on_limit: count.describe('Created runs held by a concurrency limit (RUNHOOK_AGENT_CONCURRENCY)'),
});

/** Which processor runs which runs, as the answering process is configured (CONTRACT section 7). */
export const ProcessorsReport = z.object({
  default: z.string().describe('RUNHOOK_PROCESSOR: what runs that name none and match no route run'),
  routes: z.array(z.object({ agent: z.string(), processor: z.string() })).describe('RUNHOOK_ROUTES, first match wins'),
});

export const QueuesReport = z
  .object({
    generated_at: z.string(),
    processors: ProcessorsReport.optional(),
    queues: z.object({ runs: QueueState, callbacks: QueueState }),
    runs_by_status: RunStatusCounts.describe('Runs in the store by status (terminal runs are kept for the retention period)'),
    callbacks_by_state: CallbackStateCounts,
    streams: StreamsReport,
    callback_hosts: CallbackHostsReport.optional().describe('Receiver hosts by breaker state (GET /v1/callbacks/hosts lists them)'),
    flow: FlowReport.optional().describe('Runs flow control holds (CONTRACT section 8): they stay created, with no job yet'),
  })
  .meta({ id: 'QueuesReport' });
export type QueuesReport = z.infer<typeof QueuesReport>;
export type QueueState = z.infer<typeof QueueState>;

export const QueueNameParams = z.object({ name: z.string().min(1).max(64).describe('runs or callbacks') });
