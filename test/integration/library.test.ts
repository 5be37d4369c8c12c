import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRunhook, type Runhook } from '../../src/index.ts';
import { startService, type Service } from '../../src/service.ts';
import { silentLog, testConfig } from '../helpers/setup.ts';

describe('the library entry', () => {
  const config = testConfig();
  let service: Service;
  let rh: Runhook;
  beforeAll(async () => {
    service = await startService(config, silentLog, new Set(['runs']));
    rh = await openRunhook({ redisUrl: config.redisUrl, keyPrefix: config.keyPrefix, log: silentLog });
  });
  afterAll(async () => {
    await rh.close();
    await service.close();
  });

  it('creates a run from code and waits for it, as the README shows', async () => {
    const { run } = await rh.createRun({ agent_id: 'lib', input: { text: 'hello from code' } });
    const done = await rh.waitForRun(run.id);
    expect(done).toMatchObject({ id: run.id, status: 'completed', stop_reason: 'end_turn' });
    expect((await rh.listRuns({ agent_ids: ['lib'] })).map((r) => r.id)).toEqual([run.id]);
  });
});
