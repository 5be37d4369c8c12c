import { startApi, type ApiServer } from './api/server.ts';
import { CallbackWorker } from './callbacks/callback-worker.ts';
import { OUTBOX_SWEEP_INTERVAL_MS, sweepCallbackOutbox } from './callbacks/outbox.ts';
import type { Config } from './config.ts';
import { resolveRedis } from './embedded-redis.ts';
import type { Logger } from './logger.ts';
import { Periodic } from './periodic.ts';
import { loadProcessor } from './processing/load.ts';
import { RunWorker } from './processing/run-worker.ts';
import { closeRedis, createRedis, ready } from './queue/connection.ts';
import { reconcileRuns } from './queue/reconcile.ts';
import { sweepExpiredRuns } from './runs/retention.ts';
import { Runhook } from './runhook.ts';

export type Part = 'api' | 'runs' | 'callbacks';

export interface Service {
  readonly runhook: Runhook;
  readonly runWorker: RunWorker | undefined;
  /** The HTTP API, when this process runs it. */
  readonly api?: ApiServer;
  /** Stops every part, last started first; safe to call twice. */
  close(): Promise<void>;
}

/**
 * Starts the parts of runhook this process runs, on one Redis. Each started part registers how it is
 * released; close() releases them last-in first-out, each in its own try, so one failing step never
 * skips the rest.
 */
export async function startService(config: Config, log: Logger, parts: ReadonlySet<Part>): Promise<Service> {
  const releasers: Array<() => Promise<unknown>> = [];
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      for (const release of releasers.reverse()) {
        try {
          await release();
        } catch (err) {
          log.warn({ err: (err as Error).message }, 'error while shutting down');
        }
      }
    })());

  try {
    const target = await resolveRedis(config, log);
    releasers.push(() => target.close());
    const redis = createRedis(target.target, 'worker');
    redis.on('error', (err) => log.warn({ err: err.message }, 'redis connection error'));
    releasers.push(() => closeRedis(redis));
    await ready(redis);

    const runhook = new Runhook(config, redis, log);
    releasers.push(() => runhook.close());

    let runWorker: RunWorker | undefined;
    if (parts.has('runs')) {
      const processor = await loadProcessor(config.processor);
      runWorker = new RunWorker({ config, redis, store: runhook.store, processor, log });
      await runWorker.start();
      const worker = runWorker;
      releasers.push(() => worker.close());
      const maintenance = new Periodic(
        'maintenance',
        config.maintenanceIntervalMs,
        async () => {
          await reconcileRuns({ config, store: runhook.store, queue: runhook.queue, log });
          await sweepExpiredRuns(runhook.store, log);
        },
        log,
      );
      maintenance.start();
      releasers.push(() => maintenance.close());
    }
    if (parts.has('callbacks')) {
      const callbackWorker = new CallbackWorker({ config, redis, store: runhook.store, log });
      releasers.push(() => callbackWorker.close());
      await callbackWorker.start();
      const outbox = new Periodic(
        'callback-outbox',
        OUTBOX_SWEEP_INTERVAL_MS,
        () => sweepCallbackOutbox({ store: runhook.store, dispatch: (ids) => runhook.dispatchCallbacks(ids), log }),
        log,
      );
      outbox.start();
      releasers.push(() => outbox.close());
    }
    let api: ApiServer | undefined;
    if (parts.has('api')) {
      // The API's own fail-fast connection: during an outage a request is a 503 at once, not a hang.
      const apiRedis = createRedis(target.target, 'api');
      apiRedis.on('error', (err) => log.debug({ err: err.message }, 'api redis connection error'));
      releasers.push(() => closeRedis(apiRedis));
      await ready(apiRedis);
      const apiRunhook = new Runhook(config, apiRedis, log);
      releasers.push(() => apiRunhook.close());
      const server = await startApi({ config, runhook: apiRunhook, log });
      releasers.push(() => server.close());
      api = server;
      log.info({ url: server.url }, 'api listening');
    }
    return { runhook, runWorker, api, close };
  } catch (err) {
    await close();
    throw err;
  }
}
