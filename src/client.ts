import { Agent, request, type Dispatcher } from 'undici';
import { ApiResponseError, RunTimeoutError } from './errors.ts';
import { isTerminal } from './runs/status.ts';
import type { BulkCreate, BulkOperation } from './operations/schema.ts';
import type { Run, RunCreate, RunStatus, SortOrder, StopReasonType } from './runs/schema.ts';

export interface RunhookClientOptions {
  /** Where the API listens, e.g. `http://127.0.0.1:8283`. */
  baseUrl: string;
  /** One of the server's RUNHOOK_API_KEYS, when it has any. */
  apiKey?: string;
  /** An undici dispatcher to share (pool, proxy, mock); by default the client keeps its own Agent. */
  dispatcher?: Dispatcher;
  /** Per-request timeout for headers and body, ms. */
  timeoutMs?: number;
}

/** The list filters of GET /v1/runs. */
export interface ListRunsQuery {
  agent_id?: string;
  statuses?: RunStatus[];
  /** true: only created or running runs (ignored when `statuses` is given, as in Letta). */
  active?: boolean;
  background?: boolean;
  stop_reason?: StopReasonType;
  conversation_id?: string;
  before?: string;
  after?: string;
  limit?: number;
  order?: SortOrder;
}

export interface WaitOptions {
  timeoutMs?: number;
  pollMs?: number;
}

/**
 * A typed client of the runhook HTTP API, for code that enqueues runs and waits for them:
 *
 *   const client = new RunhookClient({ baseUrl: 'http://127.0.0.1:8283' });
 *   const run = await client.createRun({ agent_id: 'a1', input: { text: 'hi' } });
 *   const done = await client.waitForRun(run.id);
 *
 * An error answer is an ApiResponseError with the HTTP status and the server's error code.
 */
export class RunhookClient {
  readonly #base: string;
  readonly #headers: Record<string, string>;
  readonly #dispatcher: Dispatcher;
  readonly #ownsDispatcher: boolean;
  readonly #timeoutMs: number;

  constructor(options: RunhookClientOptions) {
    this.#base = options.baseUrl.replace(/\/+$/, '');
    this.#headers = {
      accept: 'application/json',
      ...(options.apiKey && { authorization: `Bearer ${options.apiKey}` }),
    };
    this.#ownsDispatcher = options.dispatcher === undefined;
    this.#dispatcher = options.dispatcher ?? new Agent({ keepAliveTimeout: 10_000 });
    this.#timeoutMs = options.timeoutMs ?? 30_000;
  }

  /** Creates a run; with an idempotency key, a retry of the same request returns the same run. */
  createRun(body: RunCreate, { idempotencyKey }: { idempotencyKey?: string } = {}): Promise<Run> {
    return this.#call('POST', '/v1/runs', body, idempotencyKey ? { 'idempotency-key': idempotencyKey } : {});
  }

  getRun(id: string): Promise<Run> {
    return this.#call('GET', `/v1/runs/${encodeURIComponent(id)}`);
  }

  /** One page of runs, newest first unless `order: 'asc'`. */
  listRuns(query: ListRunsQuery = {}): Promise<Run[]> {
    return this.#call('GET', `/v1/runs${toQueryString(query)}`);
  }

  /** Every run matching the filters, a page at a time. */
  async *iterateRuns(query: Omit<ListRunsQuery, 'after' | 'before'> = {}): AsyncGenerator<Run> {
    let after: string | undefined;
    for (;;) {
      const page = await this.listRuns({ ...query, ...(after && { after }) });
      yield* page;
      if (page.length < (query.limit ?? 100)) return;
      after = page.at(-1)!.id;
    }
  }

  cancelRun(id: string): Promise<Run> {
    return this.#call('POST', `/v1/runs/${encodeURIComponent(id)}/cancel`);
  }

  /** A new run from an old one (`replay_of` names it); the original is not changed. */
  replayRun(id: string): Promise<Run> {
    return this.#call('POST', `/v1/runs/${encodeURIComponent(id)}/replay`);
  }

  /** Starts a bulk cancel, replay or delete; follow it with getBulkOperation. */
  startBulkOperation(body: BulkCreate): Promise<BulkOperation> {
    return this.#call('POST', '/v1/runs/bulk', body);
  }

  getBulkOperation(id: string): Promise<BulkOperation> {
    return this.#call('GET', `/v1/runs/bulk/${encodeURIComponent(id)}`);
  }

  /** Polls until the run is completed, failed or cancelled; a RunTimeoutError after `timeoutMs`. */
  async waitForRun(id: string, { timeoutMs = 60_000, pollMs = 250 }: WaitOptions = {}): Promise<Run> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const run = await this.getRun(id);
      if (isTerminal(run.status)) return run;
      const left = deadline - Date.now();
      if (left <= 0) throw new RunTimeoutError(`run ${id} still ${run.status} after ${timeoutMs} ms`, { run_id: id });
      await new Promise((r) => setTimeout(r, Math.min(pollMs, left)));
    }
  }

  async close(): Promise<void> {
    if (this.#ownsDispatcher) await this.#dispatcher.close();
  }

  async #call<T>(method: Dispatcher.HttpMethod, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
    const res = await request(`${this.#base}${path}`, {
      method,
      dispatcher: this.#dispatcher,
      headersTimeout: this.#timeoutMs,
      bodyTimeout: this.#timeoutMs,
      headers: {
        ...this.#headers,
        ...headers,
        ...(body !== undefined && { 'content-type': 'application/json' }),
      },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
    const text = await res.body.text();
    if (res.statusCode >= 200 && res.statusCode < 300) return JSON.parse(text) as T;
    let error: { code?: string; message?: string; details?: unknown } | undefined;
    try {
      error = (JSON.parse(text) as { error?: typeof error }).error;
    } catch {
      // not our JSON error body (a proxy's page, say): report the status with the start of the text
    }
    throw new ApiResponseError(
      res.statusCode,
      error?.code ?? 'HTTP_ERROR',
      error?.message ?? `${method} ${path} answered ${res.statusCode}: ${text.slice(0, 200)}`,
      error?.details,
    );
  }
}

function toQueryString(query: ListRunsQuery): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v === undefined) continue;
    for (const item of Array.isArray(v) ? v : [v]) params.append(k, String(item));
  }
  const s = params.toString();
  return s === '' ? '' : `?${s}`;
}
