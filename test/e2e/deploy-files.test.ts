import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import type { QueuesReport } from '../../src/monitoring/schemas.ts';
import type { Run } from '../../src/runs/schema.ts';
import { startApiService, type ApiHarness } from '../helpers/api.ts';
import { missingNames, parseSamples, type Sample } from '../helpers/promql.ts';
import { Receiver } from '../helpers/receiver.ts';
import { waitFor } from '../helpers/setup.ts';

const path = (p: string) => fileURLToPath(new URL(`../../${p}`, import.meta.url));
const DASHBOARD = path('deploy/grafana/runhook.json');
const ALERTS = path('deploy/prometheus/alerts.yml');
const ALERT_TESTS = path('deploy/prometheus/alerts.test.yml');

interface Target {
  refId: string;
  expr: string;
  legendFormat?: string;
  datasource?: { type: string; uid: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { h: number; w: number; x: number; y: number };
  datasource?: { type: string; uid: string };
  targets?: Target[];
}
interface Dashboard {
  uid: string;
  title: string;
  schemaVersion: number;
  templating: { list: Array<{ name: string; type: string; query: string }> };
  panels: Panel[];
}
interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard;
const rules = (parseYaml(readFileSync(ALERTS, 'utf8')) as { groups: Array<{ name: string; rules: Rule[] }> }).groups.flatMap((g) => g.rules);
const queries = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, ...t })));

/** `{{status}}` in a legend, `{{ $labels.queue }}` in an annotation. */
const legendLabels = (s = '') => [...s.matchAll(/\{\{\s*([a-zA-Z_]\w*)\s*\}\}/g)].map((m) => m[1]!);
const annotationLabels = (r: Rule) => Object.values(r.annotations ?? {}).flatMap((s) => [...s.matchAll(/\$labels\.([a-zA-Z_]\w*)/g)].map((m) => m[1]!));

