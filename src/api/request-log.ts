import { LogController, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Config } from '../config.ts';

/**
 * One log line per answered request, instead of Fastify's two ("incoming request", "request completed"):
 * `all` logs every request, `errors` (the default) only those answered 4xx or 5xx, so that a loaded API
 * does not write two lines per request at `info`; `off` none. Fastify's other lines (a stream cut off,
 * a serializer that failed) stay as they are.
 */
export class RequestLog extends LogController {
  readonly #mode: Config['requestLog'];

  constructor(mode: Config['requestLog']) {
    super();
    this.#mode = mode;
  }

  override incomingRequest(): void {}

  override requestCompleted(error: Error | null | undefined, req: FastifyRequest, reply: FastifyReply): void {
    const statusCode = reply.statusCode;
    if (this.#mode === 'off' || (this.#mode === 'errors' && statusCode < 400 && !error)) return;
    const line = {
      method: req.method,
      url: req.url,
      route: req.routeOptions.url ?? 'unmatched',
      statusCode,
      responseTime: Math.round(reply.elapsedTime * 10) / 10,
      ...(error && { err: error.message }),
    };
    // The error handler has already said why a 5xx happened; this line says which request it was.
    if (statusCode >= 500 || error) req.log.warn(line, 'request completed');
    else req.log.info(line, 'request completed');
  }
}
