/**
 * runhook as a library: enqueue runs and read them from code, write processors, start the parts.
 *
 *   const rh = await openRunhook({ redisUrl: 'redis://127.0.0.1:6379' });
 *   const { run } = await rh.createRun({ agent_id: 'a1', input: { text: 'hi' } });
 *   const done = await rh.waitForRun(run.id);
 *   await rh.close();
 */
import { loadConfig, withConfig, type Config } from './config.ts';
import { createLogger, type Logger } from './logger.ts';
import { closeRedis, createRedis, ready } from './queue/connection.ts';
import { Runhook } from './runhook.ts';

export { loadConfig, withConfig, type Config } from './config.ts';
export * from './errors.ts';
export { Runhook } from './runhook.ts';
export { startService, type Part, type Service } from './service.ts';
export { defineProcessor, RunFailure, sleep } from './processing/processor.ts';
export type { Processor, ProcessorArgs, ProcessorContext, ProcessorResult, EmittedMessage } from './processing/processor.ts';
export { echoProcessor } from './processing/echo.ts';
export * from './runs/schema.ts';
export { canMove, isTerminal, statusOfStopReason } from './runs/status.ts';
export { assembleMessages, type RunMessage } from './runs/messages.ts';
export { StepInput, Step, StepMetrics, StepStatus, epochNanos } from './runs/steps.ts';

export interface OpenOptions extends Partial<Config> {
  log?: Logger;
}

/** A Runhook on its own Redis connection (closed by `close()`), configured from the given fields. */
export async function openRunhook(options: OpenOptions = {}): Promise<Runhook & { close(): Promise<void> }> {
  const { log = createLogger('warn'), ...overrides } = options;
  const config = withConfig(overrides, loadConfig({}));
  // As the processes resolve it (embedded-redis.ts): cluster seed nodes win over a URL.
  const redis = createRedis(config.redisClusterNodes ?? config.redisUrl ?? `redis://127.0.0.1:${config.embeddedRedisPort}`, 'api');
  redis.on('error', (err) => log.warn({ err: err.message }, 'redis connection error'));
  await ready(redis);
  const runhook = new Runhook(config, redis, log);
  const close = runhook.close.bind(runhook);
  return Object.assign(runhook, {
    close: async () => {
      await close();
      await closeRedis(redis);
    },
  });
}

// For receivers of runhook's callbacks.
export { verifyCallback, TIMESTAMP_TOLERANCE_SEC } from './callbacks/verify.ts';
export type { CallbackPayload, CallbackUsage } from './callbacks/payload.ts';
export * from './callbacks/errors.ts';

// For code that talks to a runhook server over HTTP.
export { RunhookClient, type RunhookClientOptions, type ListRunsQuery, type WaitOptions } from './client.ts';
export { buildApi, startApi } from './api/server.ts';
