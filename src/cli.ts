import { parseArgs } from 'node:util';
import { loadConfig } from './config.ts';
import { resolveRedis } from './embedded-redis.ts';
import { RunhookError } from './errors.ts';
import { createLogger } from './logger.ts';
import { showStatus } from './monitoring/status.ts';
import { BULK_USAGE, bulkCommand } from './operations/bulk-cli.ts';
import { closeRedis, createRedis, ready } from './queue/connection.ts';
import { Runhook } from './runhook.ts';

const USAGE = `usage: runhook <command>

  all                     API, run worker and callback worker in one process (npm start)
  api                     the HTTP API alone
  worker [--only runs|callbacks]
                          the workers; start as many as you like
  enqueue --agent-id ID [--input JSON] [--callback-url URL] [--metadata JSON] [--wait] [--timeout MS]
                          create a run; with --wait, print the final Run when it ends
  status [--watch] [--interval MS] [--json]
                          queue state, read from Redis (as GET /v1/queues reports it)
${BULK_USAGE}`;

/** A Runhook on its own fail-fast connection to the configured Redis (never started here), for `fn`. */
async function withRunhook<T>(fn: (runhook: Runhook) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const log = createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel, process.stderr, config.logFormat);
  const target = await resolveRedis(config, log, { startIfMissing: false });
  const redis = createRedis(target.target, 'api');
  redis.on('error', () => {});
  const runhook = new Runhook(config, redis, log);
  try {
    await ready(redis, 5_000);
    return await fn(runhook);
  } finally {
    await runhook.close();
    await closeRedis(redis);
  }
}

async function enqueue(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      'agent-id': { type: 'string' },
      input: { type: 'string' },
      'callback-url': { type: 'string' },
      metadata: { type: 'string' },
      wait: { type: 'boolean', default: false },
      timeout: { type: 'string', default: '60000' },
    },
  });
  if (!values['agent-id']) throw new UsageError('--agent-id is required');
  const json = (flag: string, v: string | undefined): unknown => {
    if (v === undefined) return undefined;
    try {
      return JSON.parse(v) as unknown;
    } catch {
      throw new UsageError(`--${flag} is not valid JSON: ${v}`);
    }
  };
  return withRunhook(async (runhook) => {
    const { run } = await runhook.createRun({
      agent_id: values['agent-id']!,
      input: json('input', values.input),
      callback_url: values['callback-url'] ?? null,
      metadata: json('metadata', values.metadata) as Record<string, unknown> | undefined,
    });
    const out = values.wait ? await runhook.waitForRun(run.id, { timeoutMs: Number(values.timeout) }) : run;
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    return 0;
  });
}

async function status(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      watch: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      interval: { type: 'string', default: '2000' },
    },
  });
  const intervalMs = Number(values.interval);
  if (!Number.isInteger(intervalMs) || intervalMs < 100) throw new UsageError(`--interval must be an integer of at least 100 (ms), not ${values.interval}`);
  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
  try {
    await withRunhook((runhook) =>
      showStatus(runhook, {
        watch: values.watch,
        json: values.json,
        intervalMs,
        out: process.stdout,
        where: `prefix ${runhook.config.keyPrefix}`,
        signal: stop.signal,
      }),
    );
  } finally {
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
  }
  return 0;
}

class UsageError extends Error {}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'all':
      await import('../workers/all.ts');
      return -1;
    case 'api':
      await import('../workers/api.ts');
      return -1;
    case 'worker':
      await import('../workers/worker.ts');
      return -1;
    case 'enqueue':
      return enqueue(rest);
    case 'status':
      return status(rest);
    case 'cancel':
    case 'replay':
    case 'delete': {
      const stop = new AbortController();
      const onSignal = () => stop.abort();
      process.once('SIGINT', onSignal);
      try {
        return await withRunhook((runhook) => bulkCommand(runhook, command, rest, { progress: process.stderr, out: process.stdout, signal: stop.signal }));
      } finally {
        process.off('SIGINT', onSignal);
      }
    }
    case undefined:
    case 'help':
    case '--help':
      process.stdout.write(USAGE);
      return 0;
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    // -1: a long-running part owns the process now and exits on its own signals.
    if (code >= 0) process.exit(code);
  },
  (err: Error) => {
    if (err instanceof UsageError) process.stderr.write(`runhook: ${err.message}\n\n${USAGE}`);
    else if (err instanceof RunhookError) process.stderr.write(`runhook: ${err.code}: ${err.message}\n`);
    else if (err && (err as { name?: string }).name === 'ZodError') process.stderr.write(`runhook: invalid input: ${err.message}\n`);
    else process.stderr.write(`runhook: ${err.message}\n`);
    process.exit(err instanceof UsageError ? 2 : 1);
  },
);
