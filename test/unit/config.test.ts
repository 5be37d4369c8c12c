import { describe, expect, it } from 'vitest';
import { loadConfig, SVIX_RETRY_DELAYS_MS } from '../../src/config.ts';
import { ConfigError } from '../../src/errors.ts';

describe('configuration', () => {
  it('has the contract defaults when the environment is empty', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      redisUrl: undefined,
      port: 8283,
      processor: 'echo',
      runAttempts: 3,
      keyPrefix: '{runhook}',
      retentionMs: 30 * 86_400_000,
      callbackTimeoutMs: 5_000,
      callbackAllowPrivate: false,
    });
    expect(c.callbackRetryDelaysMs).toEqual(SVIX_RETRY_DELAYS_MS);
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('parses lists, booleans and CIDR allow lists', () => {
    const c = loadConfig({
      RUNHOOK_API_KEYS: 'k1, k2',
      RUNHOOK_CALLBACK_RETRY_DELAYS: '0,10,20',
      RUNHOOK_CALLBACK_ALLOW_PRIVATE: '127.0.0.0/8,10.0.0.0/8',
      RUNHOOK_PREFIX: 'staging',
    });
    expect(c.apiKeys).toEqual(['k1', 'k2']);
    expect(c.callbackRetryDelaysMs).toEqual([0, 10, 20]);
    expect(c.callbackAllowPrivate).toEqual(['127.0.0.0/8', '10.0.0.0/8']);
    expect(c.keyPrefix).toBe('{staging}');
    expect(loadConfig({ RUNHOOK_CALLBACK_ALLOW_PRIVATE: 'true' }).callbackAllowPrivate).toBe(true);
  });

  it.each([
    ['PORT', 'eighty'],
    ['RUNHOOK_CONCURRENCY', '0'],
    ['RUNHOOK_RUN_ATTEMPTS', '-1'],
    ['REDIS_URL', 'http://example.com'],
    ['RUNHOOK_WEBHOOK_SECRET', 'not-a-secret'],
    ['RUNHOOK_CALLBACK_RETRY_DELAYS', '1,two'],
    ['RUNHOOK_CALLBACK_ALLOW_PRIVATE', 'sometimes'],
    ['RUNHOOK_PREFIX', 'has space'],
    ['LOG_LEVEL', 'loud'],
    ['LOG_FORMAT', 'fancy'],
    ['RUNHOOK_REQUEST_LOG', 'some'],
  ])('refuses an invalid %s with a message that names it', (name, value) => {
    let error: unknown;
    try {
      loadConfig({ [name]: value });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toContain(name);
  });
});
