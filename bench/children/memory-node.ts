/**
 * The process whose memory the memory scenario measures: runhook all-in-one (api, run worker, callback
 * worker) or a bare BullMQ no-op worker that returns the same short answer. The benchmark enqueues
 * from its own process. IPC: {id, cmd: 'mem'} → {id, rss, heapUsed, peakRss}; disconnect stops it.
 */
import { withConfig } from '../../src/config.ts';
import { createLogger } from '../../src/logger.ts';
import { startService } from '../../src/service.ts';
import { BareQueue } from '../bare.ts';

interface Args {
  mode: 'runhook' | 'bare';
  redisUrl: string;
  prefix: string;
  concurrency: number;
  webhookSecret: string;
  configOverrides: Record<string, unknown>;
}

const args = JSON.parse(process.argv[2]!) as Args;
let peakRss = 0;
const sample = () => (peakRss = Math.max(peakRss, process.memoryUsage.rss()));
const sampler = setInterval(sample, 200);

async function start(): Promise<() => Promise<void>> {
  if (args.mode === 'bare') {
    const bare = await BareQueue.open(args.redisUrl, args.prefix);
    await bare.startWorker(args.concurrency, async () => 'hi');
    return () => bare.close();
  }
  const config = withConfig({
    redisUrl: args.redisUrl,
    keyPrefix: args.prefix,
    concurrency: args.concurrency,
    logLevel: 'silent',
    webhookSecret: args.webhookSecret,
    callbackAllowPrivate: true,
    embeddedRedis: false,
    port: 0,
    host: '127.0.0.1',
    ...args.configOverrides,
  });
  const service = await startService(config, createLogger('silent'), new Set(['api', 'runs', 'callbacks']));
  return () => service.close();
}

start().then(
  (close) => {
    process.on('message', (m: { id: number; cmd: string }) => {
      if (m.cmd === 'mem') {
        sample();
        const u = process.memoryUsage();
        process.send!({ id: m.id, rss: u.rss, heapUsed: u.heapUsed, peakRss });
      } else process.send!({ id: m.id, error: `unknown command ${m.cmd}` });
    });
    process.on('disconnect', () => {
      clearInterval(sampler);
      close().finally(() => process.exit(0));
    });
    process.send!({ type: 'ready' });
  },
  (err: Error) => {
    process.send!({ type: 'failed', error: err.message });
    process.exit(1);
  },
);
