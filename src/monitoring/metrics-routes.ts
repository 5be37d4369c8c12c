import type { FastifyInstance } from 'fastify';
import type { Config } from '../config.ts';
import { keyAuth } from './key-auth.ts';
import type { Metrics } from './metrics.ts';

/**
 * Times every API request by its route template (`/v1/runs/:run_id`, never the id itself), so the
 * label set stays as small as the route table. Added before the routes, so it covers all of them.
 */
export function observeRequests(app: FastifyInstance, metrics: Metrics): void {
  app.addHook('onResponse', async (req, reply) => {
    metrics.observeRequest(req.method, req.routeOptions.url ?? 'unmatched', reply.statusCode, reply.elapsedTime);
  });
}

/** GET /metrics in Prometheus text format; behind the API keys when they are set, as the dashboard is. */
export async function registerMetricsRoute(app: FastifyInstance, { config, metrics }: { config: Config; metrics: Metrics }): Promise<void> {
  await app.register(async (scope) => {
    if (config.apiKeys.length > 0) scope.addHook('onRequest', keyAuth(config.apiKeys));
    scope.get(
      '/metrics',
      {
        schema: {
          summary: 'Prometheus metrics',
          description: 'Text exposition format. With API keys set: Authorization: Bearer <key>, or HTTP Basic with the key as password.',
          tags: ['monitoring'],
        },
      },
      async (_req, reply) => reply.type(metrics.contentType).send(await metrics.render()),
    );
  });
}
