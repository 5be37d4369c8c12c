import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/**
 * A TypeScript child process of the benchmark (run through tsx), with request/answer over IPC. The child
 * sends {type: 'ready', ...} once it can take requests and answers each {id, cmd, ...} with {id, ...}.
 */
export class BenchChild {
  #nextId = 1;
  readonly #pending = new Map<number, { resolve: (v: Record<string, unknown>) => void; reject: (e: Error) => void }>();
  #exited: Error | undefined;

  private constructor(
    readonly child: ChildProcess,
    readonly ready: Record<string, unknown>,
  ) {
    child.on('message', (m: Record<string, unknown>) => {
      if (typeof m.id !== 'number') return;
      const p = this.#pending.get(m.id);
      if (!p) return;
      this.#pending.delete(m.id);
      if (typeof m.error === 'string') p.reject(new Error(m.error));
      else p.resolve(m);
    });
    child.on('exit', (code, signal) => {
      this.#exited = new Error(`child ${child.pid} exited (${signal ?? code})`);
      for (const p of this.#pending.values()) p.reject(this.#exited);
      this.#pending.clear();
    });
  }

  /** `script` is relative to bench/. Resolves once the child says it is ready. */
  static async start(script: string, args: string[], readyTimeoutMs = 30_000): Promise<BenchChild> {
    const path = fileURLToPath(new URL(script, import.meta.url));
    const child = fork(path, args, { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const ready = await new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`${script} not ready after ${readyTimeoutMs} ms`));
      }, readyTimeoutMs);
      child.on('message', (m: Record<string, unknown>) => {
        if (m.type === 'ready') {
          clearTimeout(timer);
          resolve(m);
        }
        if (m.type === 'failed') {
          clearTimeout(timer);
          reject(new Error(`${script}: ${String(m.error)}`));
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`${script} exited with ${code} before it was ready`));
      });
    });
    return new BenchChild(child, ready);
  }

  request<T = Record<string, unknown>>(cmd: string, extra: Record<string, unknown> = {}, timeoutMs = 60_000): Promise<T> {
    if (this.#exited) return Promise.reject(this.#exited);
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`child did not answer ${cmd} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.child.send({ id, cmd, ...extra });
    });
  }

  /** Asks the child to stop (disconnect), then kills it if it has not gone within `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    const c = this.child;
    if (c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise<void>((r) => c.once('exit', () => r()));
    if (c.connected) c.disconnect();
    const timer = setTimeout(() => c.kill('SIGKILL'), graceMs);
    await gone;
    clearTimeout(timer);
  }
}
