/**
 * The HTTP load generator of the API scenario, in its own process so that it never shares an event loop
 * with the server it measures. IPC: {id, cmd: 'run', url, connections, duration, warmup, body} →
 * {id, result} with autocannon's figures.
 */
import autocannon from 'autocannon';

process.on('message', (m: { id: number; cmd: string; url: string; connections: number; duration: number; warmup: number; body: string }) => {
  if (m.cmd !== 'run') {
    process.send!({ id: m.id, error: `unknown command ${m.cmd}` });
    return;
  }
  autocannon(
    {
      url: m.url,
      method: 'POST',
      connections: m.connections,
      pipelining: 1,
      duration: m.duration,
      headers: { 'content-type': 'application/json' },
      body: m.body,
      ...(m.warmup > 0 && { warmup: { connections: m.connections, duration: m.warmup } }),
    },
    (err, r) => {
      if (err) {
        process.send!({ id: m.id, error: err.message });
        return;
      }
      process.send!({
        id: m.id,
        result: {
          requests_per_s: r.requests.average,
          total: r.requests.total,
          duration_s: r.duration,
          ok_2xx: r['2xx'],
          non2xx: r.non2xx,
          errors: r.errors,
          timeouts: r.timeouts,
          latency_ms: { p50: r.latency.p50, p90: r.latency.p90, p99: r.latency.p99, max: r.latency.max, mean: r.latency.average },
        },
      });
    },
  );
});
process.on('disconnect', () => process.exit(0));
process.send!({ type: 'ready' });
