import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { FastifyInstance } from 'fastify';
import type { Config } from '../config.ts';
import type { Runhook } from '../runhook.ts';
import { keyAuth } from './key-auth.ts';

export const DASHBOARD_PATH = '/admin/queues';

/**
 * Bull Board for both queues at /admin/queues: jobs by state, job details (a failed run's error and
 * stack), throughput. With API keys configured it sits behind them, in its own scope so the guard covers
 * its pages, its JSON API and its static files alike.
 *
 * Both queues are read-only (Bull Board's `readOnlyMode`: no action button is shown, and its JSON API
 * answers 405 QUEUE_READ_ONLY to every action), because the run store, not BullMQ, says what a run is and
 * none of Bull Board's job actions goes through the run's status machine:
 * - retry of a failed or completed run's job: the run has ended, so the job finds it ended and is skipped
 *   (nothing visible); running it again is a replay (POST /v1/runs/{id}/replay, the console);
 * - remove (and clean, empty) of a waiting or delayed run's job: the run stays `created` and the
 *   reconciler adds its job back; ending it is a cancel (POST /v1/runs/{id}/cancel);
 * - promote of a delayed run's job: it starts before its retry backoff or its flow-control turn;
 * - add, edit data, change priority or delay, obliterate: jobs the run store knows nothing of, or data it
 *   does not read;
 * - on a callback's job, remove/clean/empty of a pending delivery leaves the run's callback `retrying`
 *   forever, and retry of a completed delivery is skipped (it was delivered); sending a callback again is
 *   POST /v1/runs/{id}/callback/retry or POST /v1/callbacks/recover, recorded on the run.
 * Pausing a queue, which contradicts nothing, is POST /v1/queues/{name}/pause.
 */
export async function registerDashboard(app: FastifyInstance, { config, runhook }: { config: Config; runhook: Runhook }): Promise<void> {
  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath(DASHBOARD_PATH);
  createBullBoard({
    queues: [
      new BullMQAdapter(runhook.queue, { readOnlyMode: true, description: 'Background runs; the job id is the run id' }),
      new BullMQAdapter(runhook.callbackQueue, { readOnlyMode: true, description: 'Completion callback deliveries; the job id is cb-<run id>' }),
    ],
    serverAdapter,
    options: { uiConfig: { boardTitle: 'runhook' } },
  });
  await app.register(async (scope) => {
    if (config.apiKeys.length > 0) scope.addHook('onRequest', keyAuth(config.apiKeys));
    await scope.register(serverAdapter.registerPlugin(), { prefix: DASHBOARD_PATH });
  });
}
