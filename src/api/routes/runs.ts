import { z } from 'zod';
import { RunCreate, RunUpdate, type RunListQuery, type RunStatus } from '../../runs/schema.ts';
import { createRunFor } from '../create-run.ts';
import { ErrorBody, IdempotencyHeaders, RunDoc, RunIdParams, RunListParams } from '../schemas.ts';
import type { ApiDeps, ApiInstance } from '../types.ts';

const errors = { '4xx': ErrorBody, '5xx': ErrorBody };
const ACTIVE: readonly RunStatus[] = ['created', 'running'];

/**
 * Letta's list parameters → the store's query; null when the filters cannot match anything. Where they
 * overlap, Letta's rules: `statuses` wins over `active`, and `ascending=true` over `order`.
 */
export function toStoreQuery(q: z.output<typeof RunListParams>): RunListQuery | null {
  const statuses = q.statuses ?? (q.active ? [...ACTIVE] : undefined);
  if (statuses && statuses.length === 0) return null;
  // As in Letta, agent_id overrides the deprecated agent_ids.
  const agentIds = q.agent_id ? [q.agent_id] : q.agent_ids;
  return {
    ...(agentIds && { agent_ids: agentIds }),
    ...(statuses && { statuses }),
    ...(q.background !== undefined && { background: q.background }),
    ...(q.stop_reason && { stop_reason: q.stop_reason }),
    ...(q.conversation_id && { conversation_id: q.conversation_id }),
    ...(q.before && { before: q.before }),
    ...(q.after && { after: q.after }),
    limit: q.limit,
    order: q.ascending ? 'asc' : (q.order ?? 'desc'),
  };
}

/** Create, read, list, change, cancel and delete runs: CONTRACT section 3's run routes. */
export function runRoutes(app: ApiInstance, { runhook }: ApiDeps): void {
  app.post(
    '/runs',
    {
      schema: {
        summary: 'Create a run',
        tags: ['runs'],
        headers: IdempotencyHeaders,
        body: RunCreate,
        response: { 201: RunDoc, ...errors },
      },
    },
    async (req, reply) => {
      const run = await createRunFor(runhook, req, reply, req.body, 'POST /v1/runs', true);
      return reply.code(201).send(run);
    },
  );

  app.get(
    '/runs',
    {
      schema: {
        summary: 'List runs',
        description: 'A plain array, newest first unless `order=asc`, 100 to a page; page with `after` = the last id you got.',
        tags: ['runs'],
        querystring: RunListParams,
        response: { 200: z.array(RunDoc), ...errors },
      },
    },
    async (req) => {
      const q = toStoreQuery(req.query);
      if (!q) return [];
      // As Letta: `before` and `after` bound the list, and the page is the first `limit` runs between
      // them, `before` alone included (the runs right before a cursor: the opposite order with `after`).
      return runhook.listRuns(q);
    },
  );

  app.get(
    '/runs/:run_id',
    { schema: { summary: 'Get a run', tags: ['runs'], params: RunIdParams, response: { 200: RunDoc, ...errors } } },
    (req) => runhook.getRun(req.params.run_id),
  );

  app.patch(
    '/runs/:run_id',
    {
      schema: {
        summary: 'Update a run',
        description: 'Letta\'s RunUpdate. A terminal status is final: changing it is a 409.',
        tags: ['runs'],
        params: RunIdParams,
        body: RunUpdate,
        response: { 200: RunDoc, ...errors },
      },
    },
    (req) => runhook.updateRun(req.params.run_id, req.body),
  );

  app.delete(
    '/runs/:run_id',
    {
      schema: {
        summary: 'Delete a run and its job',
        description: 'A run still going is cancelled first. Answers with the run as it was.',
        tags: ['runs'],
        params: RunIdParams,
        response: { 200: RunDoc, ...errors },
      },
    },
    (req) => runhook.deleteRun(req.params.run_id),
  );

  app.post(
    '/runs/:run_id/cancel',
    {
      schema: {
        summary: 'Cancel a run',
        description: 'A waiting run never starts; a running one gets its processor\'s abort signal.',
        tags: ['runs'],
        params: RunIdParams,
        response: { 200: RunDoc, ...errors },
      },
    },
    (req) => runhook.cancelRun(req.params.run_id),
  );
}
