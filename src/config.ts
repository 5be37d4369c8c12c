import { z } from 'zod';
import { ConfigError } from './errors.ts';

/** Svix's retry schedule, in ms between attempts: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h. */
export const SVIX_RETRY_DELAYS_MS = [0, 5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000];

const MS_PER_DAY = 86_400_000;

const int = (min: number) => z.coerce.number().int().min(min);
const bool = z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((v) => v === 'true' || v === '1' || v === 'yes');
const list = z.string().transform((v) => v.split(',').map((s) => s.trim()).filter(Boolean));

const cidr = z.string().regex(/^[0-9a-fA-F:.]+\/\d{1,3}$/, 'expected a CIDR such as 10.0.0.0/8');

/**
 * The environment runhook reads, with defaults and units. Every variable is read here and nowhere else;
 * the parsed object is frozen and handed down.
 */
const EnvSchema = z.object({
  REDIS_URL: z.url({ protocol: /^rediss?$/ }).optional(),
  REDIS_CLUSTER_NODES: z
    .string()
    .transform((v) => v.split(',').map((s) => s.trim()).filter(Boolean))
    .pipe(z.array(z.string().regex(/^[^:\s]+:\d{1,5}$/, 'expected host:port')).min(1))
    .optional(),
  PORT: int(0).max(65535).default(8283),
  HOST: z.string().min(1).default('127.0.0.1'),
  RUNHOOK_API_KEYS: list.default([]),
  RUNHOOK_WEBHOOK_SECRET: z
    .string()
    .regex(/^whsec_[A-Za-z0-9+/]+={0,2}$/, 'expected whsec_ followed by base64')
    .optional(),
  RUNHOOK_PROCESSOR: z.string().min(1).default('echo'),
  RUNHOOK_ROUTES: z
    .string()
    .transform((v, ctx) => {
      const rules = v.split(',').map((s) => s.trim()).filter(Boolean).map((rule) => {
        const at = rule.indexOf('=');
        return { agent: rule.slice(0, at).trim(), processor: rule.slice(at + 1).trim(), ok: at > 0 };
      });
      const bad = rules.find((r) => !r.ok || r.agent === '' || r.processor === '');
      if (bad) {
        ctx.addIssue({ code: 'custom', message: 'expected comma-separated agent-glob=processor rules, e.g. support-*=openai,*=echo' });
        return z.NEVER;
      }
      return rules.map(({ agent, processor }) => ({ agent, processor }));
    })
    .default([]),
  RUNHOOK_HTTP_URL: z.url({ protocol: /^https?$/ }).optional(),
  RUNHOOK_HTTP_SECRET: z
    .string()
    .regex(/^whsec_[A-Za-z0-9+/]+={0,2}$/, 'expected whsec_ followed by base64')
    .optional(),
  RUNHOOK_HTTP_IDLE_TIMEOUT_MS: int(1).default(60_000),
  RUNHOOK_OPENAI_BASE_URL: z.url({ protocol: /^https?$/ }).default('https://api.openai.com/v1'),
  RUNHOOK_OPENAI_API_KEY: z.string().min(1).optional(),
  RUNHOOK_OPENAI_MODEL: z.string().min(1).max(256).optional(),
  RUNHOOK_OPENAI_MAX_RETRIES: int(0).max(20).default(4),
  RUNHOOK_OPENAI_IDLE_TIMEOUT_MS: int(1).default(300_000),
  RUNHOOK_CONCURRENCY: int(1).max(10_000).default(16),
  RUNHOOK_RUN_ATTEMPTS: int(1).max(100).default(3),
  RUNHOOK_RUN_BACKOFF_MS: int(0).default(1_000),
  RUNHOOK_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'letters, digits, _ . : - only (it becomes a Redis hash tag)')
    .default('runhook'),
  RUNHOOK_RETENTION_DAYS: z.coerce.number().positive().default(30),
  RUNHOOK_SHUTDOWN_GRACE_MS: int(0).default(10_000),
  RUNHOOK_LOCK_DURATION_MS: int(1_000).default(30_000),
  RUNHOOK_STALLED_INTERVAL_MS: int(1_000).default(30_000),
  RUNHOOK_MAX_STALLED_COUNT: int(0).default(1),
  RUNHOOK_MAINTENANCE_INTERVAL_MS: int(100).default(15_000),
  RUNHOOK_CREATED_GRACE_MS: int(0).default(10_000),
  RUNHOOK_AGENT_CONCURRENCY: int(0).max(100_000).default(0),
  RUNHOOK_CONVERSATION_BUSY: z.enum(['queue', 'reject']).default('queue'),
  RUNHOOK_CALLBACK_TIMEOUT_MS: int(1).default(5_000),
  RUNHOOK_CALLBACK_RETRY_DELAYS: z
    .string()
    .transform((v, ctx) => {
      const delays = v.split(',').map((s) => Number(s.trim()));
      if (delays.length === 0 || delays.some((d) => !Number.isInteger(d) || d < 0)) {
        ctx.addIssue({ code: 'custom', message: 'expected comma-separated non-negative integers (ms)' });
        return z.NEVER;
      }
      return delays;
    })
    .default(SVIX_RETRY_DELAYS_MS),
  RUNHOOK_CALLBACK_CONCURRENCY: int(1).max(10_000).default(50),
  RUNHOOK_CALLBACK_ENDPOINT_CONCURRENCY: int(1).max(10_000).default(10),
  RUNHOOK_CALLBACK_BREAKER_FAILURES: int(1).max(10_000).default(5),
  RUNHOOK_CALLBACK_BREAKER_OPEN_MS: int(1).default(10_000),
  RUNHOOK_CALLBACK_BREAKER_MAX_OPEN_MS: int(1).default(300_000),
  RUNHOOK_CALLBACK_ALLOW_PRIVATE: z
    .string()
    .transform((v, ctx): true | false | string[] => {
      if (/^(true|1|yes)$/i.test(v)) return true;
      if (/^(false|0|no|)$/i.test(v)) return false;
      const cidrs = v.split(',').map((s) => s.trim()).filter(Boolean);
      for (const c of cidrs) {
        if (!cidr.safeParse(c).success) {
          ctx.addIssue({ code: 'custom', message: `"${c}" is neither true/false nor a CIDR` });
          return z.NEVER;
        }
      }
      return cidrs;
    })
    .default(false),
  RUNHOOK_BODY_LIMIT: int(1).default(1_048_576),
  RUNHOOK_RATE_LIMIT: int(0).default(0),
  RUNHOOK_STREAM_PING_MS: int(10).default(15_000),
  RUNHOOK_STREAM_WATCHER_BUFFER: int(1).default(10_000),
  RUNHOOK_STREAM_REPLAY_MINUTES: int(0).default(60),
  RUNHOOK_BULK_RATE: int(0).default(0),
  RUNHOOK_DATA_DIR: z.string().min(1).default('.runhook'),
  RUNHOOK_EMBEDDED_REDIS: bool.default(true),
  RUNHOOK_EMBEDDED_REDIS_PORT: int(1).max(65535).default(6379),
  RUNHOOK_METRICS_PORT: int(0).max(65535).optional(),
  RUNHOOK_TRACING: bool.default(false),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  LOG_FORMAT: z.enum(['json', 'pretty']).optional(),
  RUNHOOK_REQUEST_LOG: z.enum(['all', 'errors', 'off']).default('errors'),
});

