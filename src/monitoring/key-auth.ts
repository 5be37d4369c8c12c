import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { sendError } from '../api/error-handler.ts';
import { UnauthorizedError } from '../errors.ts';

const digest = (s: string) => createHash('sha256').update(s).digest();

/** The secrets a request offers: a Bearer token, or both halves of HTTP Basic credentials. */
function offered(header: string | undefined): string[] {
  const bearer = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header ?? '');
  if (bearer) return [bearer[1]!];
  const basic = /^Basic[ \t]+([A-Za-z0-9+/=]+)[ \t]*$/i.exec(header ?? '');
  if (!basic) return [];
  const pair = Buffer.from(basic[1]!, 'base64').toString('utf8');
  const colon = pair.indexOf(':');
  return colon < 0 ? [pair] : [pair.slice(0, colon), pair.slice(colon + 1)];
}

/**
 * Whether an `Authorization` header carries one of the keys: as a Bearer token, or in HTTP Basic
 * credentials (as the password, or as the user name with any password). Compared as SHA-256 digests
 * against every key, as bearerAuth does, so timing tells nothing about how close a guess was.
 */
export function keyMatcher(keys: readonly string[]): (authorization: string | undefined) => boolean {
  const digests = keys.map(digest);
  return (authorization) => {
    let ok = false;
    for (const secret of offered(authorization)) {
      const given = digest(secret);
      for (const d of digests) ok = timingSafeEqual(given, d) || ok;
    }
    return ok;
  };
}

export const CHALLENGE = 'Basic realm="runhook", charset="UTF-8"';
export const KEY_NEEDED = 'an API key is needed: HTTP Basic (the key as password) or Authorization: Bearer <key>';

/**
 * The dashboard's and /metrics' guard. A browser answered with `WWW-Authenticate: Basic` asks for the
 * credentials itself, so the dashboard needs no login page; Prometheus can send either form.
 */
export function keyAuth(keys: readonly string[]): (req: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply | undefined> {
  const matches = keyMatcher(keys);
  return async (req, reply) => {
    if (matches(req.headers.authorization)) return undefined;
    // Answered here rather than thrown: the dashboard's plugin has an error handler of its own.
    reply.header('www-authenticate', CHALLENGE);
    return sendError(reply, new UnauthorizedError(KEY_NEEDED));
  };
}
