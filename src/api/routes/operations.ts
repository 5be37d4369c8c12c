import { z } from 'zod';
import { CallbackRecovery, RECOVERY_ID_PATTERN, requireRecovery } from '../../callbacks/recover.ts';
import { BulkOperations } from '../../operations/bulk.ts';
import { replayRun } from '../../operations/replay.ts';
import { BulkCreate, BulkOperation } from '../../operations/schema.ts';
import { ErrorBody, RunDoc, RunIdParams } from '../schemas.ts';
import type { ApiDeps, ApiInstance } from '../types.ts';

const errors = { '4xx': ErrorBody, '5xx': ErrorBody };
const BulkDoc = BulkOperation;
const BulkIdParams = z.object({ operation_id: z.string().min(1).max(256).describe('bulk-<uuid>') });

/** Replay and bulk actions (CONTRACT section 10). */
export function operationRoutes(app: ApiInstance, { runhook }: ApiDeps): void {
  const ops = new BulkOperations(runhook, runhook.log);
  app.addHook('onClose', () => ops.close());

  app.post(
    '/runs/:run_id/replay',
    {
      schema: {
        summary: 'Replay a run',
        description:
          "A new run with the original's agent, input, processor, request config, conversation, callback URL and metadata, and `replay_of` = the original's id. The original is not changed.",
        tags: ['runs'],
        params: RunIdParams,
        response: { 201: RunDoc, ...errors },
      },
    },
    async (req, reply) => reply.code(201).send((await replayRun(runhook, req.params.run_id)).run),
  );

  app.post(
    '/runs/bulk',
    {
      schema: {
        summary: 'Cancel, replay or delete every run a filter matches',
        description:
          'Answers at once with the operation; a run worker walks the matching runs (those that exist when it is asked) in pages. Read its progress at GET /v1/runs/bulk/{id}. A cancel matches only created and running runs. `filter: {}` means every run.',
        tags: ['runs'],
        body: BulkCreate,
        response: { 202: BulkDoc, ...errors },
      },
    },
    async (req, reply) => reply.code(202).send(await ops.start(req.body)),
  );

  app.get(
    '/runs/bulk/:operation_id',
    {
      schema: {
        summary: 'A bulk operation and its progress',
        description: 'Also a callback recovery (`recover-<uuid>`, POST /v1/callbacks/recover): a bulk operation of its own kind.',
        tags: ['runs'],
        params: BulkIdParams,
        response: { 200: z.union([BulkDoc, CallbackRecovery]), ...errors },
      },
    },
    (req) =>
      RECOVERY_ID_PATTERN.test(req.params.operation_id)
        ? requireRecovery({ redis: runhook.redis, keys: runhook.store.keys }, req.params.operation_id)
        : ops.require(req.params.operation_id),
  );
}
