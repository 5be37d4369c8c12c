import { readFileSync } from 'node:fs';
import type { AddressInfo, Socket } from 'node:net';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Config } from '../config.ts';
import type { Logger } from '../logger.ts';
import { registerConsole } from '../console/routes.ts';
import { registerDashboard } from '../monitoring/dashboard.ts';
import { Metrics } from '../monitoring/metrics.ts';
import { observeRequests, registerMetricsRoute } from '../monitoring/metrics-routes.ts';
import { queueRoutes } from '../monitoring/queue-routes.ts';
import type { Runhook } from '../runhook.ts';
import { StreamHub } from '../streams/stream-hub.ts';
import { bearerAuth } from './auth.ts';
import { registerDocs } from './docs.ts';
import { installErrorHandler } from './error-handler.ts';
import { rateLimit } from './rate-limit.ts';
import { RequestLog } from './request-log.ts';
import { agentRoutes } from './routes/agents.ts';
import { conversationRoutes } from './routes/conversations.ts';
import { callbackRoutes } from './routes/callbacks.ts';
import { healthRoutes } from './routes/health.ts';
import { operationRoutes } from './routes/operations.ts';
import { runDetailRoutes } from './routes/run-details.ts';
import { runRoutes } from './routes/runs.ts';
import { stepRoutes } from './routes/steps.ts';
import { streamRoutes } from './routes/stream.ts';
import { SHUTDOWN } from './stream-reply.ts';
import type { ApiDeps, ApiInstance } from './types.ts';
import { serializerCompiler, validatorCompiler } from './validation.ts';

export interface ApiOptions {
  config: Config;
  /** A Runhook on a fail-fast connection (createRedis(url, 'api')): an outage is a 503, not a hang. */
  runhook: Runhook;
  log: Logger;
  /** The process's metrics; one of its own when not given. */
  metrics?: Metrics;
}

const PACKAGE = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

/**
 * The API reads JSON only. A body-less POST sent with `content-type: application/json` (curl -X POST
 * -H ... with no -d) is read as no body rather than refused; anything else goes to Fastify's own JSON
 * parser, which guards against prototype poisoning.
 */
function acceptEmptyJson(app: FastifyInstance): void {
  const parse = app.getDefaultJsonParser('error', 'error');
  // JSON only: other media types are a 415, rather than a string the schemas then refuse.
  app.removeContentTypeParser(['application/json', 'text/plain']);
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    if (body === '') done(null, undefined);
    else parse(req, body as string, done);
  });
}

/** The HTTP API, routes registered and ready, not listening: tests may `inject` into it. */
export async function buildApi({ config, runhook, log, metrics = new Metrics({ runhook, log }) }: ApiOptions): Promise<ApiInstance> {
  const app = Fastify({
    loggerInstance: log.child({ part: 'api' }) as FastifyBaseLogger,
    // One line per request, by default only for 4xx/5xx (RUNHOOK_REQUEST_LOG).
    logController: new RequestLog(config.requestLog),
    bodyLimit: config.bodyLimit,
    routerOptions: { ignoreTrailingSlash: true },
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  installErrorHandler(app, runhook.redis, config.bodyLimit);
  acceptEmptyJson(app);
  observeRequests(app, metrics);
  await registerDocs(app, PACKAGE.version);

  const hub = new StreamHub({ redis: runhook.redis, keyPrefix: config.keyPrefix, log });
  metrics.observeStreams(hub);
  const deps: ApiDeps = { config, runhook, streams: new Set(), hub };
  app.addHook('preClose', async () => {
    for (const c of deps.streams) c.abort(SHUTDOWN);
  });
  app.addHook('onClose', () => hub.close());

  healthRoutes(app, deps);
  await app.register(
    async (v1: ApiInstance) => {
      if (config.apiKeys.length > 0) v1.addHook('onRequest', bearerAuth(config.apiKeys));
      if (config.rateLimitPerMinute > 0) v1.addHook('onRequest', rateLimit(runhook.redis, config.keyPrefix, config.rateLimitPerMinute));
      runRoutes(v1, deps);
      runDetailRoutes(v1, deps);
      stepRoutes(v1, deps);
      agentRoutes(v1, deps);
      conversationRoutes(v1, deps);
      streamRoutes(v1, deps);
      queueRoutes(v1, runhook);
      callbackRoutes(v1, deps);
      operationRoutes(v1, deps);
    },
    { prefix: '/v1' },
  );
  await registerMetricsRoute(app, { config, metrics });
  await registerDashboard(app, { config, runhook });
  registerConsole(app);
  await app.ready();
  return app;
}

export interface ApiServer {
  readonly app: ApiInstance;
  /** Where it listens, e.g. `http://127.0.0.1:8283`. */
  readonly url: string;
  /** Stops listening and ends open streams; safe to call twice. */
  close(): Promise<void>;
}

/** Builds the API and listens on config.host:config.port (0: any free port). */
export async function startApi(options: ApiOptions): Promise<ApiServer> {
  const app = await buildApi(options);
  const sockets = new Set<Socket>();
  app.server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await app.listen({ host: options.config.host, port: options.config.port });
  const address = app.server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  let closing: Promise<void> | undefined;
  return {
    app,
    url: `http://${host}:${address.port}`,
    close: () =>
      (closing ??= (async () => {
        // Requests in flight get the grace period to finish; then whatever is left is cut.
        const cut = setTimeout(() => app.server.closeAllConnections(), options.config.shutdownGraceMs);
        const closed = app.close();
        // Node closes idle keep-alive connections, but not ones a client opened ahead and never used.
        for (const socket of sockets) if (socket.bytesRead === 0) socket.destroy();
        await closed;
        clearTimeout(cut);
      })()),
  };
}
