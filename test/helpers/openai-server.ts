import { randomUUID } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** Token counts as the API reports them in the last chunk of a stream with `include_usage`. */
export interface StreamUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export interface ScriptedToolCall {
  id: string;
  name: string;
  /** The arguments JSON, in the pieces it streams in. */
  arguments: string[];
}

/**
 * How the server answers one request. A non-2xx `status` answers an error body at once (as the API
 * does for 400/429/5xx); otherwise a chunked SSE stream of chat.completion.chunk objects, in the order
 * the API sends them: role, reasoning, content, tool calls, the finish chunk, the usage chunk, [DONE].
 */
export interface StreamScript {
  status?: number;
  headers?: Record<string, string>;
  /** The error body of a non-2xx answer; default `{error: {message, type, code}}` as the API answers. */
  errorBody?: unknown;
  /** Wait after the response headers, before the first data chunk. */
  firstChunkDelayMs?: number;
  /** Wait between two data chunks (0: all written at once). */
  chunkDelayMs?: number;
  model?: string;
  content?: string[];
  reasoning?: string[];
  /** Which delta field carries reasoning: DeepSeek/vLLM's `reasoning_content` or OpenRouter/Ollama's `reasoning`. */
  reasoningField?: 'reasoning_content' | 'reasoning';
  toolCalls?: ScriptedToolCall[];
  /** Default: `tool_calls` when there are tool calls, else `stop`. */
  finishReason?: 'stop' | 'length' | 'tool_calls' | 'content_filter';
  /** null: no usage chunk. Default: prompt 7, completion = number of content/reasoning pieces. */
  usage?: StreamUsage | null;
  /** Destroy the socket after this many data chunks (a broken connection mid-stream). */
  breakAfter?: number;
  /** Send this many data chunks, then nothing more until the client goes away. */
  hangAfter?: number;
}

export type Scripter = StreamScript | ((req: OpenAIRequest, index: number) => StreamScript);

/** One request as the server saw it. */
export interface OpenAIRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: Record<string, unknown>;
  /** Epoch ms (fractional) when the request body had arrived. */
  receivedAt: number;
  /** Epoch ms when the first data chunk was written; undefined if none was. */
  firstChunkAt?: number;
  /** The `data:` payloads written, in order (JSON objects, then the literal `[DONE]`). */
  sent: Array<Record<string, unknown> | '[DONE]'>;
  /** Whether the whole answer was written. */
  finished: boolean;
  /** The client closed the connection before the answer was complete. */
  clientClosed: boolean;
}

const nowMs = () => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The usage a script reports unless it names one. */
export function defaultUsage(s: StreamScript): StreamUsage {
  const completion = (s.content?.length ?? 0) + (s.reasoning?.length ?? 0);
  return { prompt_tokens: 7, completion_tokens: completion, total_tokens: 7 + completion };
}

/**
 * An OpenAI-compatible `POST /v1/chat/completions` on 127.0.0.1:0 that streams what each script says,
 * byte for byte in the API's SSE framing (`data: {...}\n\n`, every chunk with `"usage": null` when usage
 * was asked for, a last chunk with empty `choices` and the usage, then `data: [DONE]\n\n`). It records
 * every request and whether the client hung up early. `answer(a, b, c)` answers the first request
 * with a, the second with b, then c for every later one.
 */
export class OpenAIServer {
  readonly requests: OpenAIRequest[] = [];
  private scripts: Scripter[] = [{ content: ['Hello', ' world'] }];
  private readonly sockets = new Set<Socket>();
  private readonly waiters = new Set<() => void>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(...scripts: Scripter[]): Promise<OpenAIServer> {
    const server = createServer();
    server.keepAliveTimeout = 60_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const s = new OpenAIServer(server, (server.address() as AddressInfo).port);
    if (scripts.length > 0) s.answer(...scripts);
    server.on('connection', (socket) => {
      s.sockets.add(socket);
      socket.on('close', () => s.sockets.delete(socket));
    });
    server.on('request', (req, res) => void s.handle(req, res));
    return s;
  }

  /** The base URL a client is pointed at, `http://127.0.0.1:PORT/v1`. */
  get baseURL(): string {
    return `http://127.0.0.1:${this.port}/v1`;
  }

  answer(...scripts: Scripter[]): this {
    if (scripts.length === 0) throw new Error('answer() needs at least one script');
    this.scripts = scripts;
    return this;
  }

  reset(): void {
    this.requests.length = 0;
  }

