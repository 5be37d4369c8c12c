/**
 * The clients of the sse_fanout scenario: thousands of SSE connections in one process of their own.
 * Each message's content is the epoch time (ms) it was emitted at, so delivery latency is read on arrival.
 * IPC: {id, cmd: 'open', urls} → {id} once every response has its headers;
 *      {id, cmd: 'wait', each} → {id, result} once every watcher has `each` messages;
 *      {id, cmd: 'close'} → {id}.
 */
import { Agent, request, type ClientRequest } from 'node:http';

const now = () => performance.timeOrigin + performance.now();

interface Watcher {
  req: ClientRequest;
  received: number;
  lastSeq: number;
  repeats: number;
  gaps: number;
}

const agent = new Agent({ keepAlive: false, maxSockets: Infinity });
let watchers: Watcher[] = [];
let latencies: number[] = [];

function open(url: string): Promise<Watcher> {
  return new Promise((resolve, reject) => {
    const w: Watcher = { req: undefined as unknown as ClientRequest, received: 0, lastSeq: 0, repeats: 0, gaps: 0 };
    w.req = request(url, { agent, headers: { accept: 'text/event-stream' } }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`${url}: ${res.statusCode}`));
      res.setEncoding('utf8');
      let buf = '';
      res.on('data', (chunk: string) => {
        buf += chunk;
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const event = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const data = event.split('\n').find((l) => l.startsWith('data: '));
          if (!data || data === 'data: [DONE]') continue;
          const m = JSON.parse(data.slice(6)) as { message_type?: string; content?: string; seq_id?: number };
          if (m.message_type !== 'assistant_message' || typeof m.seq_id !== 'number') continue;
          if (m.seq_id <= w.lastSeq) w.repeats++;
          else {
            if (m.seq_id > w.lastSeq + 1) w.gaps++;
            w.lastSeq = m.seq_id;
            w.received++;
            latencies.push(now() - Number(m.content));
          }
        }
      });
      res.on('error', () => {});
      resolve(w);
    });
    w.req.on('error', reject);
    w.req.end();
  });
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? null;

async function waitEach(each: number): Promise<Record<string, unknown>> {
  for (;;) {
    if (watchers.every((w) => w.received >= each)) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const sorted = [...latencies].sort((a, b) => a - b);
  const result = {
    watchers: watchers.length,
    received: watchers.reduce((n, w) => n + w.received, 0),
    repeats: watchers.reduce((n, w) => n + w.repeats, 0),
    gaps: watchers.reduce((n, w) => n + w.gaps, 0),
    p50_ms: pct(sorted, 50),
    p99_ms: pct(sorted, 99),
    max_ms: sorted.at(-1) ?? null,
  };
  latencies = [];
  return result;
}

process.on('message', (m: { id: number; cmd: string; urls?: string[]; each?: number }) => {
  const answer = (p: Promise<Record<string, unknown>>) =>
    p.then(
      (r) => process.send!({ id: m.id, ...r }),
      (err: Error) => process.send!({ id: m.id, error: err.message }),
    );
  if (m.cmd === 'open') {
    // In waves, so the server's accept queue is not the thing measured.
    answer(
      (async () => {
        const urls = m.urls!;
        for (let i = 0; i < urls.length; i += 200) watchers.push(...(await Promise.all(urls.slice(i, i + 200).map(open))));
        return {};
      })(),
    );
  } else if (m.cmd === 'wait') answer(waitEach(m.each!).then((result) => ({ result })));
  else if (m.cmd === 'close') {
    for (const w of watchers) w.req.destroy();
    watchers = [];
    latencies = [];
    answer(Promise.resolve({}));
  } else process.send!({ id: m.id, error: `unknown command ${m.cmd}` });
});
process.on('disconnect', () => process.exit(0));
process.send!({ type: 'ready' });
