/** Epoch µs from the monotonic clock, the way src/clock.ts stamps runs (comparable across processes). */
export function nowUs(): number {
  return (performance.timeOrigin + performance.now()) * 1000;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class StallError extends Error {
  constructor(what: string, reached: number, target: number, stallMs: number) {
    super(`${what}: stuck at ${reached}/${target} for ${Math.round(stallMs / 1000)} s`);
    this.name = 'StallError';
  }
}

/**
 * Polls `read` until it reaches `target`; resolves with performance.now() at the poll that saw it. A count
 * that stops growing for `stallMs` is a failure, not a long wait.
 */
export async function waitForCount(
  what: string,
  read: () => Promise<number>,
  target: number,
  { pollMs = 10, stallMs = 20_000 } = {},
): Promise<number> {
  let last = -1;
  let lastChange = performance.now();
  for (;;) {
    const n = await read();
    const now = performance.now();
    if (n >= target) return now;
    if (n !== last) {
      last = n;
      lastChange = now;
    } else if (now - lastChange > stallMs) {
      throw new StallError(what, n, target, stallMs);
    }
    await sleep(pollMs);
  }
}

/**
 * Calls `task(i)` for i in [0, n) with at most `width` in flight; stops taking new ones once `deadline`
 * (performance.now() ms) has passed. Resolves with how many were done.
 */
export async function lanes(n: number, width: number, task: (i: number) => Promise<unknown>, deadline = Infinity): Promise<number> {
  let next = 0;
  let done = 0;
  const lane = async () => {
    while (next < n && performance.now() < deadline) {
      const i = next++;
      await task(i);
      done++;
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, n) }, lane));
  return done;
}
