import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { withConfig, type Config } from '../src/config.ts';
import { createLogger, type Logger } from '../src/logger.ts';
import { RedisServer } from '../src/redis-server.ts';
import { excludeFromCount } from './instrument.ts';
import type { BenchParams } from './options.ts';
import { ReceiverHandle } from './receiver-handle.ts';

/**
 * What every scenario shares: the benchmark's own redis-server (never the machine's 6379), an admin
 * connection to it, the callback receiver process, and fresh key prefixes.
 */
export class BenchEnv {
  #prefixes = 0;
  #receiver: ReceiverHandle | undefined;
  readonly log: Logger = createLogger('silent');
  readonly webhookSecret = `whsec_${randomBytes(24).toString('base64')}`;

  private constructor(
    readonly params: BenchParams,
    readonly redisServer: RedisServer,
    readonly admin: Redis,
    private readonly dir: string,
  ) {}

  static async start(params: BenchParams): Promise<BenchEnv> {
    if (!RedisServer.isInstalled()) throw new Error('redis-server is not installed (apt-get install redis-server)');
    const dir = mkdtempSync(join(tmpdir(), 'runhook-bench-'));
    const server = await RedisServer.start({ dir, appendOnly: params.appendOnly });
    const admin = new Redis(server.url, { maxRetriesPerRequest: null });
    excludeFromCount(admin);
    return new BenchEnv(params, server, admin, dir);
  }

  get redisUrl(): string {
    return this.redisServer.url;
  }

  /** The receiver process, started on first use. */
  async receiver(): Promise<ReceiverHandle> {
    this.#receiver ??= await ReceiverHandle.start(this.webhookSecret);
    return this.#receiver;
  }

  /** A key prefix no earlier round used (the hash tag braces included). */
  prefix(label: string): string {
    return `{bench-${label}-${++this.#prefixes}}`;
  }

  runhookConfig(label: string, overrides: Partial<Config> = {}): Config {
    return withConfig({
      redisUrl: this.redisUrl,
      keyPrefix: this.prefix(label),
      concurrency: this.params.concurrency,
      logLevel: 'silent',
      webhookSecret: this.webhookSecret,
      callbackAllowPrivate: true,
      embeddedRedis: false,
      port: 0,
      host: '127.0.0.1',
      ...(this.params.configOverrides as Partial<Config>),
      ...overrides,
    });
  }

  /** Empties the benchmark's Redis between scenarios, synchronously, so memory figures start clean. */
  async flush(): Promise<void> {
    await this.admin.flushall('SYNC');
  }

  async info(section: string): Promise<Record<string, string>> {
    const text = await this.admin.info(section);
    const out: Record<string, string> = {};
    for (const line of text.split('\r\n')) {
      const i = line.indexOf(':');
      if (i > 0 && !line.startsWith('#')) out[line.slice(0, i)] = line.slice(i + 1);
    }
    return out;
  }

  async usedMemory(): Promise<number> {
    return Number((await this.info('memory')).used_memory);
  }

  async machine(): Promise<Record<string, unknown>> {
    const server = await this.info('server');
    const c = cpus();
    const { version: bullmq } = (await import('bullmq/package.json', { with: { type: 'json' } })).default as { version: string };
    return {
      cpus: c.length,
      cpu_model: c[0]?.model ?? null,
      total_memory_gb: Number((totalmem() / 2 ** 30).toFixed(1)),
      platform: `${process.platform} ${process.arch}`,
      node: process.version,
      redis: server.redis_version,
      redis_aof: this.params.appendOnly,
      bullmq,
      config_overrides: this.params.configOverrides,
      loadavg_at_start: loadavg().map((x) => Number(x.toFixed(2))),
    };
  }

  async close(): Promise<void> {
    await this.#receiver?.stop().catch(() => {});
    this.admin.disconnect();
    await this.redisServer.stop().catch(() => {});
    rmSync(this.dir, { recursive: true, force: true });
  }
}
