import type { Queue } from 'bullmq';
import type { RedisClient } from '../queue/connection.ts';
import type { Config } from '../config.ts';
import { callbackJobId, type CallbackJobData } from '../queue/queues.ts';
import type { RunKeys } from '../runs/keys.ts';

/**
 * The delivery job of a run's callback, for the retry schedule from step `offset` on (1 after a first
 * attempt made outside the queue). `attempts` is what is left of the schedule; the callback worker's
 * backoff strategy reads the delay before each retry from the same schedule (and `data.offset`).
 */
export function callbackJobOptions(config: Config, runId: string, { jobId = callbackJobId(runId), offset = 0 } = {}) {
  const delays = config.callbackRetryDelaysMs;
  return {
    jobId,
    attempts: Math.max(1, delays.length - offset),
    delay: delays[offset] ?? 0,
    backoff: { type: 'callback-schedule' },
    removeOnComplete: { age: 3_600, count: 1_000 },
    removeOnFail: { age: 7 * 86_400, count: 10_000 },
  };
}

/**
 * Moves runs from the callback outbox (filled atomically by the terminal transition) into the callbacks
 * queue, then takes them out of the outbox. A crash between the two only means the add is done again,
 * and the job id makes that a no-op while the job exists.
 */
export async function dispatchCallbacks(
  config: Config,
  redis: RedisClient,
  keys: RunKeys,
  queue: Queue<CallbackJobData, void, string>,
  runIds: string[],
): Promise<void> {
  if (runIds.length === 0) return;
  await queue.addBulk(runIds.map((id) => ({ name: 'deliver', data: { run_id: id }, opts: callbackJobOptions(config, id) })));
  await redis.zrem(keys.callbackOutbox, ...runIds);
}
