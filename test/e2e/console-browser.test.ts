import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Run } from '../../src/runs/schema.ts';
import { startApiService, type ApiHarness } from '../helpers/api.ts';
import { Receiver } from '../helpers/receiver.ts';
import { waitFor } from '../helpers/setup.ts';

const CHROMIUM = '/usr/bin/chromium';
// As the dashboard test: no GPU, no QUIC, none of Chromium's background connections.
const FLAGS = ['--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const OUT = fileURLToPath(new URL('../../test-output/', import.meta.url));
const KEY = 'console-key-0123456789';
const AUTH = { authorization: `Bearer ${KEY}` };
const LONG = Array.from({ length: 400 }, (_, i) => `word${i}`).join(' ');

describe('the runs console in a real browser', () => {
  let api: ApiHarness;
  let receiver: Receiver;
  let browser: Browser;
  let page: Page;
  const runs: Record<'created' | 'running' | 'completed' | 'failed' | 'cancelled', Run> = {} as never;

  const call = async <T>(path: string, init: { method?: string; json?: unknown } = {}): Promise<T> => {
    const res = await api.call(path, { ...init, headers: AUTH });
    return (await res.json()) as T;
  };
  const create = (body: object) => call<Run>('/v1/runs', { method: 'POST', json: { callback_url: receiver.url('/hook'), ...body } });
  const status = async (id: string) => (await call<Run>(`/v1/runs/${id}`)).status;
  const row = (id: string) => page.locator(`#runs tr[data-run-id="${id}"]`);

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`Chromium is not installed at ${CHROMIUM}: run \`apt-get install -y chromium\` (.ci/run does it when missing)`);
    }
    mkdirSync(OUT, { recursive: true });
    receiver = await Receiver.start({ status: 200 });
    api = await startApiService({ apiKeys: [KEY], runAttempts: 1 }, ['runs', 'callbacks']);
    runs.completed = await create({ agent_id: 'agent-console', input: { text: 'the quarterly report, summarised in one line' } });
    runs.failed = await create({ agent_id: 'agent-console', input: { text: 'plan the trip', fail: 'the model exploded' } });
    // Waiting for an hour: stays created.
    const later = new Date(Date.now() + 3_600_000).toISOString();
    runs.created = await create({ agent_id: 'agent-console', input: { text: 'later' }, run_at: later });
    runs.cancelled = await create({ agent_id: 'agent-console', input: { text: 'never mind' }, run_at: later });
    await call(`/v1/runs/${runs.cancelled.id}/cancel`, { method: 'POST' });
    // 400 tokens 250 ms apart (100 s): running for the whole test, until it is cancelled from its page.
    runs.running = await create({ agent_id: 'agent-busy', input: { text: LONG, token_ms: 250 } });
    await waitFor(async () => (await status(runs.completed.id)) === 'completed' && (await status(runs.failed.id)) === 'failed' && (await status(runs.running.id)) === 'running', 15_000, 'the runs to reach their statuses');
    await waitFor(async () => (await call<Run>(`/v1/runs/${runs.completed.id}`)).callback_status_code === 200, 10_000, 'the callback');
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
    page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
  });
  afterAll(async () => {
    await browser?.close();
    await api?.close();
    await receiver?.close();
  });

  it('asks for a key, refuses a wrong one, and signs in with the keyboard', async () => {
    await page.goto(`${api.url}/console`);
    const key = page.getByLabel('API key');
    await key.waitFor({ state: 'visible' });
    // The field has the focus: type and press Enter.
    await page.keyboard.type('not-the-key');
    await page.keyboard.press('Enter');
    await page.getByRole('alert').filter({ hasText: 'refused' }).waitFor();
    await key.fill(KEY);
    await key.press('Enter');
    await page.getByRole('heading', { name: 'Runs', level: 1 }).waitFor();
    expect(await page.evaluate("sessionStorage.getItem('runhook.apiKey')")).toBe(KEY);
  });

  it('lists a created, a running, a completed, a failed and a cancelled run with their statuses, and counts by status', async () => {
    for (const [s, r] of Object.entries(runs)) {
      await row(r.id).waitFor();
      expect(await row(r.id).getAttribute('data-status'), s).toBe(s);
      expect(await row(r.id).locator('.status').textContent()).toBe(s);
    }
    const counts = page.getByRole('list', { name: 'Runs by status' });
    await expect.poll(() => counts.locator('li').filter({ hasText: 'completed' }).locator('strong').textContent()).toBe('1');
    await page.screenshot({ path: `${OUT}console-list.png` });
  });

  it('shows a run created while the page is open, without a reload', async () => {
    const fresh = await create({ agent_id: 'agent-late', input: { text: 'hello from later' } });
    await row(fresh.id).waitFor({ timeout: 10_000 });
    await expect.poll(() => row(fresh.id).getAttribute('data-status'), { timeout: 10_000 }).toBe('completed');
  });

  it('shows a receiver whose callbacks fail, with its breaker state', async () => {
    // Nothing listens on port 9 of this machine: every attempt is refused.
    await create({ agent_id: 'agent-dead-hook', input: { text: 'tell nobody' }, callback_url: 'http://127.0.0.1:9/hook' });
    const host = page.locator('#hosts tr[data-host="127.0.0.1:9"]');
    await host.waitFor({ timeout: 15_000 });
    await expect.poll(async () => Number(await host.locator('td').nth(2).textContent()), { timeout: 15_000 }).toBeGreaterThan(0);
    expect(await page.getByRole('table', { name: /Receivers with recent failures/ }).isVisible()).toBe(true);
  });

  it('filters by agent and by status', async () => {
    await page.getByLabel('Agent', { exact: true }).fill('agent-console');
    await page.getByLabel('Status', { exact: true }).selectOption('failed');
    await page.getByRole('button', { name: 'Apply' }).click();
    await expect.poll(() => page.locator('#runs tbody tr').count()).toBe(1);
    await row(runs.failed.id).waitFor();
    expect(page.url()).toContain('agent_id=agent-console');

    await page.getByLabel('Status', { exact: true }).selectOption('');
    await page.getByRole('button', { name: 'Apply' }).click();
    await expect.poll(() => page.locator('#runs tbody tr').count()).toBe(4);
    expect(await row(runs.running.id).count()).toBe(0);

    await page.getByRole('button', { name: 'Clear' }).click();
    await row(runs.running.id).waitFor();
  });

  it('opens a completed run: its timeline, transcript, steps and callback attempts', async () => {
    await row(runs.completed.id).getByRole('link').click();
    await page.waitForURL(`**/console/runs/${runs.completed.id}`);
    await page.getByRole('heading', { level: 1, name: new RegExp(runs.completed.id) }).waitFor();
    const transcript = page.locator('#transcript');
    await transcript.getByText('the quarterly report, summarised in one line').waitFor();
    const timeline = page.getByRole('list', { name: 'Status timeline' });
    await timeline.getByText('queue wait').waitFor();
    await timeline.getByText('ttft').waitFor();
    await timeline.getByText('total').waitFor();
    expect(await page.locator('#steps tbody tr').count()).toBeGreaterThan(0);
    const attempts = page.locator('#callback-attempts tbody tr');
    await attempts.first().waitFor();
    expect(await attempts.first().textContent()).toContain('200');
    expect(await page.getByRole('button', { name: 'Cancel run' }).isDisabled()).toBe(true);
    await page.screenshot({ path: `${OUT}console-run.png`, fullPage: true });
  });

  it('replays it and lands on the new run, which completes', async () => {
    await page.getByRole('button', { name: 'Replay' }).click();
    await page.waitForURL((u) => /\/console\/runs\/run-/.test(u.pathname) && !u.pathname.endsWith(runs.completed.id));
    const newId = new URL(page.url()).pathname.split('/').at(-1)!;
    await expect.poll(() => page.locator('[data-status]').first().getAttribute('data-status'), { timeout: 15_000 }).toBe('completed');
    await page.locator('#transcript').getByText('the quarterly report, summarised in one line').waitFor();
    await page.getByRole('link', { name: runs.completed.id }).waitFor();
    const replay = await call<Run>(`/v1/runs/${newId}`);
    expect(replay).toMatchObject({ status: 'completed', replay_of: runs.completed.id, agent_id: 'agent-console' });
  });

  it('cancels a running run from its page', async () => {
    await page.goto(`${api.url}/console/runs/${runs.running.id}`);
    const cancel = page.getByRole('button', { name: 'Cancel run' });
    await cancel.waitFor();
    await expect.poll(() => cancel.isEnabled()).toBe(true);
    await cancel.click();
    await expect.poll(() => page.locator('[data-status]').first().getAttribute('data-status'), { timeout: 10_000 }).toBe('cancelled');
    expect(await status(runs.running.id)).toBe('cancelled');
  });

  it('fits a 390 px wide window without horizontal scroll', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    for (const path of [`/console/runs/${runs.completed.id}`, '/console']) {
      await page.goto(`${api.url}${path}`);
      await page.getByRole('heading', { level: 1 }).first().waitFor();
      await page.locator(path === '/console' ? '#runs tbody tr' : '#callback-attempts tbody tr').first().waitFor();
      // A string, evaluated in the page (this file is compiled without the DOM's types).
      const { scroll, client } = (await page.evaluate('({ scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth })')) as {
        scroll: number;
        client: number;
      };
      expect(scroll, path).toBeLessThanOrEqual(client);
      if (path !== '/console') await page.screenshot({ path: `${OUT}console-mobile.png`, fullPage: true });
    }
  });
});
