import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { UnauthorizedError } from '../errors.ts';

const digest = (s: string) => createHash('sha256').update(s).digest();

/**
 * `Authorization: Bearer <key>` against the configured keys. Keys are compared as SHA-256 digests, so
 * every comparison has the same length and takes the same time whatever the caller sent, and every
 * configured key is compared, so the time does not tell which one was close.
 */
export function bearerAuth(keys: readonly string[]): (req: FastifyRequest) => Promise<void> {
  const digests = keys.map(digest);
  return async (req) => {
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(req.headers.authorization ?? '');
    if (!m) throw new UnauthorizedError('missing API key: send Authorization: Bearer <key>');
    const given = digest(m[1]!);
    let ok = false;
    for (const d of digests) ok = timingSafeEqual(given, d) || ok;
    if (!ok) throw new UnauthorizedError('invalid API key');
    req.apiKeyId = given.toString('hex').slice(0, 16);
  };
}

declare module 'fastify' {
  interface FastifyRequest {
    /** A short digest of the caller's API key (never the key): who the rate limit counts against. */
    apiKeyId?: string;
  }
}
