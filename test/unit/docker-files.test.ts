import { spawn, spawnSync } from 'node:child_process';
import { builtinModules } from 'node:module';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { ENV_NAMES, loadConfig } from '../../src/config.ts';
import { freePort, waitForRedis } from '../../src/redis-server.ts';
import { startApiService } from '../helpers/api.ts';

/**
 * No Docker engine runs here, so the Dockerfile and docker-compose.yml are checked against the code
 * instead: what they run, where they listen, what they set, what they probe, what the image holds.
 * What this cannot check (the image builds, the containers start and reach each other) is said in the
 * README's "Docker" paragraph.
 */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const read = (p: string) => readFileSync(join(ROOT, p), 'utf8');
const pkg = JSON.parse(read('package.json')) as { engines: { node: string }; dependencies: Record<string, string> };
const defaults = loadConfig({});

interface Service {
  image?: string;
  build?: string;
  command?: string[];
  environment?: Record<string, string | number>;
  ports?: string[];
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }>;
  stop_grace_period?: string;
}
const compose = parseYaml(read('docker-compose.yml')) as { services: Record<string, Service> };
const runhookServices = Object.entries(compose.services).filter(([, s]) => s.build === '.');

/** Compose's `${NAME:-default}` with nothing set in the environment: the default. */
const interpolate = (v: string | number) => String(v).replace(/\$\{[A-Z0-9_]+(?::?-([^}]*))?\}/g, (_, d: string | undefined) => d ?? '');
/** A service's environment as its container gets it, with nothing set on the host. */
const envOf = (s: Service) => Object.fromEntries(Object.entries(s.environment ?? {}).map(([k, v]) => [k, interpolate(v)]));

/** Dockerfile instructions, one per line (this Dockerfile continues no line with `\`). */
const dockerfile = read('Dockerfile')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l !== '' && !l.startsWith('#'))
  .map((l) => {
    const [, op, args] = /^([A-Z]+)\s+(.*)$/.exec(l)!;
    return { op: op!, args: args! };
  });
const instr = (op: string) => dockerfile.filter((i) => i.op === op);
const execForm = (op: string) => JSON.parse(instr(op).at(-1)!.args) as string[];

let commands: Set<string> | undefined;
/** The commands of `runhook help`, as the CLI itself prints them. */
function cliCommands(): Set<string> {
  if (commands) return commands;
  const r = spawnSync(process.execPath, [join(ROOT, 'bin/runhook.js'), 'help'], { encoding: 'utf8' });
  expect(r.status).toBe(0);
  commands = new Set([...r.stdout.matchAll(/^ {2}([a-z]+)\b/gm)].map((m) => m[1]!));
  return commands;
}

