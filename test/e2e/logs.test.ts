import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { childEnv } from '../helpers/processes.ts';
import { testConfig, waitFor } from '../helpers/setup.ts';

const BIN = fileURLToPath(new URL('../../bin/runhook.js', import.meta.url));
const config = testConfig();
const dir = mkdtempSync(join(tmpdir(), 'runhook-logs-'));
const children: Array<() => void> = [];

afterAll(() => {
  for (const kill of children) kill();
  rmSync(dir, { recursive: true, force: true });
});

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*m/g;
/** A pino-pretty line as logger.ts configures it: `[HH:MM:ss.mmm] LEVEL: message {…}`. */
const PRETTY_LINE = /^\[\d\d:\d\d:\d\d\.\d{3}\] (TRACE|DEBUG|INFO|WARN|ERROR|FATAL): \S/;

interface Started {
  /** Everything written to stdout so far (through the pseudo-terminal: with its \r\n and colours). */
  out(): string;
  url: string;
  /** SIGTERM to runhook itself; resolves with its exit code once it and its output have ended. */
  stop(): Promise<number | null>;
}

/**
 * `runhook api` on the suite's Redis, its stdout a pipe, or with `tty` a pseudo-terminal made by
 * util-linux's `script` (in Debian's essential bsdutils). Through `script`, runhook's pid is the shell's
 * (`exec`), written to a file so that SIGTERM reaches runhook and not `script`.
 */
async function startApi(env: Record<string, string>, tty: boolean): Promise<Started> {
  // A terminal emulator sets TERM; pino-pretty colours only where it is set (and NO_COLOR is not).
  const fullEnv = childEnv(config, { PORT: '0', HOST: '127.0.0.1', SHELL: '/bin/sh', ...(tty && { TERM: 'xterm-256color' }), ...env });
  let child: ChildProcess;
  let pid: () => number | undefined;
  if (tty) {
    if (spawnSync('script', ['--version']).error) throw new Error('`script` (util-linux, Debian package bsdutils) is needed for this test');
    const pidFile = join(dir, `pid-${Math.random().toString(36).slice(2)}`);
    const command = `echo $$ > '${pidFile}'; exec '${process.execPath}' '${BIN}' api`;
    child = spawn('script', ['-qfec', command, '/dev/null'], { env: fullEnv, stdio: ['pipe', 'pipe', 'pipe'] });
    pid = () => {
      try {
        return Number(readFileSync(pidFile, 'utf8').trim()) || undefined;
      } catch {
        return undefined;
      }
    };
  } else {
    child = spawn(process.execPath, [BIN, 'api'], { env: fullEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    const started = child;
    pid = () => started.pid;
  }
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const closed = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  children.push(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  const plain = () => out.replace(ANSI, '');
  await waitFor(() => plain().includes('runhook is up') || child.exitCode !== null, 20_000, `runhook api to start; output:\n${out}${err}`);
  const url = /http:\/\/127\.0\.0\.1:\d+/.exec(plain())?.[0];
  if (!url) throw new Error(`no API address in the output:\n${out}${err}`);
  return {
    out: () => out,
    url,
    stop: async () => {
      const p = await waitFor(pid, 5_000, 'runhook pid');
      process.kill(p, 'SIGTERM');
      return closed;
    },
  };
}

const lines = (text: string) =>
  text
    .replace(/\r/g, '')
    .split('\n')
    .filter((l) => l !== '');

const json = (text: string) => lines(text).map((l) => JSON.parse(l) as Record<string, unknown>);

describe('logs', () => {
  it('are JSON lines when stdout is a pipe, with a request line only for errors by default', async () => {
    const api = await startApi({}, false);
    expect((await fetch(`${api.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${api.url}/v1/runs/run-nope`)).status).toBe(404);
    await waitFor(() => api.out().includes('"statusCode":404'), 5_000, 'the 404 request line');
    expect(await api.stop()).toBe(0);

    const records = json(api.out());
    expect(records.map((r) => r.msg)).toEqual(expect.arrayContaining(['api listening', 'runhook is up', 'shutting down', 'stopped']));
    // The last line is written before the process exits: nothing is left in a buffer.
    expect(records.at(-1)).toMatchObject({ msg: 'stopped', signal: 'SIGTERM' });
    const requests = records.filter((r) => r.msg === 'request completed');
    expect(requests).toEqual([
      expect.objectContaining({ level: 30, method: 'GET', url: '/v1/runs/run-nope', route: '/v1/runs/:run_id', statusCode: 404 }),
    ]);
    // Fastify's own pair of lines per request is gone.
    expect(records.some((r) => r.msg === 'incoming request')).toBe(false);
  });

  it('are pretty lines, coloured, when stdout is a terminal', async () => {
    const api = await startApi({}, true);
    expect(await api.stop()).toBe(0);
    const out = lines(api.out());
    expect(api.out()).toMatch(ANSI);
    const plain = out.map((l) => l.replace(ANSI, ''));
    expect(plain.length).toBeGreaterThan(2);
    for (const l of plain) expect(l).toMatch(PRETTY_LINE);
    expect(plain.find((l) => l.includes('api listening'))).toMatch(/INFO: api listening \{"url":"http:\/\/127\.0\.0\.1:\d+"\}$/);
    expect(plain.at(-1)).toContain('INFO: stopped');
  });

  it('LOG_FORMAT=json forces JSON on a terminal', async () => {
    const api = await startApi({ LOG_FORMAT: 'json' }, true);
    expect(await api.stop()).toBe(0);
    expect(json(api.out()).at(-1)).toMatchObject({ msg: 'stopped' });
  });

  it('LOG_FORMAT=pretty forces pretty lines (uncoloured) into a pipe; RUNHOOK_REQUEST_LOG=all logs every request', async () => {
    const api = await startApi({ LOG_FORMAT: 'pretty', RUNHOOK_REQUEST_LOG: 'all' }, false);
    expect((await fetch(`${api.url}/healthz`)).status).toBe(200);
    await waitFor(() => api.out().includes('request completed'), 5_000, 'the request line');
    expect(await api.stop()).toBe(0);
    expect(api.out()).not.toMatch(ANSI);
    const out = lines(api.out());
    for (const l of out) expect(l).toMatch(PRETTY_LINE);
    expect(out.find((l) => l.includes('request completed'))).toMatch(/INFO: request completed \{.*"url":"\/healthz".*"statusCode":200/);
    expect(out.at(-1)).toContain('INFO: stopped');
  });

});
