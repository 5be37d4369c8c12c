import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Run } from '../../src/runs/schema.ts';
import { startApiService, type ApiHarness } from '../helpers/api.ts';
import { Receiver } from '../helpers/receiver.ts';
import { waitFor } from '../helpers/setup.ts';

const CHROMIUM = '/usr/bin/chromium';
// As the machine notes say Chromium must run here: no GPU, no QUIC, and none of its background
// connections (refused on a closed network). Playwright adds --headless, --no-sandbox where needed and a
// fresh temporary --user-data-dir of its own.
const FLAGS = ['--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const OUT = fileURLToPath(new URL('../../test-output/', import.meta.url));
const KEY = 'dashboard-key-0123456789';
const ERROR_TEXT = 'dashboard test: the model exploded';

describe('the dashboard in a real browser', () => {
  let api: ApiHarness;
  let receiver: Receiver;
  let browser: Browser;
  let failed: Run;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`Chromium is not installed at ${CHROMIUM}: run \`apt-get install -y chromium\` (.ci/run does it when missing)`);
    }
    mkdirSync(OUT, { recursive: true });
    receiver = await Receiver.start({ status: 200 });
    api = await startApiService({ apiKeys: [KEY], runAttempts: 1 }, ['runs', 'callbacks']);
    const create = async (input: object) => {
      const res = await api.call('/v1/runs', {
        method: 'POST',
        headers: { authorization: `Bearer ${KEY}` },
        json: { agent_id: 'agent-demo', input, callback_url: receiver.url('/hook') },
      });
      return (await res.json()) as Run;
    };
    for (const text of ['summarise the report', 'draft a reply', 'translate the notes']) await create({ text });
    failed = await create({ text: 'plan the trip', fail: ERROR_TEXT });
    await waitFor(async () => {
      const r = await (await api.call('/v1/queues', { headers: { authorization: `Bearer ${KEY}` } })).json();
      const report = r as { queues: Record<string, { counts: Record<string, number> }>; callbacks_by_state: { delivered: number } };
      const q = report.queues;
      // First callback attempts are made at once, without a queue job: count deliveries, not jobs.
      return q.runs!.counts.completed === 3 && q.runs!.counts.failed === 1 && report.callbacks_by_state.delivered === 4;
    }, 20_000, 'runs and their callbacks to finish');
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
  });
  afterAll(async () => {
    await browser?.close();
    await api?.close();
    await receiver?.close();
  });

  it('asks for the API key, the browser way', async () => {
    const res = await fetch(`${api.url}/admin/queues`);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Basic realm="runhook"/);
    // Headless Chromium, challenged with no credentials to give, gives up the page; with wrong ones it
    // shows the 401.
    const bare = await browser.newContext();
    await expect((await bare.newPage()).goto(`${api.url}/admin/queues`)).rejects.toThrow(/ERR_INVALID_AUTH_CREDENTIALS/);
    await bare.close();
    const wrong = await browser.newContext({ httpCredentials: { username: 'runhook', password: 'not-the-key' } });
    expect((await (await wrong.newPage()).goto(`${api.url}/admin/queues`))?.status()).toBe(401);
    await wrong.close();
  });

  it('shows both queues and a failed run with its error', async () => {
    const context = await browser.newContext({
      httpCredentials: { username: 'runhook', password: KEY },
      viewport: { width: 1280, height: 620 },
    });
    const page = await context.newPage();
    try {
      const res = await page.goto(`${api.url}/admin/queues`);
      expect(res?.status()).toBe(200);
      // Each queue's card links to it by name; fails (times out) if the page shows no queue.
      const main = page.locator('main');
      await main.getByRole('link', { name: 'runs', exact: true }).waitFor({ state: 'visible', timeout: 15_000 });
      await main.getByRole('link', { name: 'callbacks', exact: true }).waitFor({ state: 'visible', timeout: 15_000 });
      await page.screenshot({ path: `${OUT}dashboard-overview.png` });

      await page.goto(`${api.url}/admin/queues/queue/runs?status=failed`);
      await main.getByText(failed.id).first().waitFor({ state: 'visible', timeout: 15_000 });
      await main.getByText(ERROR_TEXT).first().waitFor({ state: 'visible', timeout: 15_000 });
      expect(await main.getByText(ERROR_TEXT).count()).toBeGreaterThan(0);
      // The README's picture (docs/dashboard.png is a copy): both queues, and a failed run's error.
      await page.screenshot({ path: `${OUT}dashboard.png` });
      expect(existsSync(`${OUT}dashboard.png`)).toBe(true);
    } finally {
      await context.close();
    }
  });
});
