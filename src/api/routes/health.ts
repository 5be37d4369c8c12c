import { RedisUnavailableError } from '../../errors.ts';
import { ErrorBody, Health } from '../schemas.ts';
import type { ApiDeps, ApiInstance } from '../types.ts';

const PING_TIMEOUT_MS = 2_000;

/** Liveness (the process answers) and readiness (Redis answers too); open, whatever the API keys. */
export function healthRoutes(app: ApiInstance, { runhook }: ApiDeps): void {
  app.get(
    '/healthz',
    { schema: { summary: 'Liveness', tags: ['health'], response: { 200: Health } } },
    async () => ({ status: 'ok' }),
  );

  app.get(
    '/readyz',
    { schema: { summary: 'Readiness: Redis answers PING', tags: ['health'], response: { 200: Health, 503: ErrorBody } } },
    async () => {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('PING timed out')), PING_TIMEOUT_MS);
      });
      try {
        await Promise.race([runhook.redis.ping(), timeout]);
      } catch (err) {
        throw new RedisUnavailableError(`redis does not answer: ${(err as Error).message}`, { retry_after_s: 1 });
      } finally {
        clearTimeout(timer);
      }
      return { status: 'ready' };
    },
  );
}
