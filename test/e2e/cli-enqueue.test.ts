import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Run } from '../../src/runs/schema.ts';
import { testConfig } from '../helpers/setup.ts';
import { childEnv, startRunhook, type RunhookProcess } from '../helpers/processes.ts';

const run = promisify(execFile);
const BIN = fileURLToPath(new URL('../../bin/runhook.js', import.meta.url));
const config = testConfig();
const env = childEnv(config, { LOG_LEVEL: 'warn' });
let worker: RunhookProcess;

beforeAll(async () => {
  worker = startRunhook(['worker'], { ...env, LOG_LEVEL: 'info' });
  await worker.waitForOutput('run worker started');
});
afterAll(async () => {
  expect(await worker.kill('SIGTERM')).toBe(0);
});

describe('runhook enqueue', () => {
  it('creates a run and, with --wait, prints the completed Run as JSON', async () => {
    const { stdout } = await run(
      process.execPath,
      [BIN, 'enqueue', '--agent-id', 'a1', '--input', '{"text":"hi there","ttft_ms":30}', '--wait'],
      { env },
    );
    const printed = Run.parse(JSON.parse(stdout));
    expect(printed).toMatchObject({ agent_id: 'a1', status: 'completed', stop_reason: 'end_turn' });
    expect(printed.ttft_ns).toBeGreaterThanOrEqual(30_000_000);
    expect(printed.total_duration_ns).toBeGreaterThanOrEqual(printed.ttft_ns!);
  });

  it('fails with a clear message and a non-zero exit on bad input', async () => {
    const err = await run(process.execPath, [BIN, 'enqueue', '--agent-id', 'a1', '--input', '{not json'], { env }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 2 });
    expect((err as { stderr: string }).stderr).toContain('--input is not valid JSON');
    const missing = await run(process.execPath, [BIN, 'enqueue'], { env }).catch((e: unknown) => e);
    expect((missing as { stderr: string }).stderr).toContain('--agent-id is required');
  });

  it('refuses an invalid configuration, naming the variable', async () => {
    const err = await run(process.execPath, [BIN, 'enqueue', '--agent-id', 'a1'], { env: { ...env, RUNHOOK_RUN_ATTEMPTS: 'many' } }).catch(
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 1 });
    expect((err as { stderr: string }).stderr).toContain('RUNHOOK_RUN_ATTEMPTS');
  });
});
