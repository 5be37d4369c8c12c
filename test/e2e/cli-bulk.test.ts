import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BulkOperation } from '../../src/operations/schema.ts';
import type { Runhook } from '../../src/runhook.ts';
import { childEnv, startRunhook, type RunhookProcess } from '../helpers/processes.ts';
import { closeTestRunhook, openTestRunhook, testConfig } from '../helpers/setup.ts';

const run = promisify(execFile);
const BIN = fileURLToPath(new URL('../../bin/runhook.js', import.meta.url));
const config = testConfig();
const env = childEnv(config, { LOG_LEVEL: 'warn' });
let worker: RunhookProcess;
let runhook: Runhook;

beforeAll(async () => {
  runhook = await openTestRunhook(config);
  worker = startRunhook(['worker', '--only', 'runs'], { ...env, LOG_LEVEL: 'info' });
  await worker.waitForOutput('run worker started');
});
afterAll(async () => {
  expect(await worker.kill('SIGTERM')).toBe(0);
  await closeTestRunhook(runhook);
});

describe('runhook cancel / replay / delete', () => {
  it('cancels the waiting runs of an agent with a progress bar, then prints the operation', async () => {
    const later = new Date(Date.now() + 3_600_000).toISOString();
    const mine = await Promise.all(Array.from({ length: 25 }, () => runhook.createRun({ agent_id: 'cli-a', input: { text: 'x' }, run_at: later })));
    const other = await runhook.createRun({ agent_id: 'cli-b', input: { text: 'y' }, run_at: later });
    const { stdout, stderr } = await run(process.execPath, [BIN, 'cancel', '--agent', 'cli-a', '--status', 'created'], { env });
    const op = BulkOperation.parse(JSON.parse(stdout));
    expect(op).toMatchObject({ action: 'cancel', status: 'done', matched: 25, done: 25, failed: 0 });
    expect(stderr).toMatch(/cancel \[#{30}\] 25\/25 · 25 done, 0 failed · done/);
    for (const { run: r } of mine) expect((await runhook.getRun(r.id)).status).toBe('cancelled');
    expect((await runhook.getRun(other.run.id)).status).toBe('created');
  });

  it('replays and deletes by agent', async () => {
    const { stdout } = await run(process.execPath, [BIN, 'replay', '--agent', 'cli-b', '--json'], { env });
    expect(BulkOperation.parse(JSON.parse(stdout))).toMatchObject({ action: 'replay', status: 'done', matched: 1, done: 1 });
    expect(await runhook.listRuns({ agent_ids: ['cli-b'] })).toHaveLength(2);
    const del = await run(process.execPath, [BIN, 'delete', '--agent', 'cli-b', '--json'], { env });
    expect(BulkOperation.parse(JSON.parse(del.stdout))).toMatchObject({ action: 'delete', matched: 2, done: 2 });
    expect(await runhook.listRuns({ agent_ids: ['cli-b'] })).toHaveLength(0);
  });

  it('refuses to act on every run unless told --all, and a bad status', async () => {
    const none = await run(process.execPath, [BIN, 'delete'], { env }).catch((e: unknown) => e);
    expect(none).toMatchObject({ code: 1 });
    expect((none as { stderr: string }).stderr).toContain('no filter given');
    const bad = await run(process.execPath, [BIN, 'cancel', '--status', 'sleeping'], { env }).catch((e: unknown) => e);
    expect(bad).toMatchObject({ code: 1 });
    expect((bad as { stderr: string }).stderr).toContain('statuses');
  });
});
