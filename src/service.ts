import { startApi, type ApiServer } from './api/server.ts';
import { CallbackWorker } from './callbacks/callback-worker.ts';
import { OUTBOX_SWEEP_INTERVAL_MS, outboxGraceMs, sweepCallbackOutbox } from './callbacks/outbox.ts';
import type { Config } from './config.ts';
import { resolveRedis } from './embedded-redis.ts';
import type { Logger } from './logger.ts';
import { Metrics } from './monitoring/metrics.ts';
import { BulkWorker } from './operations/bulk-worker.ts';
import { startMetricsServer } from './monitoring/metrics-server.ts';
import { Periodic } from './periodic.ts';
import { loadProcessors } from './processing/load.ts';
import { RunWorker } from './processing/run-worker.ts';
import { closeRedis, createRedis, ready } from './queue/connection.ts';
import { Reconciler } from './queue/reconcile.ts';
import { sweepExpiredRuns } from './runs/retention.ts';
import { Runhook } from './runhook.ts';

export type Part = 'api' | 'runs' | 'callbacks';

export interface Service {
  readonly runhook: Runhook;
  readonly runWorker: RunWorker | undefined;
  /** The HTTP API, when this process runs it. */
  readonly api?: ApiServer;
  /** Where a process without the API serves /metrics (RUNHOOK_METRICS_PORT), when it does. */
  readonly metricsUrl?: string;
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
    // One registry per process: the workers observe into it, and /metrics (the API's, or the metrics
    // port of a process without the API) exposes it.
    const metrics = new Metrics({ runhook, log });

    let runWorker: RunWorker | undefined;
    if (parts.has('runs')) {
      const processors = await loadProcessors(config);
      const processor = processors.get(config.processor)!;
      runWorker = new RunWorker({ config, redis, store: runhook.store, processor, processors, log, metrics });
      await runWorker.start();
      const worker = runWorker;
      releasers.push(() => worker.close());
      // Bulk operations (cancel, replay, delete by filter) are walked by run-worker processes too.
      const bulkWorker = new BulkWorker({ runhook, redis, log });
      await bulkWorker.start();
      releasers.push(() => bulkWorker.close());
      // Every run-worker process takes its turn, but only the holder of the reconcile lease makes passes.
      const reconciler = new Reconciler({ config, store: runhook.store, queue: runhook.queue, log, observer: metrics });
      releasers.push(() => reconciler.close());
      const maintenance = new Periodic(
        'maintenance',
        config.maintenanceIntervalMs,
        async () => {
          // Each chore on its own: a reconciler pass that fails (logged, tried again next time) must not
          // hold up retention, or a pass failing every time would keep every ended run for ever.
          try {
            await reconciler.tick();
          } catch (err) {
            log.warn({ err: (err as Error).message }, 'reconciler pass failed; retention goes on');
          }
          await sweepExpiredRuns(runhook.store, log);
        },
        log,
      );
      maintenance.start();
      releasers.push(() => maintenance.close());
    }
    if (parts.has('callbacks')) {
      const callbackWorker = new CallbackWorker({ config, redis, store: runhook.store, log, metrics, queue: runhook.callbackQueue });
      releasers.push(() => callbackWorker.close());
      await callbackWorker.start();
      // Runs that end in this process get their first callback attempt at once, without a queue job;
      // with tracing on, every delivery goes through the queue so that it joins the run's trace.
      if (!config.tracing) runhook.deliverNow = (id, ended) => callbackWorker.tryDeliverNow(id, ended);
      releasers.push(async () => {
        runhook.deliverNow = undefined;
      });
      const outbox = new Periodic(
        'callback-outbox',
        OUTBOX_SWEEP_INTERVAL_MS,
        () =>
          sweepCallbackOutbox(
            { store: runhook.store, dispatch: (ids) => runhook.dispatchCallbacks(ids), log },
            Date.now(),
            outboxGraceMs(config),
          ),
        log,
      );
      outbox.start();
      releasers.push(() => outbox.close());
    }
    let api: ApiServer | undefined;
    let metricsUrl: string | undefined;
    if (parts.has('api')) {
      // The API's own fail-fast connection: during an outage a request is a 503 at once, not a hang.
      const apiRedis = createRedis(target.target, 'api');
      apiRedis.on('error', (err) => log.debug({ err: err.message }, 'api redis connection error'));
      releasers.push(() => closeRedis(apiRedis));
      await ready(apiRedis);
      const apiRunhook = new Runhook(config, apiRedis, log);
      releasers.push(() => apiRunhook.close());
      const server = await startApi({ config, runhook: apiRunhook, log, metrics });
      releasers.push(() => server.close());
      api = server;
      log.info({ url: server.url }, 'api listening');
    } else if (config.metricsPort !== undefined) {
      const server = await startMetricsServer({ host: config.host, port: config.metricsPort, keys: config.apiKeys, metrics, log });
      releasers.push(() => server.close());
      metricsUrl = server.url;
      log.info({ url: server.url }, 'metrics listening');
    }
    return { runhook, runWorker, api, metricsUrl, close };
  } catch (err) {
    await close();
    throw err;
  }
}