  /** Resolves once `check()` holds; re-checked on every request event (arrival, chunk, close). */
  until(check: () => boolean, timeoutMs = 15_000, what = 'the server to see it'): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const waiter = () => {
        if (!check()) return;
        clearTimeout(timer);
        this.waiters.delete(waiter);
        resolve();
      };
      this.waiters.add(waiter);
    });
  }

  /** Resolves once the client has closed the connection of request `index` before its end. */
  clientClosed(index: number, timeoutMs?: number): Promise<void> {
    return this.until(() => this.requests[index]?.clientClosed === true, timeoutMs, `the client to close request ${index}`);
  }

  private notify(): void {
    for (const w of [...this.waiters]) w();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    let body: Record<string, unknown> = {};
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
    } catch {
      // recorded as an empty body; the script decides the answer
    }
    const index = this.requests.length;
    const rec: OpenAIRequest = {
      method: req.method ?? '',
      url: req.url ?? '',
      headers: req.headers,
      body,
      receivedAt: nowMs(),
      sent: [],
      finished: false,
      clientClosed: false,
    };
    this.requests.push(rec);
    res.on('close', () => {
      if (!rec.finished) rec.clientClosed = true;
      this.notify();
    });
    this.notify();
    const scripter = this.scripts[Math.min(index, this.scripts.length - 1)]!;
    const script = typeof scripter === 'function' ? scripter(rec, index) : scripter;
    if (req.method !== 'POST' || !req.url?.endsWith('/chat/completions')) {
      rec.finished = true;
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: 'not found' } }));
      return;
    }
    const status = script.status ?? 200;
    if (status < 200 || status >= 300) {
      const errorBody = script.errorBody ?? {
        error: { message: `scripted ${status}`, type: status === 429 ? 'requests' : 'invalid_request_error', param: null, code: null },
      };
      rec.finished = true;
      res.writeHead(status, { 'content-type': 'application/json', ...script.headers }).end(JSON.stringify(errorBody));
      return;
    }
    await this.stream(rec, res, script, body);
  }

  /** The chunk objects of one script, in the order the API sends them. */
  static chunks(script: StreamScript, body: Record<string, unknown> = {}): Array<Record<string, unknown>> {
    const id = `chatcmpl-${randomUUID()}`;
    const created = Math.floor(Date.now() / 1000);
    const model = script.model ?? (typeof body.model === 'string' ? body.model : 'test-model');
    const withUsage = (body.stream_options as { include_usage?: boolean } | undefined)?.include_usage === true;
    const chunk = (delta: Record<string, unknown>, finish: string | null = null): Record<string, unknown> => ({
      id,
      object: 'chat.completion.chunk',
      created,
      model,
      system_fingerprint: 'fp_test',
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
      ...(withUsage && { usage: null }),
    });
    const out = [chunk({ role: 'assistant', content: '', refusal: null })];
    const field = script.reasoningField ?? 'reasoning_content';
    for (const r of script.reasoning ?? []) out.push(chunk({ [field]: r }));
    for (const c of script.content ?? []) out.push(chunk({ content: c }));
    for (const [i, tc] of (script.toolCalls ?? []).entries()) {
      out.push(chunk({ tool_calls: [{ index: i, id: tc.id, type: 'function', function: { name: tc.name, arguments: '' } }] }));
      for (const a of tc.arguments) out.push(chunk({ tool_calls: [{ index: i, function: { arguments: a } }] }));
    }
    const finish = script.finishReason ?? (script.toolCalls?.length ? 'tool_calls' : 'stop');
    out.push(chunk({}, finish));
    const usage = script.usage === undefined ? defaultUsage(script) : script.usage;
    if (withUsage && usage) out.push({ id, object: 'chat.completion.chunk', created, model, system_fingerprint: 'fp_test', choices: [], usage });
    return out;
  }

  private async stream(rec: OpenAIRequest, res: ServerResponse, script: StreamScript, body: Record<string, unknown>): Promise<void> {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', ...script.headers });
    res.flushHeaders();
    const payloads: Array<Record<string, unknown> | '[DONE]'> = [...OpenAIServer.chunks(script, body), '[DONE]'];
    if (script.firstChunkDelayMs) await sleep(script.firstChunkDelayMs);
    const gap = script.chunkDelayMs ?? 0;
    // With no gap every chunk goes out in one write burst, as a fast server's would (not when the script
    // breaks the connection: what was written must reach the client before the socket goes).
    const cork = gap === 0 && script.breakAfter === undefined;
    if (cork) res.socket?.cork();
    let written: Promise<void> = Promise.resolve();
    for (const [n, p] of payloads.entries()) {
      if (rec.clientClosed || res.destroyed) break;
      if (script.breakAfter !== undefined && n >= script.breakAfter) {
        // What was written reaches the client first; then the socket goes without the stream's end.
        await written;
        res.socket?.destroy();
        this.notify();
        return;
      }
      if (script.hangAfter !== undefined && n >= script.hangAfter) {
        if (cork) res.socket?.uncork();
        this.notify();
        return; // the connection stays open until the client goes away (or close())
      }
      if (n > 0 && gap > 0) await sleep(gap);
      if (rec.clientClosed || res.destroyed) break;
      written = new Promise<void>((r) => res.write(`data: ${p === '[DONE]' ? p : JSON.stringify(p)}\n\n`, () => r()));
      rec.firstChunkAt ??= nowMs();
      rec.sent.push(p);
      if (gap > 0) this.notify();
    }
    if (cork) res.socket?.uncork();
    if (!rec.clientClosed && !res.destroyed) {
      rec.finished = true;
      res.end();
    }
    this.notify();
  }

  /** The content pieces (non-empty) of request `index`'s stream, as they were sent. */
  sentContent(index: number): string[] {
    return deltas(this.requests[index]?.sent ?? [], 'content');
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

/** The non-empty values of one delta field across sent chunks. */
export function deltas(sent: ReadonlyArray<Record<string, unknown> | '[DONE]'>, field: string): string[] {
  const out: string[] = [];
  for (const p of sent) {
    if (p === '[DONE]') continue;
    const choices = p.choices as Array<{ delta: Record<string, unknown> }>;
    const v = choices[0]?.delta[field];
    if (typeof v === 'string' && v !== '') out.push(v);
  }
  return out;
}