/** Every environment variable runhook reads; deployment files are checked against it. */
export const ENV_NAMES: readonly string[] = Object.freeze(Object.keys(EnvSchema.shape));

export interface Config {
  /** Undefined means "the local default": redis://127.0.0.1:6379, started under dataDir if nothing answers. */
  readonly redisUrl: string | undefined;
  /** Seed nodes (host:port) of a Redis Cluster; when set, REDIS_URL is not used. */
  readonly redisClusterNodes: readonly string[] | undefined;
  readonly port: number;
  readonly host: string;
  readonly apiKeys: readonly string[];
  readonly webhookSecret: string | undefined;
  readonly processor: string;
  /**
   * Which processor runs an agent's runs when the request names none: the first rule whose glob (`*`
   * any characters) matches the agent id; no match, `processor`.
   */
  readonly routes: readonly { readonly agent: string; readonly processor: string }[];
  /** The `http` processor: the user's service (operator configuration, never taken from a request). */
  readonly httpUrl: string | undefined;
  /** Signs its requests as callbacks are signed; undefined: the webhook secret (none: unsigned). */
  readonly httpSecret: string | undefined;
  /** Longest silence of the service (before its answer, between two lines) before the attempt counts as broken. */
  readonly httpIdleTimeoutMs: number;
  /** The `openai` processor: base URL of an OpenAI-compatible API (…/v1), its key, the default model. */
  readonly openaiBaseUrl: string;
  readonly openaiApiKey: string | undefined;
  readonly openaiModel: string | undefined;
  /** Tries of one model call after the first (429, 5xx, broken connections), within one run attempt. */
  readonly openaiMaxRetries: number;
  /** Longest silence of the model server (before its answer, between two chunks) before the call counts as broken. */
  readonly openaiIdleTimeoutMs: number;
  readonly concurrency: number;
  readonly runAttempts: number;
  readonly runBackoffMs: number;
  /** The Redis hash tag every key of this deployment lives under, e.g. `{runhook}`. */
  readonly keyPrefix: string;
  readonly retentionMs: number;
  readonly shutdownGraceMs: number;
  readonly lockDurationMs: number;
  readonly stalledIntervalMs: number;
  readonly maxStalledCount: number;
  readonly maintenanceIntervalMs: number;
  /** A `created` run younger than this may still have its job being added; the reconciler leaves it. */
  readonly createdGraceMs: number;
  /** Most runs of one agent admitted at once (flow control, CONTRACT section 8); 0 = no limit. */
  readonly agentConcurrency: number;
  /** What a run on a conversation that is busy gets: a place in its queue, or Letta's 409. */
  readonly conversationBusy: 'queue' | 'reject';
  readonly callbackTimeoutMs: number;
  readonly callbackRetryDelaysMs: readonly number[];
  readonly callbackConcurrency: number;
  /** Deliveries in flight to one receiver origin per process; the rest wait their turn. */
  readonly callbackEndpointConcurrency: number;
  /** Consecutive failures to one receiver host that open its breaker (deliveries to it pause; one probe at a time). */
  readonly callbackBreakerFailures: number;
  /** How long an opened breaker waits before its first probe; each failed probe doubles it, up to the max. */
  readonly callbackBreakerOpenMs: number;
  readonly callbackBreakerMaxOpenMs: number;
  readonly callbackAllowPrivate: boolean | readonly string[];
  readonly bodyLimit: number;
  /** Requests per minute per API key; 0 turns the limit off. */
  readonly rateLimitPerMinute: number;
  /** How long a run's SSE stream may stay silent before a keep-alive ping is sent. */
  readonly streamPingMs: number;
  /** Stream entries held for one SSE client that reads slower than its run writes; past it, it is dropped. */
  readonly streamWatcherBuffer: number;
  /** How long an ended run's chunks are kept beside its folded messages for exact stream resumes; 0: none. */
  readonly streamReplayMs: number;
  /** Runs a bulk operation acts on per second (cancel, replay, delete); 0: as fast as it goes. */
  readonly bulkRatePerSecond: number;
  readonly dataDir: string;
  readonly embeddedRedis: boolean;
  /** Where the local default Redis is looked for, and started when nothing answers. */
  readonly embeddedRedisPort: number;
  /** Where a process without the API serves /metrics; undefined: it does not. */
  readonly metricsPort: number | undefined;
  /** OpenTelemetry spans for queue adds and job processing (bullmq-otel), into whatever SDK the user set up. */
  readonly tracing: boolean;
  readonly logLevel: z.infer<typeof EnvSchema>['LOG_LEVEL'];
  /** Undefined: pretty lines when the output is a terminal, JSON lines otherwise. */
  readonly logFormat: 'json' | 'pretty' | undefined;
  /** Which API requests get a log line: every one, those answered 4xx/5xx, or none. */
  readonly requestLog: z.infer<typeof EnvSchema>['RUNHOOK_REQUEST_LOG'];
}

