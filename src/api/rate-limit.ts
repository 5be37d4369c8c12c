import type { FastifyReply, FastifyRequest } from 'fastify';
import { RateLimitedError } from '../errors.ts';
import type { RedisClient } from '../queue/connection.ts';

const WINDOW_MS = 60_000;

/**
 * Requests per minute per API key (per client address when no keys are configured), counted in Redis
 * so that every API process shares one budget. A fixed one-minute window: simple, and a burst at a
 * window's edge is at most twice the limit.
 */
export function rateLimit(
  redis: RedisClient,
  keyPrefix: string,
  perMinute: number,
): (req: FastifyRequest, reply: FastifyReply) => Promise<void> {
  return async (req, reply) => {
    const now = Date.now();
    const window = Math.floor(now / WINDOW_MS);
    const who = req.apiKeyId ?? `ip:${req.ip}`;
    const key = `${keyPrefix}:ratelimit:${who}:${window}`;
    const res = await redis.multi().incr(key).pexpire(key, WINDOW_MS * 2).exec();
    const count = Number(res?.[0]?.[1] ?? 0);
    const resetS = Math.ceil(((window + 1) * WINDOW_MS - now) / 1000);
    reply.header('x-ratelimit-limit', String(perMinute));
    reply.header('x-ratelimit-remaining', String(Math.max(0, perMinute - count)));
    reply.header('x-ratelimit-reset', String(resetS));
    if (count > perMinute) {
      throw new RateLimitedError(`more than ${perMinute} requests in a minute; retry in ${resetS} s`, { retry_after_s: resetS });
    }
  };
}
