import { InMemorySpanExporter, NodeTracerProvider, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Run } from '../../src/runs/schema.ts';
import { startApiService, type ApiHarness } from '../helpers/api.ts';
import { Receiver } from '../helpers/receiver.ts';
import { waitFor } from '../helpers/setup.ts';

// The user's side of tracing: an OpenTelemetry SDK registered in the process (globals of
// @opentelemetry/api: the tracer provider, an AsyncLocalStorage context manager, W3C propagation).
// runhook ships none of this; with RUNHOOK_TRACING on, its queues and workers report into it.
const exporter = new InMemorySpanExporter();
const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
provider.register();

const JOB_ID = 'bullmq.job.id';

describe('tracing (RUNHOOK_TRACING)', () => {
  let api: ApiHarness;
  let receiver: Receiver;
  beforeAll(async () => {
    receiver = await Receiver.start({ status: 200 });
    api = await startApiService({ tracing: true }, ['runs', 'callbacks']);
  });
  afterAll(async () => {
    await api?.close();
    await receiver?.close();
    await provider.shutdown();
  });

  it("puts a run's enqueue, its processing and its callback delivery in one trace", async () => {
    const res = await api.call('/v1/runs', { method: 'POST', json: { agent_id: 'a1', input: { text: 'traced' }, callback_url: receiver.url('/hook') } });
    const run = (await res.json()) as Run;
    await receiver.waitForRequests(1);

    const spans = await waitFor(() => {
      const all = exporter.getFinishedSpans();
      const of = (queue: string, kind: string) => all.find((s) => s.name === `${kind} ${queue}` && jobOf(s) === (queue === 'runs' ? run.id : `cb-${run.id}`));
      const found = [all.find((s) => s.name === 'add runs.run'), of('runs', 'process'), of('callbacks', 'process')];
      return found.every(Boolean) ? (found as ReadableSpan[]) : undefined;
    }, 15_000, 'the spans of the run and of its callback');
    const [add, processRun, deliver] = spans as [ReadableSpan, ReadableSpan, ReadableSpan];

    const traceId = add.spanContext().traceId;
    expect(processRun.spanContext().traceId).toBe(traceId);
    expect(deliver.spanContext().traceId).toBe(traceId);
    // Each step is a child of the one before it.
    expect(processRun.parentSpanContext?.spanId).toBe(add.spanContext().spanId);
    const byId = new Map(exporter.getFinishedSpans().map((s) => [s.spanContext().spanId, s]));
    const ancestors: string[] = [];
    for (let s: ReadableSpan | undefined = deliver; s; s = byId.get(s.parentSpanContext?.spanId ?? '')) ancestors.push(s.name);
    // The callback job is added by the process that ended the run, while it processes it.
    expect(ancestors).toEqual(['process callbacks', 'addBulk callbacks', 'process runs', 'add runs.run']);
  });
});

function jobOf(span: ReadableSpan): unknown {
  return span.attributes[JOB_ID];
}