/** Reads the environment once. Throws a ConfigError naming every invalid variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const relevant = Object.fromEntries(
    Object.keys(EnvSchema.shape)
      .filter((k) => env[k] !== undefined && env[k] !== '')
      .map((k) => [k, env[k]]),
  );
  const parsed = EnvSchema.safeParse(relevant);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`invalid configuration: ${problems.join('; ')}`, problems);
  }
  const e = parsed.data;
  return Object.freeze({
    redisUrl: e.REDIS_URL,
    redisClusterNodes: e.REDIS_CLUSTER_NODES ? Object.freeze([...e.REDIS_CLUSTER_NODES]) : undefined,
    port: e.PORT,
    host: e.HOST,
    apiKeys: Object.freeze([...e.RUNHOOK_API_KEYS]),
    webhookSecret: e.RUNHOOK_WEBHOOK_SECRET,
    processor: e.RUNHOOK_PROCESSOR,
    routes: Object.freeze(e.RUNHOOK_ROUTES.map((r) => Object.freeze(r))),
    httpUrl: e.RUNHOOK_HTTP_URL,
    httpSecret: e.RUNHOOK_HTTP_SECRET,
    httpIdleTimeoutMs: e.RUNHOOK_HTTP_IDLE_TIMEOUT_MS,
    openaiBaseUrl: e.RUNHOOK_OPENAI_BASE_URL.replace(/\/+$/, ''),
    openaiApiKey: e.RUNHOOK_OPENAI_API_KEY,
    openaiModel: e.RUNHOOK_OPENAI_MODEL,
    openaiMaxRetries: e.RUNHOOK_OPENAI_MAX_RETRIES,
    openaiIdleTimeoutMs: e.RUNHOOK_OPENAI_IDLE_TIMEOUT_MS,
    concurrency: e.RUNHOOK_CONCURRENCY,
    runAttempts: e.RUNHOOK_RUN_ATTEMPTS,
    runBackoffMs: e.RUNHOOK_RUN_BACKOFF_MS,
    keyPrefix: `{${e.RUNHOOK_PREFIX}}`,
    retentionMs: Math.round(e.RUNHOOK_RETENTION_DAYS * MS_PER_DAY),
    shutdownGraceMs: e.RUNHOOK_SHUTDOWN_GRACE_MS,
    lockDurationMs: e.RUNHOOK_LOCK_DURATION_MS,
    stalledIntervalMs: e.RUNHOOK_STALLED_INTERVAL_MS,
    maxStalledCount: e.RUNHOOK_MAX_STALLED_COUNT,
    maintenanceIntervalMs: e.RUNHOOK_MAINTENANCE_INTERVAL_MS,
    createdGraceMs: e.RUNHOOK_CREATED_GRACE_MS,
    agentConcurrency: e.RUNHOOK_AGENT_CONCURRENCY,
    conversationBusy: e.RUNHOOK_CONVERSATION_BUSY,
    callbackTimeoutMs: e.RUNHOOK_CALLBACK_TIMEOUT_MS,
    callbackRetryDelaysMs: Object.freeze([...e.RUNHOOK_CALLBACK_RETRY_DELAYS]),
    callbackConcurrency: e.RUNHOOK_CALLBACK_CONCURRENCY,
    callbackEndpointConcurrency: e.RUNHOOK_CALLBACK_ENDPOINT_CONCURRENCY,
    callbackBreakerFailures: e.RUNHOOK_CALLBACK_BREAKER_FAILURES,
    callbackBreakerOpenMs: e.RUNHOOK_CALLBACK_BREAKER_OPEN_MS,
    callbackBreakerMaxOpenMs: Math.max(e.RUNHOOK_CALLBACK_BREAKER_OPEN_MS, e.RUNHOOK_CALLBACK_BREAKER_MAX_OPEN_MS),
    callbackAllowPrivate: Array.isArray(e.RUNHOOK_CALLBACK_ALLOW_PRIVATE)
      ? Object.freeze([...e.RUNHOOK_CALLBACK_ALLOW_PRIVATE])
      : e.RUNHOOK_CALLBACK_ALLOW_PRIVATE,
    bodyLimit: e.RUNHOOK_BODY_LIMIT,
    rateLimitPerMinute: e.RUNHOOK_RATE_LIMIT,
    streamPingMs: e.RUNHOOK_STREAM_PING_MS,
    streamWatcherBuffer: e.RUNHOOK_STREAM_WATCHER_BUFFER,
    streamReplayMs: e.RUNHOOK_STREAM_REPLAY_MINUTES * 60_000,
    bulkRatePerSecond: e.RUNHOOK_BULK_RATE,
    dataDir: e.RUNHOOK_DATA_DIR,
    embeddedRedis: e.RUNHOOK_EMBEDDED_REDIS,
    embeddedRedisPort: e.RUNHOOK_EMBEDDED_REDIS_PORT,
    metricsPort: e.RUNHOOK_METRICS_PORT,
    tracing: e.RUNHOOK_TRACING,
    logLevel: e.LOG_LEVEL,
    logFormat: e.LOG_FORMAT,
    requestLog: e.RUNHOOK_REQUEST_LOG,
  });
}

/** The same configuration with some fields replaced; tests and the library use it instead of the environment. */
export function withConfig(overrides: Partial<Config>, base: Config = loadConfig({})): Config {
  return Object.freeze({ ...base, ...overrides });
}
