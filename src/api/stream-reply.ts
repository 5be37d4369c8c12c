import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Run } from '../runs/schema.ts';
import { errorBody, toRunhookError } from './error-handler.ts';
import { streamRun } from './run-stream.ts';
import { SseWriter } from './sse.ts';
import type { ApiDeps } from './types.ts';

/** The abort reason the server gives its open streams when it closes (see server.ts). */
export const SHUTDOWN = 'shutdown';

const DEFAULT_BATCH = 100;

export interface StreamReplyOptions {
  /** Send what comes after this seq id. */
  after: number;
  include_pings?: boolean | null | undefined;
  batch_size?: number | null | undefined;
}

/**
 * Answers a request with a run's SSE stream: takes the connection over from Fastify, registers the stream
 * so the server's close ends it, and reports a failure after the headers as an SSE error event (a status
 * code can no longer be sent). Every route that streams a run (its own, a conversation's) goes through here.
 */
export async function replyWithRunStream(deps: ApiDeps, req: FastifyRequest, reply: FastifyReply, run: Run, o: StreamReplyOptions): Promise<void> {
  const { runhook, config, streams, hub } = deps;
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
      after: o.after,
      batch: o.batch_size ?? DEFAULT_BATCH,
      pingMs: config.streamPingMs,
      pings: o.include_pings ?? true,
      writer,
      signal: controller.signal,
      hub,
      watcherBuffer: config.streamWatcherBuffer,
    });
  } catch (err) {
    const e = toRunhookError(err, runhook.redis, config.bodyLimit);
    req.log.warn({ run_id: run.id, code: e.code, err: (err as Error).message }, 'run stream failed');
    await writer.error(errorBody(e)).catch(() => {});
  } finally {
    streams.delete(controller);
    writer.end({ closeConnection: controller.signal.reason === SHUTDOWN });
  }
}
