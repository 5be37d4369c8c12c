import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** One request as the receiver saw it: raw body bytes, so signatures can be checked on exactly what came. */
export interface ReceivedRequest {
  method: string;
  /** Path and query, e.g. `/hook?x=1`. */
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** Epoch ms when the request's body had fully arrived. */
  at: number;
  text(): string;
  json(): unknown;
}

/**
 * How to answer one request. Plain fields combine (`status` + `delayMs` + `body`); the special kinds
 * model the misbehaving receivers a callback sender must survive.
 */
export type Reply =
  | { status?: number; headers?: Record<string, string>; body?: string | Buffer | object; delayMs?: number }
  /** Never answer; the socket stays open until the client gives up or the receiver closes. */
  | { hang: true }
  /** Destroy the socket without a response (a reset/closed connection), optionally after a delay. */
  | { close: true; delayMs?: number }
  | { redirect: string; status?: 301 | 302 | 303 | 307 | 308 }
  /** A 200 with a body of this many bytes, streamed with backpressure (stops when the client leaves). */
  | { hugeBodyBytes: number; status?: number }
  /** Headers at once, then one small chunk every `dripMs`, `chunks` times (default: until the client leaves). */
  | { dripMs: number; chunks?: number; status?: number };

export type Responder = Reply | ((req: ReceivedRequest, index: number) => Reply);

/**
 * A real HTTP server on 127.0.0.1:0 that records every request and answers as told. `answer(a, b, c)`
 * answers the first request with `a`, the second with `b`, then `c` for every later one.
 */
export class Receiver {
  readonly requests: ReceivedRequest[] = [];
  /** Requests whose response the client abandoned before it was complete (e.g. a capped body read). */
  abandoned = 0;
  /** Requests arrived whose response is not over yet, and the most there ever were at once (resettable). */
  inFlight = 0;
  maxInFlight = 0;
  private responders: Responder[] = [{ status: 200 }];
  private readonly sockets = new Set<Socket>();
  private readonly waiters = new Set<() => void>();
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(...replies: Responder[]): Promise<Receiver> {
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const receiver = new Receiver(server, (server.address() as AddressInfo).port);
    if (replies.length > 0) receiver.answer(...replies);
    server.on('connection', (socket) => {
      receiver.sockets.add(socket);
      socket.on('close', () => receiver.sockets.delete(socket));
    });
    server.on('request', (req, res) => receiver.handle(req, res));
    return receiver;
  }

  /** Base URL, e.g. `http://127.0.0.1:40123`; `url('/hook')` appends a path. */
  url(path = '/'): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  answer(...replies: Responder[]): this {
    if (replies.length === 0) throw new Error('answer() needs at least one reply');
    this.responders = replies;
    return this;
  }

  /** Resolves once at least `n` requests have fully arrived. */
  async waitForRequests(n: number, timeoutMs = 15_000): Promise<ReceivedRequest[]> {
    if (this.requests.length >= n) return this.requests.slice(0, n);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`receiver got ${this.requests.length} of ${n} requests within ${timeoutMs} ms`));
      }, timeoutMs);
      const check = (): void => {
        if (this.requests.length < n) return;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(this.requests.slice(0, n));
      };
      this.waiters.add(check);
    });
  }

  /** Stops listening and destroys every open socket (hanging and dripping ones too). Safe to call twice. */
  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      for (const s of this.sockets) s.destroy();
    });
    return this.closing;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const record: ReceivedRequest = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body,
        at: Date.now(),
        text: () => body.toString('utf8'),
        json: () => JSON.parse(body.toString('utf8')) as unknown,
      };
      const index = this.requests.length;
      this.inFlight += 1;
      this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
      this.requests.push(record);
      for (const w of [...this.waiters]) w();
      const r = this.responders[Math.min(index, this.responders.length - 1)]!;
      const reply = typeof r === 'function' ? r(record, index) : r;
      res.on('close', () => {
        this.inFlight -= 1;
        if (!res.writableFinished) this.abandoned += 1;
      });
      this.reply(req, res, reply);
    });
  }

  private reply(req: IncomingMessage, res: ServerResponse, reply: Reply): void {
    if ('hang' in reply) return;
    if ('close' in reply) {
      later(reply.delayMs, () => req.socket.destroy());
      return;
    }
    if ('redirect' in reply) {
      res.writeHead(reply.status ?? 302, { location: reply.redirect, 'content-length': '0' }).end();
      return;
    }
    if ('hugeBodyBytes' in reply) {
      streamBody(res, reply.status ?? 200, reply.hugeBodyBytes);
      return;
    }
    if ('dripMs' in reply) {
      drip(res, reply.status ?? 200, reply.dripMs, reply.chunks);
      return;
    }
    later(reply.delayMs, () => {
      if (res.destroyed) return;
      const raw = reply.body;
      const body = raw === undefined ? '' : typeof raw === 'string' || Buffer.isBuffer(raw) ? raw : JSON.stringify(raw);
      const type = raw !== undefined && typeof raw === 'object' && !Buffer.isBuffer(raw) ? 'application/json' : 'text/plain';
      res.writeHead(reply.status ?? 200, { 'content-type': type, 'content-length': String(Buffer.byteLength(body)), ...reply.headers });
      res.end(body);
    });
  }
}

function later(ms: number | undefined, fn: () => void): void {
  if (ms === undefined || ms <= 0) fn();
  else setTimeout(fn, ms).unref();
}

function streamBody(res: ServerResponse, status: number, total: number): void {
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  res.writeHead(status, { 'content-type': 'application/octet-stream', 'content-length': String(total) });
  let sent = 0;
  const pump = (): void => {
    while (sent < total && !res.destroyed) {
      const n = Math.min(chunk.length, total - sent);
      sent += n;
      if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
        res.once('drain', pump);
        return;
      }
    }
    if (!res.destroyed) res.end();
  };
  pump();
}

function drip(res: ServerResponse, status: number, everyMs: number, chunks: number | undefined): void {
  res.writeHead(status, { 'content-type': 'text/plain' });
  res.flushHeaders();
  let n = 0;
  const timer = setInterval(() => {
    if (res.destroyed) return clearInterval(timer);
    res.write('.');
    n += 1;
    if (chunks !== undefined && n >= chunks) {
      clearInterval(timer);
      res.end();
    }
  }, everyMs);
  timer.unref();
  res.on('close', () => clearInterval(timer));
}
