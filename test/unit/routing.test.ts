import { describe, expect, it } from 'vitest';
import { loadConfig, withConfig } from '../../src/config.ts';
import { UnknownProcessorError } from '../../src/errors.ts';
import { chooseProcessor, configuredProcessors, globMatches } from '../../src/processing/routing.ts';

describe('RUNHOOK_ROUTES', () => {
  it('parses agent-glob=processor rules in order', () => {
    const c = loadConfig({ RUNHOOK_ROUTES: 'support-*=openai, batch-*=http ,*=echo' });
    expect(c.routes).toEqual([
      { agent: 'support-*', processor: 'openai' },
      { agent: 'batch-*', processor: 'http' },
      { agent: '*', processor: 'echo' },
    ]);
  });

  it('refuses a rule without a processor, naming the variable', () => {
    expect(() => loadConfig({ RUNHOOK_ROUTES: 'support-*' })).toThrow(/RUNHOOK_ROUTES/);
    expect(() => loadConfig({ RUNHOOK_ROUTES: 'a=openai,=echo' })).toThrow(/RUNHOOK_ROUTES/);
  });
});

describe('choosing a processor', () => {
  const config = withConfig({
    processor: 'echo',
    httpUrl: 'http://127.0.0.1:9/run',
    routes: [
      { agent: 'support-*', processor: 'openai' },
      { agent: 'batch-*', processor: 'http' },
      { agent: 'team.a?', processor: './my-processor.ts' },
    ],
  });

  it('takes the name the request gives, before any route', () => {
    expect(chooseProcessor(config, 'support-1', 'echo')).toBe('echo');
    expect(chooseProcessor(config, 'x', './my-processor.ts')).toBe('./my-processor.ts');
  });

  it('else the first route whose glob matches the agent id, else RUNHOOK_PROCESSOR', () => {
    expect(chooseProcessor(config, 'support-42')).toBe('openai');
    expect(chooseProcessor(config, 'batch-')).toBe('http');
    expect(chooseProcessor(config, 'team.a?')).toBe('./my-processor.ts');
    expect(chooseProcessor(config, 'teamXab')).toBe('echo');
    expect(chooseProcessor(config, 'other')).toBe('echo');
  });

  it('refuses a name the deployment does not run, listing those it does', () => {
    expect(() => chooseProcessor(config, 'a', 'nope')).toThrow(UnknownProcessorError);
    // A request never makes a worker import a module of its choosing.
    expect(() => chooseProcessor(config, 'a', '/tmp/evil.js')).toThrow(/unknown processor "\/tmp\/evil.js"/);
    expect(configuredProcessors(config)).toEqual(['echo', 'openai', 'http', './my-processor.ts']);
  });

  it('offers http only once RUNHOOK_HTTP_URL is set', () => {
    expect(configuredProcessors(withConfig({ processor: 'echo', routes: [], httpUrl: undefined }))).toEqual(['echo', 'openai']);
  });

  it('matches globs with * only, everything else literally', () => {
    expect(globMatches('*', '')).toBe(true);
    expect(globMatches('a*b*c', 'aXXbYc')).toBe(true);
    expect(globMatches('a.c', 'abc')).toBe(false);
    expect(globMatches('a(b)', 'a(b)')).toBe(true);
    expect(globMatches('support-*', 'my-support-1')).toBe(false);
  });
});
