/**
 * A loose reading of PromQL, enough to ask "does every series this expression selects exist?": the
 * metric selectors with their label matchers, and the labels it groups by (`by (…)`, `on (…)`, …).
 * Range brackets (`[5m]`, `[$__rate_interval]`), numbers and operators are skipped. It is not a
 * parser: promtool checks the syntax of the rules; this checks the names against a live scrape.
 */

export interface Matcher {
  label: string;
  op: '=' | '!=' | '=~' | '!~';
  value: string;
}

export interface Selector {
  metric: string;
  matchers: Matcher[];
}

export interface ExprNames {
  selectors: Selector[];
  /** Labels named in by/without/on/ignoring/group_left/group_right lists. */
  grouping: string[];
}

const LABEL_LISTS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right']);
const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset']);
const FUNCTIONS = new Set([
  // aggregations
  'sum', 'min', 'max', 'avg', 'count', 'group', 'stddev', 'stdvar', 'topk', 'bottomk', 'quantile', 'count_values',
  // functions
  'rate', 'irate', 'increase', 'delta', 'idelta', 'deriv', 'predict_linear', 'resets', 'changes', 'histogram_quantile',
  'abs', 'absent', 'absent_over_time', 'ceil', 'floor', 'round', 'clamp', 'clamp_min', 'clamp_max', 'sqrt', 'exp', 'ln',
  'log2', 'log10', 'scalar', 'vector', 'time', 'timestamp', 'sort', 'sort_desc', 'label_replace', 'label_join',
  'avg_over_time', 'min_over_time', 'max_over_time', 'sum_over_time', 'count_over_time', 'last_over_time', 'quantile_over_time',
]);

const IDENT = /[a-zA-Z_:][a-zA-Z0-9_:]*/y;
const MATCHER = /\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*,?/y;
const NUMBER = /[0-9.]+(?:e[+-]?[0-9]+)?[a-z]*/iy;

export function exprNames(expr: string): ExprNames {
  const selectors: Selector[] = [];
  const grouping: string[] = [];
  let i = 0;
  let last: Selector | undefined;
  const fail = (why: string): never => {
    throw new Error(`${why} at ${i} in: ${expr}`);
  };
  const skipSpace = () => {
    while (i < expr.length && /\s/.test(expr[i]!)) i++;
  };
  while (i < expr.length) {
    const c = expr[i]!;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === '[') {
      const end = expr.indexOf(']', i);
      if (end < 0) fail('unclosed [');
      i = end + 1;
      continue;
    }
    if (c === '{') {
      if (!last) fail('a label matcher without a metric name');
      i++;
      for (;;) {
        skipSpace();
        if (expr[i] === '}') break;
        MATCHER.lastIndex = i;
        const m = MATCHER.exec(expr) ?? fail('not a label matcher');
        last!.matchers.push({ label: m[1]!, op: m[2] as Matcher['op'], value: m[3]! });
        i = MATCHER.lastIndex;
      }
      i++;
      last = undefined;
      continue;
    }
    if (/[0-9.]/.test(c)) {
      NUMBER.lastIndex = i;
      NUMBER.exec(expr);
      i = NUMBER.lastIndex;
      last = undefined;
      continue;
    }
    IDENT.lastIndex = i;
    const id = IDENT.exec(expr);
    if (!id) {
      i++; // an operator, a parenthesis, a comma
      last = undefined;
      continue;
    }
    i = IDENT.lastIndex;
    const name = id[0];
    skipSpace();
    if (expr[i] === '(' && LABEL_LISTS.has(name)) {
      const end = expr.indexOf(')', i);
      if (end < 0) fail('unclosed label list');
      grouping.push(...expr.slice(i + 1, end).split(',').map((s) => s.trim()).filter(Boolean));
      i = end + 1;
      last = undefined;
    } else if (expr[i] === '(' || (FUNCTIONS.has(name) && /^(by|without)\s*\(/.test(expr.slice(i)))) {
      // A function call, or an aggregation with its grouping first: `sum by (le) (…)`.
      if (!FUNCTIONS.has(name)) fail(`unknown function ${name}`);
      last = undefined;
    } else if (KEYWORDS.has(name)) {
      last = undefined;
    } else {
      last = { metric: name, matchers: [] };
      selectors.push(last);
    }
  }
  return { selectors, grouping };
}

export interface Sample {
  name: string;
  labels: Record<string, string>;
}

/** The samples of a Prometheus text exposition (comments skipped). */
export function parseSamples(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? \S+$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, k, v] of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[k!] = v!;
    out.push({ name: m[1]!, labels });
  }
  return out;
}

/** Labels Prometheus itself attaches to every scraped series (the target's), not in the exposition. */
export const TARGET_LABELS = new Set(['instance', 'job']);

/**
 * What in `expr` the scrape does not have: a metric with no sample, a label no sample of that metric
 * carries, a matched value no sample has (each word of an `a|b|c` regex must exist), a grouping label
 * no selected metric carries, a label used by `uses` (legend, annotations) the result cannot have.
 */
export function missingNames(expr: string, samples: readonly Sample[], uses: readonly string[] = []): string[] {
  const { selectors, grouping } = exprNames(expr);
  const problems: string[] = [];
  if (selectors.length === 0) problems.push(`no metric in ${expr}`);
  const labelsOf = (metric: string) => new Set(samples.filter((s) => s.name === metric).flatMap((s) => Object.keys(s.labels)));
  for (const { metric, matchers } of selectors) {
    const of = samples.filter((s) => s.name === metric);
    if (of.length === 0) {
      problems.push(`metric ${metric} is not in the scrape`);
      continue;
    }
    for (const { label, op, value } of matchers) {
      const values = new Set(of.map((s) => s.labels[label]).filter((v): v is string => v !== undefined));
      if (values.size === 0 && !TARGET_LABELS.has(label)) {
        problems.push(`${metric} has no label ${label}`);
        continue;
      }
      if (TARGET_LABELS.has(label) || op.startsWith('!')) continue;
      // An exact value, or each word of a plain alternation (`waiting|active`), must be one a sample has.
      const words = op === '=' ? [value] : /^\w+(\|\w+)*$/.test(value) ? value.split('|') : undefined;
      if (words) {
        for (const w of words) if (!values.has(w)) problems.push(`${metric}{${label}="${w}"} is not in the scrape (it has ${[...values].join(', ')})`);
      } else if (![...values].some((v) => new RegExp(`^(?:${value})$`).test(v))) {
        problems.push(`no value of ${metric}'s ${label} matches ${value}`);
      }
    }
  }
  const available = new Set([...TARGET_LABELS, ...selectors.flatMap((s) => [...labelsOf(s.metric)])]);
  for (const label of grouping) if (!available.has(label)) problems.push(`grouping label ${label} is on none of ${selectors.map((s) => s.metric).join(', ')}`);
  // After an aggregation only its grouping labels remain; without one, the selected series keep theirs.
  const result = grouping.length > 0 ? new Set([...grouping, ...TARGET_LABELS]) : available;
  for (const label of uses) if (!result.has(label)) problems.push(`label ${label} is used but ${expr} does not keep it`);
  return problems;
}
