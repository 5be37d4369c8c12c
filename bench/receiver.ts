/**
 * The callback receiver of the benchmark, run as its own process (forked by receiver-handle.ts) so that
 * receiving costs runhook's process nothing, as with a real receiver. It checks each signature as a real
 * receiver would, drops duplicates by webhook-id, and records when each callback's body had fully
 * arrived, in epoch µs from the monotonic clock (performance.timeOrigin + performance.now()).
 *
 * IPC: {id, cmd: 'reset' | 'count' | 'arrivals' | 'clock'} → {id, ...answer}.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { verifyCallback } from '../src/callbacks/verify.ts';

const secret = process.argv[2];
const nowUs = () => (performance.timeOrigin + performance.now()) * 1000;

let arrivals = new Map<string, number>();
let requests = 0;
let duplicates = 0;
let badSignatures = 0;

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const at = nowUs();
    requests++;
    const body = Buffer.concat(chunks);
    let id = req.headers['webhook-id'];
    if (Array.isArray(id)) id = id[0];
    if (secret) {
      try {
        verifyCallback(secret, req.headers, body);
      } catch {
        badSignatures++;
        res.writeHead(400).end();
        return;
      }
    }
    if (!id) id = `anon-${requests}`;
    if (arrivals.has(id)) duplicates++;
    else arrivals.set(id, at);
    res.writeHead(200, { 'content-length': '0' }).end();
  });
});
server.keepAliveTimeout = 60_000;

server.listen(0, '127.0.0.1', () => {
  process.send!({ type: 'ready', port: (server.address() as AddressInfo).port });
});

process.on('message', (m: { id: number; cmd: string }) => {
  switch (m.cmd) {
    case 'reset':
      arrivals = new Map();
      requests = duplicates = badSignatures = 0;
      process.send!({ id: m.id });
      break;
    case 'count':
      process.send!({ id: m.id, count: arrivals.size, requests, duplicates, badSignatures });
      break;
    case 'arrivals':
      process.send!({ id: m.id, arrivals: [...arrivals] });
      break;
    case 'clock':
      process.send!({ id: m.id, now: nowUs() });
      break;
    default:
      process.send!({ id: m.id, error: `unknown command ${m.cmd}` });
  }
});
process.on('disconnect', () => process.exit(0));
