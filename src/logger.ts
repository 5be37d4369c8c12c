import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger };

/** Paths that may hold a key or a secret; pino replaces them before a line is written. */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers["idempotency-key"]',
  'headers.authorization',
  'authorization',
  'apiKey',
  'apiKeys',
  'secret',
  'webhookSecret',
  '*.webhookSecret',
  '*.apiKeys',
  'redisUrl',
];

export const loggerOptions = (level: string): LoggerOptions => ({
  level,
  base: { service: 'runhook' },
  redact: { paths: REDACT_PATHS, censor: '[redacted]' },
});

export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  const opts = loggerOptions(level);
  return destination ? pino(opts, destination as pino.DestinationStream) : pino(opts);
}
