import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, pingRedis } from '../../src/redis-server.ts';
import { startRunhook, type RunhookProcess } from '../helpers/processes.ts';

const run = promisify(execFile);
const BIN = fileURLToPath(new URL('../../bin/runhook.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'runhook-quickstart-'));
let service: RunhookProcess | undefined;

afterAll(async () => {
  await service?.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

describe('the quickstart on a machine with no Redis running', () => {
  it('`runhook all` without REDIS_URL starts its own redis-server, runs a run, and stops it on SIGTERM', async () => {
    const port = await freePort();
    const env = {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      RUNHOOK_EMBEDDED_REDIS_PORT: String(port),
      RUNHOOK_DATA_DIR: join(dir, '.runhook'),
      PORT: '0',
      LOG_LEVEL: 'info',
    };
    service = startRunhook(['all'], env);
    await service.waitForOutput('runhook is up');
    expect(service.output()).toContain('started an embedded redis-server');
    const { stdout } = await run(process.execPath, [BIN, 'enqueue', '--agent-id', 'a1', '--input', '{"text":"hi there","ttft_ms":30}', '--wait'], {
      env: { ...env, LOG_LEVEL: 'warn' },
    });
    expect(JSON.parse(stdout)).toMatchObject({ status: 'completed', agent_id: 'a1' });
    expect(await service.kill('SIGTERM')).toBe(0);
    expect(await pingRedis(port)).toBe(false);
  });
});
