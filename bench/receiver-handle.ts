import { BenchChild } from './child.ts';

export interface ReceiverCount {
  count: number;
  requests: number;
  duplicates: number;
  badSignatures: number;
}

/** The parent's side of receiver.ts. */
export class ReceiverHandle {
  private constructor(
    private readonly child: BenchChild,
    readonly port: number,
  ) {}

  static async start(secret: string): Promise<ReceiverHandle> {
    const child = await BenchChild.start('./receiver.ts', [secret]);
    return new ReceiverHandle(child, Number(child.ready.port));
  }

  url(path = '/hook'): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  async reset(): Promise<void> {
    await this.child.request('reset');
  }

  async count(): Promise<ReceiverCount> {
    const { count, requests, duplicates, badSignatures } = await this.child.request<ReceiverCount>('count');
    return { count, requests, duplicates, badSignatures };
  }

  /** webhook-id → arrival, in the receiver's epoch µs. */
  async arrivals(): Promise<Map<string, number>> {
    const r = await this.child.request<{ arrivals: [string, number][] }>('arrivals');
    return new Map(r.arrivals);
  }

  /**
   * How far the receiver's clock is ahead of this process's (µs), NTP-style: of many ping-pongs, the one
   * with the shortest round trip, assuming the answer was stamped halfway. Its error is at most half that
   * round trip, which is returned with it.
   */
  async clockOffset(samples = 200): Promise<{ offsetUs: number; errorUs: number }> {
    const nowUs = () => (performance.timeOrigin + performance.now()) * 1000;
    let best = { rtt: Infinity, offset: 0 };
    for (let i = 0; i < samples; i++) {
      const t0 = nowUs();
      const { now } = await this.child.request<{ now: number }>('clock');
      const t1 = nowUs();
      if (t1 - t0 < best.rtt) best = { rtt: t1 - t0, offset: now - (t0 + t1) / 2 };
    }
    return { offsetUs: best.offset, errorUs: best.rtt / 2 };
  }

  stop(): Promise<void> {
    return this.child.stop();
  }
}
