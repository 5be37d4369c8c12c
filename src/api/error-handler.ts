import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import { ZodError } from 'zod';
import {
  InternalError,
  InvalidInputError,
  MalformedBodyError,
  NotFoundError,
  PayloadTooLargeError,
  RateLimitedError,
  RedisUnavailableError,
  RunhookError,
  UnsupportedMediaTypeError,
} from '../errors.ts';
import type { RedisClient } from '../queue/connection.ts';
import { fastApiDetail, invalidInput, type FastApiIssue } from './validation.ts';

/**
 * The one error body of the API (CONTRACT section 3). Invalid input also carries Letta's `detail` list
 * (FastAPI's shape), which the Letta SDK and FastAPI clients read.
 */
export function errorBody(e: RunhookError): { error: { code: string; message: string; details?: unknown }; detail?: FastApiIssue[] } {
  return {
    error: { code: e.code, message: e.message, ...(e.details !== undefined && { details: e.details }) },
    ...(e instanceof InvalidInputError && { detail: fastApiDetail(e) }),
  };
}

export function sendError(reply: FastifyReply, e: RunhookError): FastifyReply {
  // Stainless-generated SDKs (Letta's among them) retry every 409 unless told not to; ours are final.
  if (e.status === 409) reply.header('x-should-retry', 'false');
  if (e instanceof RateLimitedError || e instanceof RedisUnavailableError) {
    const after = (e.details as { retry_after_s?: number } | undefined)?.retry_after_s ?? 1;
    reply.header('retry-after', String(after));
  }
  return reply.code(e.status).type('application/json; charset=utf-8').send(errorBody(e));
}

// What ioredis says when the fail-fast connection cannot reach Redis, and what Redis says when it
// cannot take writes; both mean "try again later", not "the server is broken".
const REDIS_DOWN = new RegExp(
  [
    "Connection is closed|Stream isn't writeable|enableOfflineQueue|None of startup nodes|max retries|MaxRetriesPerRequest",
    'ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|EHOSTUNREACH',
    '^(LOADING|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|READONLY|OOM)\\b',
  ].join('|'),
);

function isRedisDown(err: Error, redis: RedisClient): boolean {
  return redis.status !== 'ready' || err.name === 'MaxRetriesPerRequestError' || REDIS_DOWN.test(err.message);
}

/** Maps whatever a route or hook threw to one of the catalogued errors. */
export function toRunhookError(err: unknown, redis: RedisClient, bodyLimit: number): RunhookError {
  if (err instanceof RunhookError) return err;
  if (err instanceof ZodError) return invalidInput(err, 'input');
  const e = err as FastifyError;
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new PayloadTooLargeError(`request body is larger than ${bodyLimit} bytes`, { limit_bytes: bodyLimit });
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new UnsupportedMediaTypeError('request bodies must be application/json');
  }
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    // Fastify's own refusals (malformed JSON, an empty body, a bad content-length, ...): a body that is
    // not JSON stays a 400, where what the schemas refuse is a 422.
    return new MalformedBodyError(e.message);
  }
  if (e instanceof Error && isRedisDown(e, redis)) {
    return new RedisUnavailableError('redis is unavailable; try again shortly', { retry_after_s: 1 });
  }
  return new InternalError('internal error');
}

export function installErrorHandler(app: FastifyInstance, redis: RedisClient, bodyLimit: number): void {
  app.setErrorHandler((err, req, reply) => {
    const e = toRunhookError(err, redis, bodyLimit);
    if (e instanceof InternalError) req.log.error({ err }, 'request failed');
    else if (e.status >= 500) req.log.warn({ code: e.code, err: (err as Error).message }, 'request failed');
    else req.log.debug({ code: e.code }, 'request refused');
    return sendError(reply, e);
  });
  app.setNotFoundHandler((req, reply) => sendError(reply, new NotFoundError(`no route ${req.method} ${req.url.split('?')[0]}`)));
}
