import type { QueuesReport, QueueState } from './schemas.ts';
import { QUEUE_NAMES } from './schemas.ts';

/** The terminal view of queue state (`runhook status`), laid out to fit 80 columns. */

export const WIDTH = 80;
const LABEL = 12;
const SPARK_CELLS = 30; // 60 minutes, two a cell
const BARS = '▁▂▃▄▅▆▇█';
/** Widths of the queue table's columns after the label: 12 + 62 columns. */
const COLS = [9, 8, 9, 6, 8, 9, 13];

/** Up to 9999 as is, then 12.3k, 4.5M: every count fits its column whatever it grows to. */
export function compact(n: number): string {
  if (n < 10_000) return String(n);
  if (n < 1_000_000) return `${(n / 1_000).toFixed(n < 100_000 ? 1 : 0)}k`;
  return `${(n / 1_000_000).toFixed(n < 100_000_000 ? 1 : 0)}M`;
}

export function duration(ms: number): string {
  const s = Math.floor(ms / 1000);
  if (s < 1) return `${Math.round(ms)}ms`;
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d${String(h % 24).padStart(2, '0')}h`;
}

/** Oldest minute on the left, the current one on the right; blank where nothing finished. */
export function sparkline(perMinute: number[], cells = SPARK_CELLS): string {
  const per = Math.ceil(perMinute.length / cells);
  const sums: number[] = [];
  for (let c = 0; c < cells; c++) sums.push(perMinute.slice(c * per, (c + 1) * per).reduce((a, b) => a + b, 0));
  sums.reverse();
  const max = Math.max(...sums);
  return sums.map((v) => (v === 0 ? ' ' : BARS[Math.min(BARS.length - 1, Math.floor((v / max) * (BARS.length - 1)))])).join('');
}

const row = (label: string, cells: string[], widths: number[]) =>
  label.padEnd(LABEL) + cells.map((c, i) => c.padStart(widths[i]!)).join('');

function queueRow(q: QueueState): string {
  const c = q.counts;
  const oldest = q.oldest_waiting ? duration(q.oldest_waiting.age_ms) : '-';
  return row(
    q.name,
    [c.waiting, c.active, c.delayed, c.prioritized].map(compact).concat(q.paused ? 'PAUSED' : 'no', compact(q.workers.length), oldest),
    COLS,
  );
}

function throughputRow(q: QueueState): string {
  const t = q.throughput;
  const rate = t.failure_rate === null ? '-' : `${(t.failure_rate * 100).toFixed(1)}%`;
  return q.name.padEnd(LABEL) + sparkline(t.completed_per_minute) + [compact(t.completed_last_hour), compact(t.failed_last_hour), rate].map((s, i) => s.padStart([8, 8, 8][i]!)).join('');
}

/** `label  a 1 · b 2 · …`, wrapped under the label where it would pass 80 columns. */
function pairs(label: string, o: Record<string, number>): string[] {
  const lines = [label.padEnd(LABEL)];
  for (const [k, v] of Object.entries(o)) {
    const item = `${k.replace('_', ' ')} ${compact(v)}`;
    const last = lines.length - 1;
    const bare = lines[last]!.length === LABEL;
    if (!bare && lines[last]!.length + 3 + item.length > WIDTH) lines.push(' '.repeat(LABEL) + item);
    else lines[last] += bare ? item : ` · ${item}`;
  }
  return lines;
}

/** Receiver hosts by breaker state, then the hosts that are not ok (at most 3), one a line. */
function hostLines(report: QueuesReport): string[] {
  const h = report.callback_hosts;
  if (!h) return [];
  const lines = pairs('HOSTS', { ok: h.ok, open: h.open, half_open: h.half_open });
  for (const x of h.not_ok.slice(0, 3)) {
    const next = x.next_probe_at ? ` · next probe ${x.next_probe_at.replace(/^.*T/, '').replace(/\.\d+Z$/, 'Z')}` : '';
    lines.push(`${' '.repeat(LABEL)}${x.state.replace('_', ' ')} ${x.host} · ${compact(x.consecutive_failures)} failures${next}`.slice(0, WIDTH));
  }
  return lines;
}

/** `label  a · b · …` of free text, wrapped like `pairs`; an item too long for a line is cut. */
function items(label: string, list: string[]): string[] {
  const lines = [label.padEnd(LABEL)];
  for (const raw of list) {
    const item = raw.length > WIDTH - LABEL ? `${raw.slice(0, WIDTH - LABEL - 1)}…` : raw;
    const last = lines.length - 1;
    const bare = lines[last]!.length === LABEL;
    if (!bare && lines[last]!.length + 3 + item.length > WIDTH) lines.push(' '.repeat(LABEL) + item);
    else lines[last] += bare ? item : ` · ${item}`;
  }
  return lines;
}

/** The routes in order, then the default: the order in which a run's processor is chosen. */
export function processorItems(p: NonNullable<QueuesReport['processors']>): string[] {
  return [...p.routes.map((r) => `${r.agent} → ${r.processor}`), `default ${p.default}`];
}

export function renderStatus(report: QueuesReport, o: { where: string; footer?: string }): string {
  const at = report.generated_at.replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
  const head = `runhook status · ${o.where}`;
  const lines = [
    head.length + at.length + 1 <= WIDTH ? head + at.padStart(WIDTH - head.length) : head.slice(0, WIDTH),
    '',
    row('QUEUE', ['WAITING', 'ACTIVE', 'DELAYED', 'PRIO', 'PAUSED', 'WORKERS', 'OLDEST WAIT'], COLS),
    ...QUEUE_NAMES.map((n) => queueRow(report.queues[n])),
    '',
    'LAST HOUR'.padEnd(LABEL) + 'completed/min, oldest → now'.padEnd(SPARK_CELLS) + ['DONE', 'FAILED', 'FAIL%'].map((s) => s.padStart(8)).join(''),
    ...QUEUE_NAMES.map((n) => throughputRow(report.queues[n])),
    '',
    ...pairs('RUNS', report.runs_by_status),
    ...pairs('CALLBACKS', report.callbacks_by_state),
    ...(report.processors ? items('PROCESSORS', processorItems(report.processors)) : []),
    ...hostLines(report),
    ...(report.flow ? pairs('HELD', { on_conversation: report.flow.waiting_on_conversation, on_limit: report.flow.waiting_on_limit }) : []),
    ...pairs('STREAMS', { watchers: report.streams.watchers, readers: report.streams.reader_connections, api_procs: report.streams.api_processes }),
    'JOBS KEPT'.padEnd(LABEL) +
      QUEUE_NAMES.map((n) => `${n} ✓${compact(report.queues[n].counts.completed)} ✗${compact(report.queues[n].counts.failed)}`).join(' · '),
  ];
  if (o.footer) lines.push('', o.footer);
  return `${lines.join('\n')}\n`;
}
