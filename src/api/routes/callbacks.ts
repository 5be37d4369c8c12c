import { z } from 'zod';
import { CallbackBreaker, CallbackHost } from '../../callbacks/breaker.ts';
import { CallbackRecovery, RecoverRequest, requireRecovery, startRecovery } from '../../callbacks/recover.ts';
import { ErrorBody } from '../schemas.ts';
import type { ApiDeps, ApiInstance } from '../types.ts';

const errors = { '4xx': ErrorBody, '5xx': ErrorBody };

/** Callback recovery and receiver health (CONTRACT section 10). */
export function callbackRoutes(app: ApiInstance, { runhook }: ApiDeps): void {
  const deps = { config: runhook.config, redis: runhook.redis, keys: runhook.store.keys, queue: runhook.callbackQueue };
  const breaker = new CallbackBreaker(runhook.redis, runhook.store.keys, runhook.config);

  app.post(
    '/callbacks/recover',
    {
      schema: {
        summary: 'Send again every callback given up in a time window',
        description:
          'A job walks the runs whose callback was given up between `since` and `until` (of `agent_id`, when given) and delivers each again, with the same `webhook-id` as before; 202 with the operation, readable at GET /v1/callbacks/recover/{id}.',
        tags: ['callbacks'],
        body: RecoverRequest,
        response: { 202: CallbackRecovery, ...errors },
      },
    },
    async (req, reply) => reply.code(202).send(await startRecovery(deps, req.body)),
  );

  app.get(
    '/callbacks/recover/:id',
    {
      schema: {
        summary: 'A callback recovery and its progress',
        tags: ['callbacks'],
        params: z.object({ id: z.string().min(1).max(256) }),
        response: { 200: CallbackRecovery, ...errors },
      },
    },
    async (req) => requireRecovery(deps, req.params.id),
  );

  app.get(
    '/callbacks/hosts',
    {
      schema: {
        summary: 'Receiver hosts and their breakers',
        description:
          'Each host that failed a delivery lately: `ok`, `open` (deliveries to it wait for the next probe) or `half_open` (one probe in flight), its consecutive failures and when the next probe may go. Most recently changed first.',
        tags: ['callbacks'],
        querystring: z.object({ limit: z.coerce.number().int().min(1).max(1_000).default(100) }),
        response: { 200: z.array(CallbackHost), ...errors },
      },
    },
    async (req) => breaker.hosts(req.query.limit),
  );
}