/** promtool from Debian's `prometheus` package; the test fails (not skips) without it, saying how to get it. */
function promtool(args: string[]): string {
  const r = spawnSync('promtool', args, { encoding: 'utf8' });
  if (r.error) throw new Error('promtool is not installed: apt-get install -y prometheus (Debian/Ubuntu; it provides /usr/bin/promtool)');
  if (r.status !== 0) throw new Error(`promtool ${args.join(' ')} failed:\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

describe('deploy/grafana/runhook.json', () => {
  it('is a Grafana dashboard: panels on a 24-column grid without overlaps, every query on the datasource variable', () => {
    expect(dashboard).toMatchObject({ uid: 'runhook', title: 'runhook', schemaVersion: expect.any(Number) });
    expect(dashboard.templating.list).toContainEqual(expect.objectContaining({ name: 'datasource', type: 'datasource', query: 'prometheus' }));
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    const cells = new Map<string, string>();
    for (const p of dashboard.panels) {
      const { h, w, x, y } = p.gridPos;
      expect(Number.isInteger(h) && Number.isInteger(w) && x >= 0 && y >= 0 && x + w <= 24, `${p.title} gridPos`).toBe(true);
      for (let r = y; r < y + h; r++) {
        for (let c = x; c < x + w; c++) {
          const key = `${r}:${c}`;
          expect(cells.get(key), `${p.title} overlaps ${cells.get(key)}`).toBeUndefined();
          cells.set(key, p.title);
        }
      }
      if (p.type === 'row') continue;
      expect(p.datasource, p.title).toEqual({ type: 'prometheus', uid: '${datasource}' });
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      const refIds = p.targets!.map((t) => t.refId);
      expect(new Set(refIds).size, p.title).toBe(refIds.length);
      for (const t of p.targets!) expect(t.expr.trim(), p.title).not.toBe('');
    }
  });

  it('has the panels the operators asked for', () => {
    const exprs = queries.map((q) => q.expr).join('\n');
    for (const used of [
      'runhook_runs',
      'histogram_quantile(0.95, sum by (le) (rate(runhook_run_ttft_seconds_bucket',
      'histogram_quantile(0.95, sum by (le) (rate(runhook_run_duration_seconds_bucket',
      'runhook_queue_jobs{',
      'runhook_queue_oldest_waiting_seconds',
      'runhook_callback_attempts_total',
      'runhook_callback_duration_seconds_bucket',
      'sum by (processor, status) (rate(runhook_run_duration_seconds_count',
      'runhook_callback_breakers',
    ]) {
      expect(exprs).toContain(used);
    }
  });
});

describe('deploy/prometheus/alerts.yml', () => {
  it('passes promtool check rules, and its unit tests (alerts.test.yml) pass', () => {
    expect(promtool(['check', 'rules', ALERTS])).toContain('SUCCESS');
    promtool(['test', 'rules', ALERT_TESTS]);
  });

  it('alerts on callbacks given up, the oldest waiting run, the failure rate, Redis down and open breakers', () => {
    const byName = new Map(rules.map((r) => [r.alert, r]));
    expect(byName.get('RunhookCallbacksGivenUp')?.expr).toContain('runhook_callback_attempts_total{outcome="given_up"}');
    expect(byName.get('RunhookRunsWaitingTooLong')?.expr).toContain('runhook_queue_oldest_waiting_seconds');
    expect(byName.get('RunhookRunFailureRate')?.expr).toContain('status="failed"');
    expect(byName.get('RunhookRedisDown')?.expr).toContain('runhook_queue_state_up');
    expect(byName.get('RunhookCallbackBreakersOpen')?.expr).toContain('runhook_callback_breakers{state="open"}');
    for (const r of rules) expect(r.labels?.severity, r.alert).toMatch(/^(warning|critical)$/);
  });
});

describe('every metric and label the dashboard and the alerts use', () => {
  let api: ApiHarness;
  let ok: Receiver;
  let down: Receiver;
  let samples: Sample[];

  beforeAll(async () => {
    ok = await Receiver.start({ status: 200 });
    down = await Receiver.start({ status: 500 });
    // Two callback attempts: the first failure is `retrying`, the second `given_up`.
    api = await startApiService({ runAttempts: 1, callbackRetryDelaysMs: [0, 10] }, ['runs', 'callbacks']);
    const create = async (input: object, callbackUrl: string) =>
      (await (await api.call('/v1/runs', { method: 'POST', json: { agent_id: 'deploy', input, callback_url: callbackUrl } })).json()) as Run;
    await create({ text: 'hello there', ttft_ms: 5 }, ok.url('/hook'));
    await create({ text: 'x', fail: 'boom' }, down.url('/hook'));
    await waitFor(async () => {
      const r = (await (await api.call('/v1/queues')).json()) as QueuesReport;
      return r.callbacks_by_state.delivered === 1 && r.callbacks_by_state.given_up === 1;
    }, 20_000, 'one callback delivered and one given up');
    const res = await api.call('/metrics');
    expect(res.status).toBe(200);
    samples = parseSamples(await res.text());
  });
  afterAll(async () => {
    await api?.close();
    await ok?.close();
    await down?.close();
  });

  it('exists in a live scrape of /metrics', () => {
    const problems = [
      ...queries.flatMap((q) => missingNames(q.expr, samples, legendLabels(q.legendFormat)).map((p) => `dashboard "${q.panel}": ${p}`)),
      ...rules.flatMap((r) => missingNames(r.expr, samples, annotationLabels(r)).map((p) => `alert ${r.alert}: ${p}`)),
    ];
    expect(problems).toEqual([]);
  });

  it('would be caught if it did not (the check is not vacuous)', () => {
    // A histogram's family name is no series: its samples are …_bucket, …_sum and …_count.
    expect(missingNames('sum by (le) (rate(runhook_run_ttft_seconds[5m]))', samples)).toEqual([
      'metric runhook_run_ttft_seconds is not in the scrape',
      'grouping label le is on none of runhook_run_ttft_seconds',
    ]);
    expect(missingNames('max by (queue) (runhook_runs{status="done"})', samples)).toEqual([
      expect.stringContaining('runhook_runs{status="done"} is not in the scrape'),
      'grouping label queue is on none of runhook_runs',
    ]);
    expect(missingNames('sum(runhook_queue_jobs{state=~"waiting|queued"})', samples)).toEqual([expect.stringContaining('state="queued"')]);
    expect(missingNames('sum by (outcome) (rate(runhook_callback_attempts_total[5m]))', samples, ['status'])).toEqual([
      expect.stringContaining('label status is used'),
    ]);
    expect(missingNames('max(runhook_breakers_open)', samples)).toEqual(['metric runhook_breakers_open is not in the scrape']);
  });
});
