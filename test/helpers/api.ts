import type { Config } from '../../src/config.ts';
import { startService, type Part, type Service } from '../../src/service.ts';
import { silentLog, testConfig } from './setup.ts';

export interface ApiHarness {
  service: Service;
  /** Base URL of the listening API, e.g. `http://127.0.0.1:40123`. */
  url: string;
  config: Config;
  /** fetch() against the API: `call('/v1/runs', { method: 'POST', json: {...} })`. */
  call(path: string, init?: CallInit): Promise<Response>;
  close(): Promise<void>;
}

export interface CallInit extends Omit<RequestInit, 'body'> {
  /** Sent as a JSON body with content-type application/json. */
  json?: unknown;
  body?: RequestInit['body'];
}

/**
 * A service with the API listening on 127.0.0.1 on a free port, on the suite's Redis under a fresh
 * prefix; `parts` adds workers (default: the API alone, so runs stay `created`).
 */
export async function startApiService(overrides: Partial<Config> = {}, parts: Part[] = ['api']): Promise<ApiHarness> {
  const config = testConfig({ host: '127.0.0.1', port: 0, ...overrides });
  const service = await startService(config, silentLog, new Set<Part>(['api', ...parts]));
  const url = service.api!.url;
  return {
    service,
    url,
    config,
    call: (path, init = {}) => {
      const { json, headers, ...rest } = init;
      const h = new Headers(headers);
      if (json !== undefined) h.set('content-type', 'application/json');
      return fetch(`${url}${path}`, { ...rest, headers: h, ...(json !== undefined && { body: JSON.stringify(json) }) });
    },
    close: () => service.close(),
  };
}

/** One Server-Sent Event as a client parses it; `comment` events are the `: ...` keep-alive lines. */
export interface SseEvent {
  id?: string;
  event?: string;
  data: string;
  comment?: boolean;
}

/** Parses an SSE response body event by event, until the server ends it (or the caller stops). */
export async function* sseEvents(res: Response): AsyncGenerator<SseEvent> {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buf += value;
      for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const ev: SseEvent = { data: '' };
        const data: string[] = [];
        for (const line of block.split('\n')) {
          if (line.startsWith(':')) {
            ev.comment = true;
            data.push(line.slice(1).trim());
            continue;
          }
          const colon = line.indexOf(':');
          const field = colon < 0 ? line : line.slice(0, colon);
          const v = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
          if (field === 'id') ev.id = v;
          else if (field === 'event') ev.event = v;
          else if (field === 'data') data.push(v);
        }
        ev.data = data.join('\n');
        yield ev;
      }
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
}

/** Every event of an SSE response, read to its end. */
export async function readSse(res: Response): Promise<SseEvent[]> {
  const out: SseEvent[] = [];
  for await (const e of sseEvents(res)) out.push(e);
  return out;
}

/** The JSON payloads of the data events (not [DONE], comments or named events). */
export function sseData(events: SseEvent[]): Record<string, unknown>[] {
  return events.filter((e) => !e.comment && !e.event && e.data !== '[DONE]').map((e) => JSON.parse(e.data) as Record<string, unknown>);
}

/** A response's JSON body, typed by the caller. */
export const json = async <T>(res: Response): Promise<T> => (await res.json()) as T;

/** runhook's error body. */
export interface ErrorAnswer {
  error: { code: string; message: string; details?: unknown };
}
