import type { Config } from '../../src/config.ts';
import { childEnv, startRunhook, type RunhookProcess } from '../helpers/processes.ts';

/** A whsec_ secret for the fault suite: callbacks carry webhook-id, so the receiver can dedupe. */
export const FAULT_SECRET = `whsec_${Buffer.from('runhook-fault-suite-secret-32byt').toString('base64')}`;

/**
 * Env for worker processes in the fault suite: locks short enough that a killed worker's jobs are
 * recovered in a second or two, and the reconciler and outbox sweep running every second.
 */
export function faultEnv(config: Config, extra: Record<string, string> = {}): Record<string, string> {
  return childEnv(config, {
    LOG_LEVEL: 'info',
    RUNHOOK_WEBHOOK_SECRET: FAULT_SECRET,
    RUNHOOK_CALLBACK_ALLOW_PRIVATE: 'true',
    RUNHOOK_CALLBACK_RETRY_DELAYS: '0,100,200,400,800,1000,1000,1000,1000,1000',
    RUNHOOK_CALLBACK_TIMEOUT_MS: '2000',
    RUNHOOK_LOCK_DURATION_MS: '1500',
    RUNHOOK_STALLED_INTERVAL_MS: '1000',
    RUNHOOK_MAX_STALLED_COUNT: '20',
    RUNHOOK_MAINTENANCE_INTERVAL_MS: '1000',
    RUNHOOK_CREATED_GRACE_MS: '1000',
    RUNHOOK_RUN_BACKOFF_MS: '20',
    RUNHOOK_CONCURRENCY: '32',
    ...extra,
  });
}

/** A pool of `runhook worker` processes of one kind that can be killed and replaced. */
export class WorkerPool {
  readonly procs: RunhookProcess[] = [];
  kills = 0;

  constructor(
    private readonly args: string[],
    private readonly env: Record<string, string>,
    private readonly readyText: string,
  ) {}

  async start(count: number): Promise<void> {
    await Promise.all(Array.from({ length: count }, () => this.spawn()));
  }

  private async spawn(): Promise<RunhookProcess> {
    const p = startRunhook(this.args, this.env);
    this.procs.push(p);
    await p.waitForOutput(this.readyText);
    return p;
  }

  /** SIGKILLs one live process at random and starts its replacement. */
  async killOneAndReplace(): Promise<void> {
    const live = this.procs.filter((p) => p.child.exitCode === null && p.child.signalCode === null);
    const victim = live[Math.floor(Math.random() * live.length)];
    if (!victim) return;
    await victim.kill('SIGKILL');
    this.kills++;
    await this.spawn();
  }

  async stop(): Promise<void> {
    await Promise.all(this.procs.map((p) => p.kill('SIGTERM')));
  }
}

export const randomBetween = (lo: number, hi: number) => lo + Math.random() * (hi - lo);
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
