import { Queue, type JobsOptions } from 'bullmq';
import type { RedisClient } from './connection.ts';
import type { Config } from '../config.ts';
import { telemetry } from '../monitoring/tracing.ts';

export const RUNS_QUEUE = 'runs';
export const CALLBACKS_QUEUE = 'callbacks';

/** What a run's job carries: only what the dashboard shows; the run itself is in the store. */
export interface RunJobData {
  agent_id: string;
}

export interface RunJobResult {
  stop_reason?: string | null;
  skipped?: string;
}

/**
 * A run's job. Its id is the run id, so adding it again (a retried request, the reconciler) never makes a
 * second job. BullMQ's own records are trimmed soon: the run store keeps the run.
 */
export function runJobOptions(config: Config, runId: string): JobsOptions {
  return {
    jobId: runId,
    attempts: config.runAttempts,
    backoff: { type: 'exponential', delay: config.runBackoffMs },
    removeOnComplete: { age: 3_600, count: 1_000 },
    removeOnFail: { age: 7 * 86_400, count: 10_000 },
  };
}

export function createRunQueue(config: Config, connection: RedisClient): Queue<RunJobData, RunJobResult, string> {
  return new Queue<RunJobData, RunJobResult, string>(RUNS_QUEUE, {
    connection,
    prefix: config.keyPrefix,
    telemetry: telemetry(config),
  });
}

/**
 * The pub/sub channel on which the end of a running run (cancel, PATCH, the reconciler) reaches whichever
 * worker holds it; transition-run.lua publishes the run id on it, under this same name.
 */
export function cancelChannel(config: Config): string {
  return `${config.keyPrefix}:cancel`;
}

/** A callback delivery job: one per run (`cb-<run id>`), plus one per manual retry. */
export interface CallbackJobData {
  run_id: string;
  /** Set for a retry asked through the API: delivered even when an earlier delivery succeeded. */
  manual?: boolean;
  /** Steps of the retry schedule already used by a first attempt made outside the queue. */
  offset?: number;
  /** On a `recover` job (POST /v1/callbacks/recover), the operation it walks; run_id is then ''. */
  recovery?: string;
}

export function callbackJobId(runId: string): string {
  return `cb-${runId}`;
}

export function createCallbackQueue(config: Config, connection: RedisClient): Queue<CallbackJobData, void, string> {
  return new Queue<CallbackJobData, void, string>(CALLBACKS_QUEUE, {
    connection,
    prefix: config.keyPrefix,
    telemetry: telemetry(config),
  });
}
