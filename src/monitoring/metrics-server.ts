import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../logger.ts';
import { CHALLENGE, KEY_NEEDED, keyMatcher } from './key-auth.ts';
import type { Metrics } from './metrics.ts';

export interface MetricsServer {
  readonly url: string;
  close(): Promise<void>;
}

/**
 * /metrics for a process without the API (`runhook worker`): the run and callback histograms are
 * observed where the work happens, so a worker-only process has metrics of its own to expose. Started
 * only when RUNHOOK_METRICS_PORT is set.
 */
export async function startMetricsServer(o: { host: string; port: number; keys: readonly string[]; metrics: Metrics; log: Logger }): Promise<MetricsServer> {
  const matches = keyMatcher(o.keys);
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' || path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: GET /metrics\n');
      return;
    }
    if (o.keys.length > 0 && !matches(req.headers.authorization)) {
      res.writeHead(401, { 'content-type': 'text/plain', 'www-authenticate': CHALLENGE }).end(`${KEY_NEEDED}\n`);
      return;
    }
    o.metrics.render().then(
      (text) => res.writeHead(200, { 'content-type': o.metrics.contentType }).end(text),
      (err: Error) => {
        o.log.warn({ err: err.message }, 'metrics not rendered');
        res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics not rendered\n');
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => resolve());
  });
  const { address, port, family } = server.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${family === 'IPv6' ? `[${address}]` : address}:${port}/metrics`,
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      })),
  };
}
