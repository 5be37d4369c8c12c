import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';

/**
 * A user's service for the `http` processor, over real HTTP on 127.0.0.1: it verifies each request's
 * Standard Webhooks signature with the `standardwebhooks` package (401 when it does not verify) and
 * answers as the run's input says (`ServiceScript`), so one service serves every scenario of a test file.
 */
export interface ServiceScript {
  /** How to answer: NDJSON lines, SSE events or one JSON object. Default ndjson. */
  mode?: 'ndjson' | 'sse' | 'json';
  /** The answer's words, one assistant_message chunk each (sharing one message id). */
  words?: string[];
  /** Wait between two objects of a stream. */
  delay_ms?: number;
  /** Attempts up to this one answer `status` instead (e.g. 500 once). */
  fail_attempts?: number;
  /** The status of a failing attempt (default 500). */
  status?: number;
  /** Attempts up to `fail_attempts` stream two messages, then end cleanly or break the connection, with no stop reason. */
  cut?: 'end' | 'destroy';
  /** Attempts up to `fail_attempts` stream one message, then say nothing for this long. */
  silence_ms?: number;
  stop_reason?: string;
}

export interface ServiceRequest {
  body: { run: { id: string; agent_id: string; processor: string | null }; input: ServiceScript & Record<string, unknown>; attempt: number };
  headers: IncomingMessage['headers'];
  verified: boolean;
  /** Resolves with the time (performance.now()) the client closed the connection before the answer ended. */
  closed: Promise<number>;
}

/** What a successful attempt streams, so tests can compare the run's record with it. */
export function answerOf(script: ServiceScript, attempt: number): unknown[] {
  const words = script.words ?? ['hello ', 'world'];
  const id = `message-http-${attempt}`;
  return [
    { message_type: 'reasoning_message', id: `${id}-r`, reasoning: `attempt ${attempt}` },
    ...words.map((w) => ({ message_type: 'assistant_message', id, content: w })),
    { step: { model: `svc-${attempt}`, provider_name: 'my-service', prompt_tokens: 7, completion_tokens: words.length, stop_reason: 'end_turn' } },
    { usage: { prompt_tokens: 7, completion_tokens: words.length, total_tokens: 7 + words.length } },
    { stop_reason: script.stop_reason ?? 'end_turn' },
  ];
}

export class HttpService {
  readonly requests: ServiceRequest[] = [];
  readonly #server: Server;
  readonly #hook: Webhook;

  private constructor(server: Server, secret: string) {
    this.#server = server;
    this.#hook = new Webhook(secret);
  }

  static async start(secret: string): Promise<HttpService> {
    const holder: { svc?: HttpService } = {};
    const server = createServer((req, res) => void holder.svc!.#handle(req, res));
    const svc = (holder.svc = new HttpService(server, secret));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return svc;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/run`;
  }

  requestsOf(runId: string): ServiceRequest[] {
    return this.requests.filter((r) => r.body.run.id === runId);
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((r) => this.#server.close(() => r()));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    let verified = true;
    try {
      this.#hook.verify(raw, req.headers as Record<string, string>);
    } catch {
      verified = false;
    }
    let ended = false;
    const closed = new Promise<number>((resolve) => res.on('close', () => !ended && resolve(performance.now())));
    const r: ServiceRequest = { body: JSON.parse(raw) as ServiceRequest['body'], headers: req.headers, verified, closed };
    this.requests.push(r);
    if (!verified) {
      ended = true;
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"bad signature"}');
      return;
    }
    const s = r.body.input;
    const failing = r.body.attempt <= (s.fail_attempts ?? 0);
    const objects = answerOf(s, r.body.attempt);
    const mode = s.mode ?? 'ndjson';
    if (failing && !s.cut && s.silence_ms === undefined) {
      ended = true;
      res.writeHead(s.status ?? 500, { 'content-type': 'text/plain' }).end(`scripted failure of attempt ${r.body.attempt}`);
      return;
    }
    if (mode === 'json') {
      ended = true;
      const messages = objects.filter((o) => 'message_type' in (o as object));
      res.writeHead(200, { 'content-type': 'application/json' }).end(
        JSON.stringify({ messages, stop_reason: s.stop_reason ?? 'end_turn', usage: (objects.at(-2) as { usage: unknown }).usage, steps: [(objects.at(-3) as { step: unknown }).step] }),
      );
      return;
    }
    res.writeHead(200, { 'content-type': mode === 'sse' ? 'text/event-stream' : 'application/x-ndjson' });
    const write = (o: unknown) => res.write(mode === 'sse' ? `event: message\ndata: ${JSON.stringify(o)}\n\n` : `${JSON.stringify(o)}\n`);
    const pause = (ms: number) => new Promise((done) => setTimeout(done, ms));
    if (mode === 'sse') res.write(': keep-alive\n\n');
    for (const [i, o] of objects.entries()) {
      if (res.destroyed) return;
      if (failing && s.silence_ms !== undefined && i === 1) await pause(s.silence_ms);
      if (failing && s.cut && i === 2) {
        ended = true;
        if (s.cut === 'destroy') res.destroy();
        else res.end();
        return;
      }
      if (i > 0 && s.delay_ms) await pause(s.delay_ms);
      write(o);
    }
    ended = true;
    res.end();
  }
}
