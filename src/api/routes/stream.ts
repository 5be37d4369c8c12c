import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { InvalidInputError } from '../../errors.ts';
import { errorBody, toRunhookError } from '../error-handler.ts';
import { streamRun } from '../run-stream.ts';
import { SseWriter } from '../sse.ts';
import { ErrorBody, RunIdParams, StreamQuery, StreamRequest } from '../schemas.ts';
import type { ApiDeps, ApiInstance } from '../types.ts';

const errors = { '4xx': ErrorBody, '5xx': ErrorBody };
const DEFAULT_BATCH = 100;

/** The abort reason the server gives its open streams when it closes (see server.ts). */
export const SHUTDOWN = 'shutdown';

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
export function streamRoutes(app: ApiInstance, { runhook, config, streams, hub }: ApiDeps): void {
  const handle = async (req: FastifyRequest, reply: FastifyReply, runId: string, p: StreamParams) => {
    const after = resumeAfter(req, p);
    // Checked before the headers go, so a missing run is a plain 404.
    const run = await runhook.getRun(runId);
    reply.hijack();
    const writer = new SseWriter(reply.raw);
    const controller = new AbortController();
    streams.add(controller);
    reply.raw.on('close', () => controller.abort());
    writer.open();
    try {
      await streamRun({
        store: runhook.store,
        run,
        after,
        batch: p.batch_size ?? DEFAULT_BATCH,
        pingMs: config.streamPingMs,
        pings: p.include_pings ?? true,
        writer,
        signal: controller.signal,
        hub,
        watcherBuffer: config.streamWatcherBuffer,
      });
    } catch (err) {
      const e = toRunhookError(err, runhook.redis, config.bodyLimit);
      req.log.warn({ run_id: runId, code: e.code, err: (err as Error).message }, 'run stream failed');
      await writer.error(errorBody(e)).catch(() => {});
    } finally {
      streams.delete(controller);
      writer.end({ closeConnection: controller.signal.reason === SHUTDOWN });
    }
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
