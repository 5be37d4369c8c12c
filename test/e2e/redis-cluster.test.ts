import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startService, type Service } from '../../src/service.ts';
import { readSse, sseData } from '../helpers/api.ts';
import { Receiver } from '../helpers/receiver.ts';
import { TestRedisCluster } from '../helpers/redis-cluster.ts';
import { silentLog, testConfig } from '../helpers/setup.ts';

let cluster: TestRedisCluster;
let service: Service;
let receiver: Receiver;

beforeAll(async () => {
  cluster = await TestRedisCluster.start(3);
  receiver = await Receiver.start({ status: 200 });
  service = await startService(
    testConfig({
      redisUrl: undefined,
      redisClusterNodes: cluster.nodes,
      concurrency: 8,
      webhookSecret: `whsec_${Buffer.from('cluster-test-secret-of-32-bytes!').toString('base64')}`,
    }),
    silentLog,
    new Set(['api', 'runs', 'callbacks']),
  );
}, 60_000);
afterAll(async () => {
  await service?.close();
  await receiver?.close();
  await cluster?.stop();
});

describe('runhook on a 3-master Redis Cluster', () => {
  it('runs runs with callbacks end to end, lists them and cancels one', async () => {
    const created = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        service.runhook.createRun({ agent_id: `agent-${i % 2}`, input: { text: `run ${i}` }, callback_url: receiver.url('/hook') }),
      ),
    );
    const done = await Promise.all(created.map(({ run }) => service.runhook.waitForRun(run.id, { timeoutMs: 20_000 })));
    expect(done.every((r) => r.status === 'completed' && r.ttft_ns !== null)).toBe(true);
    // Every run's callback arrives, signed, with the run's messages, and is recorded on the run.
    const requests = await receiver.waitForRequests(40, 20_000);
    expect(new Set(requests.map((r) => String(r.headers['webhook-id'])))).toEqual(new Set(created.map(({ run }) => `msg_${run.id}`)));
    expect(requests.every((r) => String(r.headers['webhook-signature']).startsWith('v1,'))).toBe(true);
    const first = requests[0]!.json() as { status: string; metadata: { result: { messages: Array<{ content: string }> } } };
    expect(first.status).toBe('completed');
    expect(first.metadata.result.messages[0]!.content).toMatch(/^run \d+$/);
    const recorded = await service.runhook.getRun(created[0]!.run.id);
    await expect
      .poll(async () => (await service.runhook.getRun(recorded.id)).callback_status_code, { timeout: 10_000 })
      .toBe(200);
    const listed = await service.runhook.listRuns({ agent_ids: ['agent-0'], statuses: ['completed'], limit: 100 });
    expect(listed).toHaveLength(20);
    const { run } = await service.runhook.createRun({ agent_id: 'agent-0', input: { text: 'a b c d e', token_ms: 300 } });
    await service.runhook.cancelRun(run.id);
    expect((await service.runhook.waitForRun(run.id)).status).toBe('cancelled');
  });

  it("streams live runs to many clients through the API's one stream reader", async () => {
    const texts = ['one two three', 'four five six', 'seven eight nine'];
    const runs = await Promise.all(
      texts.map((text, i) => service.runhook.createRun({ agent_id: `agent-${i}`, input: { text, ttft_ms: 400, token_ms: 20 } })),
    );
    // Two clients per run, all connected before the first token: every entry comes through the hub.
    const streams = await Promise.all(runs.flatMap(({ run }) => [0, 1].map(() => fetch(`${service.api!.url}/v1/runs/${run.id}/stream`))));
    const metrics = await (await fetch(`${service.api!.url}/metrics`)).text();
    const all = await Promise.all(streams.map(readSse));
    all.forEach((events, i) => {
      const messages = sseData(events).filter((m) => m.message_type === 'assistant_message');
      expect(messages.map((m) => m.content).join('')).toBe(texts[Math.floor(i / 2)]);
      expect(messages.map((m) => m.seq_id)).toEqual([...messages.keys()].map((k) => k + 1));
    });
    expect(metrics).toMatch(/^runhook_stream_reader_connections 1$/m);
  });
});
