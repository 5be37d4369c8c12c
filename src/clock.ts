/**
 * Epoch time in microseconds, from the monotonic clock anchored at the process's time origin. Every
 * process on one machine agrees on it (unlike process.hrtime, which is per process), so a duration
 * started in the API process and ended in a worker is meaningful. Microseconds are what a double holds
 * exactly at epoch scale; durations in ns are these times 1000.
 */
export function nowMicros(): number {
  return Math.round((performance.timeOrigin + performance.now()) * 1000);
}

export function microsToIso(us: number): string {
  return new Date(Math.floor(us / 1000)).toISOString();
}

export function isoToMicros(iso: string): number | undefined {
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? undefined : ms * 1000;
}
