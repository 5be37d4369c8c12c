import { Queue, Worker, type Job, type JobsOptions } from 'bullmq';
import { Redis } from 'ioredis';
import { Agent, request } from 'undici';
import { loadConfig } from '../src/config.ts';
import { secretKey, webhookHeaders, webhookId } from '../src/callbacks/sign.ts';
import { runJobOptions } from '../src/queue/queues.ts';

/**
 * The bare BullMQ side: a queue and a worker on one connection, as runhook's are, with the job options of
 * runhook's run jobs (same attempts and retention) but BullMQ's own job ids, so the difference measured
 * is runhook's own work.
 */
export function bareJobOptions(): JobsOptions {
  const opts = { ...runJobOptions(loadConfig({}), 'unused') };
  delete opts.jobId;
  return opts;
}

export const BARE_QUEUE = 'bare';

export class BareQueue {
  completed = 0;
  failed = 0;
  readonly queue: Queue;
  worker: Worker | undefined;

  private constructor(
    readonly connection: Redis,
    readonly prefix: string,
  ) {
    this.queue = new Queue(BARE_QUEUE, { connection, prefix });
  }

  static async open(url: string, prefix: string): Promise<BareQueue> {
    const connection = new Redis(url, { maxRetriesPerRequest: null });
    const b = new BareQueue(connection, prefix);
    await b.queue.waitUntilReady();
    return b;
  }

  /** Starts the worker; `processor` defaults to a no-op. */
  async startWorker(concurrency: number, processor: (job: Job) => Promise<unknown> = async () => undefined): Promise<void> {
    this.worker = new Worker(BARE_QUEUE, processor, { connection: this.connection, prefix: this.prefix, concurrency, autorun: true });
    this.worker.on('completed', () => this.completed++);
    this.worker.on('failed', () => this.failed++);
    this.worker.on('error', () => {});
    await this.worker.waitUntilReady();
  }

  /** Adds n jobs with addBulk, `chunk` at a time. */
  async addBulk(n: number, data: unknown, chunk: number, opts: JobsOptions = bareJobOptions()): Promise<void> {
    for (let i = 0; i < n; i += chunk) {
      const size = Math.min(chunk, n - i);
      await this.queue.addBulk(Array.from({ length: size }, () => ({ name: 'run', data, opts })));
    }
  }

  async close(): Promise<void> {
    await this.worker?.close().catch(() => {});
    await this.queue.close().catch(() => {});
    this.connection.disconnect();
  }
}

/**
 * What a bare BullMQ user would write to call back inline: sign the same kind of payload with the same
 * scheme and POST it with undici from the worker, no retries, no record of the attempt.
 */
export class BareCallbackSender {
  readonly #agent = new Agent({ keepAliveTimeout: 30_000, connections: 128 });
  readonly #key: Buffer;

  constructor(
    readonly url: string,
    secret: string,
  ) {
    this.#key = secretKey(secret);
  }

  async send(id: string): Promise<void> {
    const body = JSON.stringify({
      run_id: id,
      status: 'completed',
      completed_at: new Date().toISOString(),
      metadata: {
        result: {
          messages: [{ id: `message-${id}`, message_type: 'assistant_message', content: 'hi', seq_id: 1 }],
          stop_reason: { message_type: 'stop_reason', stop_reason: 'end_turn' },
          usage: { message_type: 'usage_statistics', prompt_tokens: 1, completion_tokens: 1, total_tokens: 2, step_count: 1 },
        },
      },
      agent_id: 'agent-bench',
      stop_reason: 'end_turn',
      ttft_ns: 0,
      total_duration_ns: 0,
    });
    const res = await request(this.url, {
      method: 'POST',
      dispatcher: this.#agent,
      headers: { 'content-type': 'application/json', ...webhookHeaders(this.#key, webhookId(id), body) },
      body,
      headersTimeout: 5_000,
      bodyTimeout: 5_000,
    });
    await res.body.dump();
    if (res.statusCode >= 300) throw new Error(`receiver answered ${res.statusCode}`);
  }

  async close(): Promise<void> {
    await this.#agent.close();
  }
}
