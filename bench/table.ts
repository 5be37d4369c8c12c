import type { ScenarioResult } from './scenario.ts';

function fmt(x: unknown): string {
  if (typeof x !== 'number') return '-';
  if (Math.abs(x) >= 100) return Math.round(x).toLocaleString('en-US');
  return String(Number(x.toPrecision(3)));
}

/** The medians of every scenario, and the extra rows some have (latency percentiles, RSS). */
export function printTable(scenarios: Partial<Record<string, ScenarioResult>>): void {
  const rows: string[][] = [['scenario', 'runhook', 'bare', 'runhook/bare', 'unit', 'target', 'met']];
  for (const [name, s] of Object.entries(scenarios)) {
    if (!s) continue;
    if (s.error) {
      rows.push([name, 'FAILED', '', '', s.unit, s.target ?? '', s.error.slice(0, 60)]);
      continue;
    }
    rows.push([name, fmt(s.runhook), fmt(s.bare), fmt(s.ratio), s.unit, s.target ?? '', s.met === undefined || s.met === null ? '' : s.met ? 'yes' : 'NO']);
    for (const extra of (s.table_rows as string[][] | undefined) ?? []) rows.push(extra);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => (i >= 1 && i <= 3 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  console.log(`\n${line(rows[0]!)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}`);
  for (const r of rows.slice(1)) console.log(line(r));
}