describe('docker-compose.yml', () => {
  it('runs runhook CLI commands with options the CLI takes', () => {
    expect(runhookServices.map(([name]) => name).sort()).toEqual(['api', 'worker']);
    for (const [name, s] of runhookServices) {
      const [command, ...args] = s.command ?? execForm('CMD');
      expect(cliCommands(), `${name}: ${command}`).toContain(command);
      if (command === 'worker' && args.length > 0) expect(args).toEqual(['--only', expect.stringMatching(/^(runs|callbacks)$/)]);
    }
  });

  it('sets only environment names src/config.ts reads, with values it accepts', () => {
    for (const [name, s] of runhookServices) {
      const env = envOf(s);
      for (const k of Object.keys(env)) expect(ENV_NAMES, `${name} sets ${k}`).toContain(k);
      expect(() => loadConfig(env), name).not.toThrow();
      // Every service reaches Redis by a compose service name.
      expect(Object.keys(compose.services), name).toContain(new URL(env.REDIS_URL!).hostname);
    }
  });

  it("publishes the API's port: the container side is the PORT it listens on", () => {
    const api = compose.services.api!;
    const config = loadConfig(envOf(api));
    expect(config.port).toBe(defaults.port);
    expect(config.host).toBe('0.0.0.0');
    expect(api.ports?.map((p) => Number(String(p).split(':').at(-1)))).toEqual([config.port]);
    // The workers serve /metrics on all interfaces, for Prometheus inside the compose network.
    const worker = loadConfig(envOf(compose.services.worker!));
    expect(worker.metricsPort).toBeGreaterThan(0);
    expect(worker.host).toBe('0.0.0.0');
  });

  it('probes the API on a route it serves, and the probe passes when it is ready and fails when it is not', async () => {
    const [kind, ...probe] = compose.services.api!.healthcheck!.test;
    expect(kind).toBe('CMD');
    const script = probe.join(' ');
    const url = new URL(/https?:\/\/[^'"\s)]+/.exec(script)![0]);
    expect(['/healthz', '/readyz']).toContain(url.pathname);
    expect(Number(url.port)).toBe(defaults.port);
    const api = await startApiService();
    const run = (port: number) =>
      new Promise<number | null>((res) => {
        const [bin, ...args] = probe.map((a) => a.replace(`${url.host}`, `127.0.0.1:${port}`));
        expect(bin).toBe('node');
        spawn(process.execPath, args, { stdio: 'ignore' }).once('exit', (code) => res(code));
      });
    try {
      expect(await run(Number(new URL(api.url).port))).toBe(0);
      expect(await run(await freePort())).toBe(1);
    } finally {
      await api.close();
    }
  });

  it('starts the services after a healthy Redis, and gives workers longer than their shutdown grace', () => {
    const redis = compose.services.redis!;
    expect(redis.healthcheck?.test).toEqual(['CMD', 'redis-cli', 'ping']);
    for (const [name, s] of runhookServices) expect(s.depends_on?.redis?.condition, name).toBe('service_healthy');
    const grace = /^(\d+)s$/.exec(compose.services.worker!.stop_grace_period ?? '')?.[1];
    expect(Number(grace) * 1000).toBeGreaterThan(defaults.shutdownGraceMs);
  });

  describe('Redis', () => {
    const dir = mkdtempSync(join(tmpdir(), 'runhook-compose-redis-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('runs with AOF and noeviction: a real redis-server started with its command says so', async () => {
      const [bin, ...args] = compose.services.redis!.command!;
      expect(bin).toBe('redis-server');
      expect(args.join(' ')).toMatch(/--appendonly yes/);
      expect(args.join(' ')).toMatch(/--maxmemory-policy noeviction/);
      const port = await freePort();
      const server = spawn('redis-server', [...args, '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', ''], { stdio: 'ignore' });
      const redis = new Redis({ port, host: '127.0.0.1', lazyConnect: true });
      try {
        await waitForRedis(port, 10_000);
        await redis.connect();
        expect(await redis.config('GET', 'appendonly')).toEqual(['appendonly', 'yes']);
        expect(await redis.config('GET', 'maxmemory-policy')).toEqual(['maxmemory-policy', 'noeviction']);
      } finally {
        redis.disconnect();
        server.kill('SIGKILL');
      }
    });
  });
});

describe('Dockerfile', () => {
  const copied = instr('COPY').flatMap((i) => i.args.split(/\s+/).slice(0, -1));
  const ignored = read('.dockerignore').split('\n').map((l) => l.trim()).filter(Boolean);

  it('copies paths that exist and that .dockerignore lets through; node_modules comes from npm ci, not the host', () => {
    for (const p of copied) {
      expect(existsSync(join(ROOT, p)), p).toBe(true);
      expect(ignored, p).not.toContain(p);
    }
    expect(ignored).toContain('node_modules');
    expect(instr('RUN').map((i) => i.args)).toContain('npm ci --omit=dev');
  });

  it('runs the runhook CLI: ENTRYPOINT is the copied bin, CMD one of its commands', () => {
    const [node, bin] = execForm('ENTRYPOINT');
    expect(node).toBe('node');
    expect(copied.some((p) => bin!.startsWith(`${p}/`) || bin === p)).toBe(true);
    expect(existsSync(join(ROOT, bin!))).toBe(true);
    expect(cliCommands()).toContain(execForm('CMD')[0]);
    expect(instr('EXPOSE').map((i) => Number(i.args))).toEqual([defaults.port]);
  });

  it('sets only environment names src/config.ts reads (and NODE_ENV)', () => {
    const names = instr('ENV').flatMap((i) => [...i.args.matchAll(/([A-Z_][A-Z0-9_]*)=/g)].map((m) => m[1]!));
    expect(names.length).toBeGreaterThan(0);
    for (const n of names) if (n !== 'NODE_ENV') expect(ENV_NAMES, n).toContain(n);
  });

  it("starts from a Node image that package.json's engines accept", () => {
    const from = /^node:(\d+)/.exec(instr('FROM')[0]!.args)?.[1];
    const min = /^>=\s*(\d+)/.exec(pkg.engines.node)?.[1];
    expect(Number(from)).toBeGreaterThanOrEqual(Number(min));
  });

  describe('holds everything the code loads at run time', () => {
    const sources = (d: string): string[] =>
      readdirSync(join(ROOT, d)).flatMap((f) => {
        const p = join(d, f);
        return statSync(join(ROOT, p)).isDirectory() ? sources(p) : /\.(ts|js)$/.test(f) ? [p] : [];
      });
    const code = copied.filter((p) => existsSync(join(ROOT, p)) && statSync(join(ROOT, p)).isDirectory()).flatMap(sources);
    const builtins = new Set(builtinModules);

    it('every package it imports is a dependency (npm ci --omit=dev leaves devDependencies out)', () => {
      const missing: string[] = [];
      for (const file of code) {
        const text = read(file);
        const specifiers = [
          ...text.matchAll(/^\s*(?:import|export)\s+(?!type\s)(?:[^'";]*?\sfrom\s+)?['"]([^'"]+)['"]/gm),
          ...text.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g),
        ].map((m) => m[1]!);
        for (const s of specifiers) {
          if (s.startsWith('.') || s.startsWith('node:') || builtins.has(s)) continue;
          const name = s.startsWith('@') ? s.split('/').slice(0, 2).join('/') : s.split('/')[0]!;
          if (!(name in pkg.dependencies)) missing.push(`${file} imports ${s}`);
        }
      }
      expect(missing).toEqual([]);
    });

    it('every file it reads beside itself (new URL(…, import.meta.url)) is copied', () => {
      const outside: string[] = [];
      for (const file of code) {
        for (const [, rel] of read(file).matchAll(/new URL\(\s*[`'"](\.{1,2}\/[^`'"$]*)/g)) {
          const target = relative(ROOT, resolve(ROOT, dirname(file), rel!));
          const top = target.split('/')[0]!;
          if (!copied.includes(top) || !existsSync(join(ROOT, target))) outside.push(`${file}: ${rel} (${target})`);
        }
      }
      expect(code.length).toBeGreaterThan(10);
      expect(outside).toEqual([]);
    });
  });
});
