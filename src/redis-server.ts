import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { resolve } from 'node:path';

/**
 * A `redis-server` process this program owns: the local default of `npm start`, the test suite's Redis,
 * the benchmark's. Configured as BullMQ needs it (noeviction); AOF on when asked.
 */
export interface RedisServerOptions {
  port?: number;
  dir: string;
  appendOnly?: boolean;
  /** `always` for the fault tests: nothing acknowledged is lost when the server is killed. */
  appendFsync?: 'always' | 'everysec' | 'no';
  extraArgs?: string[];
  /** Keep running after this process exits (the embedded default of `npm start` does not). */
  detached?: boolean;
}

export class RedisServer {
  #child: ChildProcess | undefined;
  readonly port: number;

  private constructor(
    readonly options: RedisServerOptions & { port: number },
  ) {
    this.port = options.port;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static isInstalled(): boolean {
    return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
  }

  static async start(options: RedisServerOptions): Promise<RedisServer> {
    const server = new RedisServer({ ...options, port: options.port ?? (await freePort()) });
    await server.start();
    return server;
  }

  async start(): Promise<void> {
    const o = this.options;
    const dir = resolve(o.dir);
    mkdirSync(dir, { recursive: true });
    const args = [
      '--port', String(this.port),
      '--bind', '127.0.0.1',
      '--dir', dir,
      '--save', '',
      '--appendonly', o.appendOnly ? 'yes' : 'no',
      '--appendfsync', o.appendFsync ?? 'everysec',
      '--maxmemory-policy', 'noeviction',
      '--logfile', 'redis.log',
      ...(o.extraArgs ?? []),
    ];
    this.#child = spawn('redis-server', args, { stdio: 'ignore', detached: o.detached ?? false });
    if (o.detached) this.#child.unref();
    const exited = new Promise<never>((_, reject) =>
      this.#child!.once('exit', (code) => reject(new Error(`redis-server exited with code ${code}; see ${dir}/redis.log`))),
    );
    exited.catch(() => {});
    await Promise.race([waitForRedis(this.port, 10_000), exited]);
  }

  /** Kills the server at once (SIGKILL), as a crash would. */
  async kill(): Promise<void> {
    await this.#stop('SIGKILL');
  }

  async stop(): Promise<void> {
    await this.#stop('SIGTERM');
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  async #stop(signal: NodeJS.Signals): Promise<void> {
    const child = this.#child;
    this.#child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((res) => {
      child.once('exit', () => res());
      child.kill(signal);
    });
  }
}

/** Whether something answers PING on 127.0.0.1:port. */
export function pingRedis(port: number, host = '127.0.0.1', timeoutMs = 500): Promise<boolean> {
  return new Promise((res) => {
    const sock = createConnection({ port, host });
    const done = (ok: boolean) => {
      sock.destroy();
      res(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once('error', () => done(false));
    sock.once('connect', () => sock.write('PING\r\n'));
    sock.once('data', (d) => done(d.toString().startsWith('+PONG')));
  });
}

export async function waitForRedis(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await pingRedis(port))) {
    if (Date.now() > deadline) throw new Error(`redis on port ${port} did not answer within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => res(port));
    });
  });
}
