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
 * stack), retry, promote, clean. With API keys configured it sits behind them, in its own scope so the
 * guard covers its pages, its JSON API and its static files alike.
 */
export async function registerDashboard(app: FastifyInstance, { config, runhook }: { config: Config; runhook: Runhook }): Promise<void> {
  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath(DASHBOARD_PATH);
  createBullBoard({
    queues: [
      new BullMQAdapter(runhook.queue, { description: 'Background runs; the job id is the run id' }),
      new BullMQAdapter(runhook.callbackQueue, { description: 'Completion callback deliveries; the job id is cb-<run id>' }),
    ],
    serverAdapter,
    options: { uiConfig: { boardTitle: 'runhook' } },
  });
  await app.register(async (scope) => {
    if (config.apiKeys.length > 0) scope.addHook('onRequest', keyAuth(config.apiKeys));
    await scope.register(serverAdapter.registerPlugin(), { prefix: DASHBOARD_PATH });
  });
}
