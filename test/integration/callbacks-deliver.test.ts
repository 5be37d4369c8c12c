import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Deliverer } from '../../src/callbacks/deliver.ts';
import { Receiver } from '../helpers/receiver.ts';
import { waitFor } from '../helpers/setup.ts';

const TIMEOUT_MS = 300;
const body = JSON.stringify({ run_id: 'run-x', status: 'completed' });
const headers = { 'webhook-id': 'msg_run-x', 'webhook-timestamp': '1' };

describe('one callback attempt over real HTTP', () => {
  const deliverer = new Deliverer({ timeoutMs: TIMEOUT_MS, allowPrivate: true });
  const receivers: Receiver[] = [];
  const receiver = async (...replies: Parameters<typeof Receiver.start>) => {
    const r = await Receiver.start(...replies);
    receivers.push(r);
    return r;
  };
  afterEach(async () => {
    await Promise.all(receivers.splice(0).map((r) => r.close()));
  });
  afterAll(() => deliverer.close());

  it('succeeds on 2xx and posts JSON with the webhook headers', async () => {
    const r = await receiver({ status: 204 });
    const result = await deliverer.deliver(r.url('/hook?x=1'), body, headers);
    expect(result).toMatchObject({ statusCode: 204, error: null, final: false });
    const [req] = r.requests;
    expect(req).toMatchObject({ method: 'POST', url: '/hook?x=1' });
    expect(req!.headers['content-type']).toBe('application/json');
    expect(req!.headers['webhook-id']).toBe('msg_run-x');
    expect(req!.text()).toBe(body);
  });

  it('fails on 500 with a short message', async () => {
    const r = await receiver({ status: 500, body: 'boom' });
    expect(await deliverer.deliver(r.url(), body, headers)).toMatchObject({ statusCode: 500, error: 'HTTP 500', final: false });
  });

  it('does not follow a redirect', async () => {
    const elsewhere = await receiver({ status: 200 });
    const r = await receiver({ redirect: elsewhere.url('/internal'), status: 302 });
    expect(await deliverer.deliver(r.url(), body, headers)).toMatchObject({ statusCode: 302, error: 'redirect refused' });
    expect(elsewhere.requests).toHaveLength(0);
  });

  it('marks 410 Gone as final', async () => {
    const r = await receiver({ status: 410 });
    expect(await deliverer.deliver(r.url(), body, headers)).toMatchObject({ statusCode: 410, error: 'HTTP 410', final: true });
  });

  it('gives up on a receiver that never answers after the timeout', async () => {
    const r = await receiver({ hang: true });
    const result = await deliverer.deliver(r.url(), body, headers);
    expect(result).toMatchObject({ statusCode: null, error: `timeout after ${TIMEOUT_MS} ms` });
    expect(r.requests).toHaveLength(1);
  });

  it('reports a connection closed without an answer', async () => {
    const r = await receiver({ close: true });
    const result = await deliverer.deliver(r.url(), body, headers);
    expect(result.statusCode).toBeNull();
    expect(result.error).toMatch(/^connection (closed|reset)$/);
  });

  it('reads a 50 MB answer only in part and cuts the connection', async () => {
    const r = await receiver({ hugeBodyBytes: 50 * 1024 * 1024 });
    expect(await deliverer.deliver(r.url(), body, headers)).toMatchObject({ statusCode: 200, error: null });
    await waitFor(() => r.abandoned >= 1, 5_000, 'the receiver to see its answer abandoned');
  });

  it('takes the status of an endless slow body and stops reading it', async () => {
    const r = await receiver({ dripMs: 20 });
    expect(await deliverer.deliver(r.url(), body, headers)).toMatchObject({ statusCode: 200, error: null });
    await waitFor(() => r.abandoned >= 1, 5_000, 'the receiver to see its answer abandoned');
  });

  it('reports a refused connection', async () => {
    const r = await Receiver.start();
    const url = r.url();
    await r.close();
    expect(await deliverer.deliver(url, body, headers)).toMatchObject({ statusCode: null, error: 'connection refused' });
  });

  it('reports a name that does not resolve', async () => {
    const result = await deliverer.deliver('http://no-such-host.invalid/hook', body, headers);
    expect(result.statusCode).toBeNull();
    expect(result.error).toMatch(/^DNS lookup failed for no-such-host\.invalid/);
  });

  it('refuses a URL that is not http(s) as final', async () => {
    expect(await deliverer.deliver('ftp://example.com/x', body, headers)).toMatchObject({ error: 'invalid callback url', final: true });
  });
});

describe('the SSRF guard at send time', () => {
  let r: Receiver;
  const guarded = new Deliverer({ timeoutMs: TIMEOUT_MS, allowPrivate: false });
  beforeAll(async () => {
    r = await Receiver.start({ status: 200 });
  });
  afterAll(async () => {
    await guarded.close();
    await r.close();
  });

  it.each([
    ['loopback', (port: number) => `http://127.0.0.1:${port}/`],
    ['a private address', () => 'http://10.0.0.1/'],
    ['the metadata address', () => 'http://169.254.169.254/latest/meta-data/'],
    ['IPv6 loopback', (port: number) => `http://[::1]:${port}/`],
    ['IPv4-mapped IPv6 loopback', (port: number) => `http://[::ffff:127.0.0.1]:${port}/`],
    ['a name that resolves to loopback', (port: number) => `http://localhost:${port}/`],
    ['a decimal-encoded loopback', (port: number) => `http://2130706433:${port}/`],
  ])('refuses %s', async (_what, url) => {
    const result = await guarded.deliver(url(r.port), body, headers);
    expect(result).toMatchObject({ statusCode: null, error: 'blocked address' });
    expect(r.requests).toHaveLength(0);
  });

  it('lets the same loopback receiver through when its range is on the allow list', async () => {
    const allowed = new Deliverer({ timeoutMs: TIMEOUT_MS, allowPrivate: ['127.0.0.0/8'] });
    try {
      expect(await allowed.deliver(r.url(), body, headers)).toMatchObject({ statusCode: 200, error: null });
    } finally {
      await allowed.close();
    }
  });
});
