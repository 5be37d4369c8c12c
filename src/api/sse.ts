import { once } from 'node:events';
import type { ServerResponse } from 'node:http';

/**
 * Server-Sent Events on a raw response, in the shape Letta's SDKs parse: each event is one `data:` line
 * of JSON (events with an `event:` name are skipped by them), `id:` carries the seq id so a browser's
 * EventSource resumes with Last-Event-ID, and `data: [DONE]` ends the stream.
 */
export class SseWriter {
  #closed = false;

  constructor(private readonly res: ServerResponse) {
    res.on('close', () => {
      this.#closed = true;
    });
  }

  /** Sends the headers now, so the client knows the stream is open before the first event. */
  open(extraHeaders: Record<string, string> = {}): void {
    this.res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      // nginx buffers responses unless told otherwise, which would hold events back.
      'x-accel-buffering': 'no',
      ...extraHeaders,
    });
    this.res.flushHeaders();
  }

  get closed(): boolean {
    return this.#closed || this.res.destroyed;
  }

  /** One event's text, for callers that send the same event to many clients (render once, write to each). */
  static render(data: unknown, id?: number): string {
    return `${id === undefined ? '' : `id: ${id}\n`}data: ${JSON.stringify(data)}\n\n`;
  }

  event(data: unknown, id?: number): Promise<void> {
    return this.#write(SseWriter.render(data, id));
  }

  /** An event rendered with `render`. */
  rendered(text: string): Promise<void> {
    return this.#write(text);
  }

  /** A comment line: keeps proxies from timing the connection out, invisible to every SSE parser. */
  comment(text: string): Promise<void> {
    return this.#write(`: ${text}\n\n`);
  }

  /** A named `error` event (the Letta SDK raises it as an APIError), for failures after the headers went. */
  error(body: unknown): Promise<void> {
    return this.#write(`event: error\ndata: ${JSON.stringify(body)}\n\n`);
  }

  async done(): Promise<void> {
    await this.#write('data: [DONE]\n\n');
    this.end();
  }

  /**
   * Ends the response. `closeConnection` also closes the socket once the end is flushed: when the
   * server is shutting down, an idle keep-alive connection left behind would hold close() until the
   * client dropped it.
   */
  end({ closeConnection = false } = {}): void {
    const socket = this.res.socket;
    if (!this.res.writableEnded) this.res.end();
    if (closeConnection && socket) {
      if (this.res.writableFinished) socket.destroySoon();
      else this.res.once('finish', () => socket.destroySoon());
    }
  }

  /** Waits for the socket to drain when its buffer is full, so a slow reader slows the stream, not memory. */
  async #write(chunk: string): Promise<void> {
    if (this.closed) return;
    if (!this.res.write(chunk)) {
      await Promise.race([once(this.res, 'drain'), once(this.res, 'close')]);
    }
  }
}
