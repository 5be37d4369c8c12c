import type { WriteStream } from 'node:tty';
import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';
import { isColorSupported, prettyFactory } from 'pino-pretty';

export type { Logger };

/** `json`: one JSON object a line, for collectors; `pretty`: pino-pretty's lines, for a person at a terminal. */
export type LogFormat = 'json' | 'pretty';

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
  'openaiApiKey',
  '*.openaiApiKey',
  'httpSecret',
  '*.httpSecret',
];

export const loggerOptions = (level: string): LoggerOptions => ({
  level,
  base: { service: 'runhook' },
  redact: { paths: REDACT_PATHS, censor: '[redacted]' },
});

/**
 * pino-pretty's formatter applied in line, each line written at once. Not a pino transport: a transport
 * formats in a worker thread, whose buffered lines a `process.exit()` after SIGTERM can cut off unless
 * every exit path flushes it first. Pretty lines are for a person at a terminal, where throughput does
 * not matter, so they are written as synchronously as pino's own JSON destination; nothing is left to flush.
 */
function prettyDestination(out: NodeJS.WritableStream): DestinationStream {
  const colorize = isColorSupported && (out as Partial<WriteStream>).isTTY === true;
  const format = prettyFactory({
    colorize,
    singleLine: true,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname,service',
  });
  return { write: (line: string) => void out.write(format(line)) };
}

/**
 * The process's logger, writing to `destination` (stdout when not given). `format` unset: pretty lines
 * when the destination is a terminal, JSON lines otherwise (a pipe, a file, a container's log driver).
 */
export function createLogger(level: string, destination?: NodeJS.WritableStream, format?: LogFormat): Logger {
  const opts = loggerOptions(level);
  const out = destination ?? process.stdout;
  const pretty = (format ?? ((out as Partial<WriteStream>).isTTY ? 'pretty' : 'json')) === 'pretty';
  if (pretty) return pino(opts, prettyDestination(out));
  // pino's default destination is a synchronous write to fd 1, faster than process.stdout.
  return destination ? pino(opts, destination as DestinationStream) : pino(opts);
}
