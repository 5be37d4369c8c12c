import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';

/**
 * The runs console (CONTRACT section 10): one HTML page, a stylesheet and an ES module, read once at
 * start-up and served as they are: no build step, no UI library. The page holds no data of its own; it
 * reads the JSON API with the key the person gives it (kept in sessionStorage), so it is served without
 * a key and shows only what that key may see.
 */
const STATIC = new URL('./static/', import.meta.url);
const read = (name: string) => readFileSync(new URL(name, STATIC), 'utf8');

const FILES = {
  'console.js': { type: 'text/javascript; charset=utf-8', body: read('console.js') },
  'console.css': { type: 'text/css; charset=utf-8', body: read('console.css') },
} as const;

export function registerConsole(app: FastifyInstance): void {
  const html = read('console.html');
  const page = (_req: unknown, reply: import('fastify').FastifyReply) =>
    reply
      .type('text/html; charset=utf-8')
      .header('cache-control', 'no-cache')
      // Only its own files, and nothing may frame it (its buttons act on runs).
      .header('content-security-policy', "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
      .header('x-content-type-options', 'nosniff')
      .send(html);
  app.get('/console', { schema: { hide: true } }, page);
  app.get('/console/runs/:run_id', { schema: { hide: true } }, page);
  for (const [name, f] of Object.entries(FILES)) {
    app.get(`/console/${name}`, { schema: { hide: true } }, (_req, reply) =>
      reply.type(f.type).header('cache-control', 'no-cache').header('x-content-type-options', 'nosniff').send(f.body),
    );
  }
}
