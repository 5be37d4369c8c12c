import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { RedisServer } from '../../src/redis-server.ts';

const exec = promisify(execFile);

/** A Redis Cluster of `masters` redis-server processes on loopback, made with `redis-cli --cluster create`. */
export class TestRedisCluster {
  private constructor(
    readonly servers: RedisServer[],
    private readonly dir: string,
  ) {}

  get nodes(): string[] {
    return this.servers.map((s) => `127.0.0.1:${s.port}`);
  }

  static async start(masters = 3): Promise<TestRedisCluster> {
    const dir = mkdtempSync(join(tmpdir(), 'runhook-cluster-'));
    const servers = await Promise.all(
      Array.from({ length: masters }, (_, i) =>
        RedisServer.start({
          dir: join(dir, `node-${i}`),
          extraArgs: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '2000'],
        }),
      ),
    );
    const cluster = new TestRedisCluster(servers, dir);
    await exec('redis-cli', ['--cluster', 'create', ...cluster.nodes, '--cluster-replicas', '0', '--cluster-yes']);
    await cluster.#waitUntilOk();
    return cluster;
  }

  async #waitUntilOk(): Promise<void> {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const states = await Promise.all(
        this.servers.map(async (s) => (await exec('redis-cli', ['-p', String(s.port), 'cluster', 'info'])).stdout),
      );
      if (states.every((info) => info.includes('cluster_state:ok'))) return;
      if (Date.now() > deadline) throw new Error(`cluster not ok:\n${states.join('\n')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async stop(): Promise<void> {
    await Promise.all(this.servers.map((s) => s.stop()));
    rmSync(this.dir, { recursive: true, force: true });
  }
}
