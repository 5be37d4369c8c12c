import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyCallback } from '../../src/callbacks/verify.ts';
import { Runhook } from '../../src/runhook.ts';
import { Receiver } from '../helpers/receiver.ts';
import { closeRedis, connect, redisUrl, silentLog, testConfig, waitFor } from '../helpers/setup.ts';

const prefix = `cbkill-${randomUUID().slice(0, 8)}`;
const secret = `whsec_${randomBytes(24).toString('base64')}`;

/** `runhook worker --only callbacks` as its own process, configured through the environment only. */
function startWorkerProcess(): ChildProcess {
  const child = spawn(process.execPath, ['bin/runhook.js', 'worker', '--only', 'callbacks'], {
    cwd: new URL('../..', import.meta.url).pathname,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      REDIS_URL: redisUrl(),
      RUNHOOK_PREFIX: prefix,
      RUNHOOK_EMBEDDED_REDIS: 'false',
      RUNHOOK_WEBHOOK_SECRET: secret,
      RUNHOOK_CALLBACK_ALLOW_PRIVATE: 'true',
      // The receiver hangs on purpose; the delivery must still be in flight when the process is killed.
      RUNHOOK_CALLBACK_TIMEOUT_MS: '60000',
      RUNHOOK_CALLBACK_RETRY_DELAYS: '0,50,100',
      RUNHOOK_LOCK_DURATION_MS: '1000',
      RUNHOOK_STALLED_INTERVAL_MS: '1000',
      LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  children.push(child);
  return child;
}

const children: ChildProcess[] = [];

describe('a callback worker killed in the middle of a delivery', () => {
  let receiver: Receiver;
  let runhook: Runhook;
  let redis: Awaited<ReturnType<typeof connect>>;
  beforeAll(async () => {
    receiver = await Receiver.start({ hang: true }, { status: 200 });
    redis = await connect();
    runhook = new Runhook(testConfig({ keyPrefix: `{${prefix}}`, callbackRetryDelaysMs: [0, 50, 100] }), redis, silentLog);
  });
  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await runhook.close();
    await closeRedis(redis);
    await receiver.close();
  });

  it('delivers after a restart, with the same webhook-id', async () => {
    const first = startWorkerProcess();
    const { record } = await runhook.store.create({ agent_id: 'a', callback_url: receiver.url('/hook') });
    const id = record.run.id;
    await runhook.store.transition(id, 'running');
    await runhook.store.transition(id, 'completed');

    const [hung] = await receiver.waitForRequests(1, 20_000);
    const exited = new Promise((resolve) => first.once('exit', resolve));
    first.kill('SIGKILL');
    await exited;
    expect(await runhook.store.callbackAttempts(id)).toEqual([]);

    startWorkerProcess();
    const [, delivered] = await receiver.waitForRequests(2, 30_000);
    expect(delivered!.headers['webhook-id']).toBe(hung!.headers['webhook-id']);
    expect(verifyCallback(secret, delivered!.headers, delivered!.body).run_id).toBe(id);
    const run = await waitFor(async () => {
      const r = await runhook.getRun(id);
      return r.callback_status_code === 200 ? r : undefined;
    }, 10_000, 'the delivery to be recorded');
    expect(run.callback_error).toBeNull();
    expect(await runhook.store.callbackAttempts(id)).toEqual([expect.objectContaining({ status_code: 200, error: null })]);
  });
});
