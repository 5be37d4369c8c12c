import type {
  FastifyBaseLogger,
  FastifyInstance,
  RawReplyDefaultExpression,
  RawRequestDefaultExpression,
  RawServerDefault,
} from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Config } from '../config.ts';
import type { Runhook } from '../runhook.ts';
import type { StreamHub } from '../streams/stream-hub.ts';

/** The Fastify instance the routes are declared on: request parts typed from their zod schemas. */
export type ApiInstance = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  ZodTypeProvider
>;

/** What every route module gets: nothing reaches for globals. */
export interface ApiDeps {
  readonly config: Config;
  /** A Runhook on the API's fail-fast Redis connection. */
  readonly runhook: Runhook;
  /** Open SSE streams, aborted when the server closes so that close() does not wait for their clients. */
  readonly streams: Set<AbortController>;
  /** The one reader of live run streams in this process, shared by every SSE client. */
  readonly hub: StreamHub;
}
