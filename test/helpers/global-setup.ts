import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { RedisServer } from '../../src/redis-server.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
  }
}

/** One redis-server for the whole suite, on a free port, in a temporary directory; never a shared one. */
export default async function setup(project: TestProject) {
  if (!RedisServer.isInstalled()) throw new Error('redis-server is not installed (apt-get install -y redis-server)');
  const dir = mkdtempSync(join(tmpdir(), 'runhook-test-redis-'));
  const server = await RedisServer.start({ dir });
  project.provide('redisUrl', server.url);
  return async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  };
}
