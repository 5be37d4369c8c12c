import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { InvalidInputError } from '../../errors.ts';
import { replyWithRunStream } from '../stream-reply.ts';
import { ErrorBody, RunIdParams, StreamQuery, StreamRequest } from '../schemas.ts';
import type { ApiDeps, ApiInstance } from '../types.ts';

const errors = { '4xx': ErrorBody, '5xx': ErrorBody };

const sseResponse = {
  200: {
    description:
      'Server-Sent Events: `data: <message JSON with seq_id>` per entry, then the stop_reason, usage_statistics and `data: [DONE]`',
    content: { 'text/event-stream': { schema: z.string() } },
  },
  ...errors,
};

interface StreamParams {
  starting_after?: number | undefined;
  include_pings?: boolean | null | undefined;
  batch_size?: number | null | undefined;
}

/** Last-Event-ID, sent by an EventSource that reconnects, wins over starting_after: it is more recent. */
function resumeAfter(req: FastifyRequest, p: StreamParams): number {
  const header = req.headers['last-event-id'];
  if (typeof header === 'string' && header !== '') {
    if (!/^\d+$/.test(header)) throw new InvalidInputError('Last-Event-ID must be a seq id (a non-negative integer)');
    return Number(header);
  }
  return p.starting_after ?? 0;
}

/** Resumable SSE of a run's messages (POST as Letta's retrieve_stream, GET for EventSource). */
export function streamRoutes(app: ApiInstance, deps: ApiDeps): void {
  const handle = async (req: FastifyRequest, reply: FastifyReply, runId: string, p: StreamParams) => {
    const after = resumeAfter(req, p);
    // Checked before the headers go, so a missing run is a plain 404.
    const run = await deps.runhook.getRun(runId);
    await replyWithRunStream(deps, req, reply, run, { ...p, after });
  };

  app.post(
    '/runs/:run_id/stream',
    {
      schema: {
        summary: "Stream a run's messages (SSE)",
        description: 'Resume with `starting_after` (a seq_id) or a Last-Event-ID header; also after the run ended.',
        tags: ['runs'],
        params: RunIdParams,
        body: StreamRequest,
        response: sseResponse,
      },
    },
    (req, reply) => handle(req, reply, req.params.run_id, req.body ?? {}),
  );

  app.get(
    '/runs/:run_id/stream',
    {
      schema: {
        summary: "Stream a run's messages (SSE, for EventSource)",
        tags: ['runs'],
        params: RunIdParams,
        querystring: StreamQuery,
        response: sseResponse,
      },
    },
    (req, reply) => handle(req, reply, req.params.run_id, req.query),
  );
}
