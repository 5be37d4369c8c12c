/**
 * The API side of the sse_fanout scenario, in a process of its own so that its Redis connections and its
 * RSS are its own. argv: mode (`runhook` | `per-connection`), redis URL, key prefix.
 * - runhook: the real API (`startService` with the api part), whose live streams share one reader.
 * - per-connection: the design runhook had before, bare: every SSE client duplicates a connection and
 *   blocks on XREAD for its run's stream.
 * IPC: ready {url, pid}; {id, cmd: 'rss'} → {id, rss_mb}.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { withConfig } from '../../src/config.ts';
import { createLogger } from '../../src/logger.ts';
import { closeRedis, createRedis, ready } from '../../src/queue/connection.ts';
import { RunKeys } from '../../src/runs/keys.ts';
import { parseStreamEntry } from '../../src/runs/store.ts';
import { startService } from '../../src/service.ts';

const [mode, redisUrl, keyPrefix] = process.argv.slice(2) as [string, string, string];

type XReadReply = [key: string, entries: [id: string, fields: string[]][]][] | null;

async function perConnectionServer(): Promise<{ url: string }> {
  const shared = createRedis(redisUrl, 'api');
  await ready(shared);
  const keys = new RunKeys(keyPrefix);
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const m = /^\/v1\/runs\/([^/]+)\/stream/.exec(req.url ?? '');
    if (!m) {
      res.writeHead(404).end();
      return;
    }
    const key = keys.messages(m[1]!);
    const conn = shared.duplicate();
    conn.on('error', () => {});
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    res.flushHeaders();
    let open = true;
    res.on('close', () => {
      open = false;
      conn.disconnect();
    });
    void (async () => {
      // As runhook did: a fresh connection per client, ready before its first blocking read.
      await ready(conn).catch(() => {});
      let last = 0;
      while (open) {
        const reply = (await conn.xread('COUNT', 100, 'BLOCK', 5_000, 'STREAMS', key, `${last}-0`).catch(async () => {
          await new Promise((r) => setTimeout(r, 100));
          return null;
        })) as XReadReply;
        for (const [id, fields] of reply?.[0]?.[1] ?? []) {
          const e = parseStreamEntry(id, fields);
          last = e.seq_id;
          if (e.kind === 'message') res.write(`data: ${JSON.stringify({ ...e.message, seq_id: e.seq_id })}\n\n`);
        }
      }
    })();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  process.on('disconnect', () => {
    server.closeAllConnections();
    server.close();
    void closeRedis(shared).then(() => process.exit(0));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

async function runhookServer(): Promise<{ url: string }> {
  const config = withConfig({ redisUrl, keyPrefix, port: 0, host: '127.0.0.1', logLevel: 'silent', embeddedRedis: false });
  const service = await startService(config, createLogger('silent'), new Set(['api']));
  process.on('disconnect', () => {
    void service.close().then(() => process.exit(0));
  });
  return { url: service.api!.url };
}

process.on('message', (m: { id: number; cmd: string }) => {
  if (m.cmd === 'rss') process.send!({ id: m.id, rss_mb: process.memoryUsage().rss / 1_048_576 });
  else process.send!({ id: m.id, error: `unknown command ${m.cmd}` });
});

(mode === 'runhook' ? runhookServer() : perConnectionServer()).then(
  ({ url }) => process.send!({ type: 'ready', url, pid: process.pid }),
  (err: Error) => process.send!({ type: 'failed', error: err.message }),
);
