/** Small statistics over samples; every function copes with an empty list (null). */

export function sorted(xs: readonly number[]): number[] {
  return [...xs].sort((a, b) => a - b);
}

/** The q-quantile (0..1) by nearest rank, of samples already sorted ascending. */
export function quantileSorted(s: readonly number[], q: number): number | null {
  if (s.length === 0) return null;
  const rank = Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1));
  return s[rank]!;
}

export function quantile(xs: readonly number[], q: number): number | null {
  return quantileSorted(sorted(xs), q);
}

export function median(xs: readonly (number | null | undefined)[]): number | null {
  const s = sorted(xs.filter((x): x is number => typeof x === 'number' && Number.isFinite(x)));
  if (s.length === 0) return null;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export interface Percentiles {
  n: number;
  p50: number | null;
  p90: number | null;
  p99: number | null;
  max: number | null;
  mean: number | null;
}

export function percentiles(xs: readonly number[]): Percentiles {
  const s = sorted(xs);
  return {
    n: s.length,
    p50: quantileSorted(s, 0.5),
    p90: quantileSorted(s, 0.9),
    p99: quantileSorted(s, 0.99),
    max: s.length ? s[s.length - 1]! : null,
    mean: s.length ? s.reduce((a, b) => a + b, 0) / s.length : null,
  };
}

export function ratio(a: number | null, b: number | null): number | null {
  if (a === null || b === null || b === 0) return null;
  return a / b;
}

/** Rounds for display and JSON: 3 significant digits, integers kept whole. */
export function round(x: number | null | undefined, digits = 3): number | null {
  if (x === null || x === undefined || !Number.isFinite(x)) return null;
  if (Math.abs(x) >= 10 ** digits) return Math.round(x);
  return Number(x.toPrecision(digits));
}
