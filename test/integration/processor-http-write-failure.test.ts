import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RunContext } from '../../src/processing/context.ts';
import { httpProcessor } from '../../src/processing/processors/http.ts';
import { createRedis, ready } from '../../src/queue/connection.ts';
import { RunStore } from '../../src/runs/store.ts';
import { HttpService } from '../helpers/http-service.ts';
import { closeRedis, connect, redisUrl, silentLog, testConfig } from '../helpers/setup.ts';

const SECRET = 'whsec_dGhlIHNlcnZpY2UncyBvd24gc2VjcmV0IGZvciB0ZXN0cw==';

/**
 * A message the http processor relays whose write fails (Redis went away mid-run) must surface where the
 * worker looks, at flush, and never as an unhandled rejection: Node ends the process on one, and with it
 * every other run the worker holds (the echo and openai processors catch theirs for the same reason).
 */
describe('the http processor when a message write fails', () => {
  let service: HttpService;
  beforeAll(async () => {
    service = await HttpService.start(SECRET);
  });
  afterAll(async () => {
    await service.close();
  });

  it('leaves the failure to the worker (flush) and no unhandled rejection', async () => {
    const config = testConfig();
    const redis = await connect();
    const store = new RunStore(redis, { keyPrefix: config.keyPrefix, retentionMs: config.retentionMs });
    const { record } = await store.create({ agent_id: 'agent-http', input: { words: ['one ', 'two'] } });
    const started = await store.start(record.run.id, 1);
    expect(started.outcome).toBe('started');
    if (started.outcome !== 'started') return;

    // The attempt writes through a connection to Redis that is gone (a fail-fast one, as the API's).
    const lost = createRedis(redisUrl(), 'api');
    lost.on('error', () => {});
    await ready(lost);
    lost.disconnect();
    const lostStore = new RunStore(lost, { keyPrefix: config.keyPrefix, retentionMs: config.retentionMs });

    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const signal = new AbortController().signal;
      const context = new RunContext(started.record, 1, silentLog, lostStore, signal, () => {}, 'http');
      const processor = httpProcessor({ url: service.url, secret: SECRET, idleTimeoutMs: 5_000 });
      const result = await processor.run({ run: started.record.run, input: started.record.input, signal, context });
      expect(result).toMatchObject({ stop_reason: 'end_turn' });
      // The worker's flush raises the failed write (and the run is retried or failed from there).
      await expect(context.flush()).rejects.toThrow();
      // Rejections nobody handled are reported after the microtasks of a turn: give them two turns.
      await new Promise((r) => setImmediate(r));
      await new Promise((r) => setImmediate(r));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
      await closeRedis(redis);
    }
  });
});
