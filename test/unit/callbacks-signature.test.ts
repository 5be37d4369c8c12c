import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { CallbackSignatureError, CallbackTimestampError } from '../../src/callbacks/errors.ts';
import { secretKey, webhookHeaders, webhookId } from '../../src/callbacks/sign.ts';
import { verifyCallback } from '../../src/callbacks/verify.ts';

const secret = `whsec_${randomBytes(24).toString('base64')}`;
const body = JSON.stringify({ run_id: 'run-1', status: 'completed', metadata: { result: { messages: [] } } });

describe('callback signatures (Standard Webhooks)', () => {
  it('signs so that the standardwebhooks package accepts it', () => {
    const headers = webhookHeaders(secretKey(secret), webhookId('run-1'), body);
    expect(headers['webhook-id']).toBe('msg_run-1');
    expect(new Webhook(secret).verify(body, headers)).toEqual(JSON.parse(body));
  });

  it('verifies what the standardwebhooks package signs', () => {
    const now = new Date();
    const signature = new Webhook(secret).sign('msg_x', now, body);
    const headers = { 'webhook-id': 'msg_x', 'webhook-timestamp': String(Math.floor(now.getTime() / 1000)), 'webhook-signature': signature };
    expect(verifyCallback(secret, headers, body)).toEqual(JSON.parse(body));
    expect(verifyCallback(secret, new Headers(headers), Buffer.from(body))).toEqual(JSON.parse(body));
  });

  it('rejects a tampered body, a wrong secret and missing headers', () => {
    const headers = webhookHeaders(secretKey(secret), 'msg_a', body);
    expect(() => verifyCallback(secret, headers, body.replace('completed', 'failed'))).toThrow(CallbackSignatureError);
    expect(() => new Webhook(secret).verify(body.replace('completed', 'failed'), headers)).toThrow();
    expect(() => verifyCallback(`whsec_${randomBytes(24).toString('base64')}`, headers, body)).toThrow(CallbackSignatureError);
    expect(() => verifyCallback(secret, { 'webhook-id': 'msg_a' }, body)).toThrow(CallbackSignatureError);
  });

  it('accepts one matching signature among several (secret rotation)', () => {
    const headers = webhookHeaders(secretKey(secret), 'msg_a', body);
    headers['webhook-signature'] = `v1,${randomBytes(32).toString('base64')} ${headers['webhook-signature']}`;
    expect(() => verifyCallback(secret, headers, body)).not.toThrow();
  });

  it('rejects a timestamp more than five minutes away, even when correctly signed', () => {
    const sixMinutesAgo = Date.now() - 6 * 60_000;
    const old = webhookHeaders(secretKey(secret), 'msg_a', body, sixMinutesAgo);
    expect(() => verifyCallback(secret, old, body)).toThrow(CallbackTimestampError);
    const err = (() => {
      try {
        verifyCallback(secret, old, body);
      } catch (e) {
        return e as CallbackTimestampError;
      }
    })();
    expect(err?.code).toBe('CALLBACK_TIMESTAMP_OUT_OF_RANGE');
    expect(() => verifyCallback(secret, webhookHeaders(secretKey(secret), 'msg_a', body, Date.now() + 6 * 60_000), body)).toThrow(
      CallbackTimestampError,
    );
    expect(() => verifyCallback(secret, webhookHeaders(secretKey(secret), 'msg_a', body, Date.now() - 4 * 60_000), body)).not.toThrow();
  });

  it('sends webhook-id and webhook-timestamp but no signature without a secret', () => {
    const headers = webhookHeaders(undefined, 'msg_a', body);
    expect(Object.keys(headers).sort()).toEqual(['webhook-id', 'webhook-timestamp']);
  });
});
