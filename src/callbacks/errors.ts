import { RunhookError } from '../errors.ts';

/**
 * Errors of the callback side. They follow src/errors.ts (a stable code, an HTTP status) and live here
 * because receivers import verifyCallback without the rest of runhook.
 */

/** A callback a receiver got did not pass verifyCallback; `code` says why. */
export abstract class CallbackVerificationError extends RunhookError {
  readonly status = 401;
}

export class CallbackSignatureError extends CallbackVerificationError {
  readonly code = 'CALLBACK_SIGNATURE_INVALID';
}

export class CallbackTimestampError extends CallbackVerificationError {
  readonly code = 'CALLBACK_TIMESTAMP_OUT_OF_RANGE';
}

/** The callback URL resolved to an address the SSRF guard refuses. Never retried into success. */
export class BlockedAddressError extends RunhookError {
  readonly code = 'CALLBACK_BLOCKED_ADDRESS';
  readonly status = 400;
  constructor(
    readonly host: string,
    readonly address: string,
  ) {
    super(`callback host ${host} resolves to blocked address ${address}`, { host, address });
  }
}

/** The name of the callback host did not resolve (or not in time). */
export class CallbackDnsError extends RunhookError {
  readonly code = 'CALLBACK_DNS_FAILED';
  readonly status = 502;
  constructor(
    readonly host: string,
    readonly reason: string,
  ) {
    super(`DNS lookup failed for ${host} (${reason})`, { host, reason });
  }
}

/** One delivery attempt failed; thrown into BullMQ so that its retry schedule takes over. */
export class CallbackDeliveryError extends RunhookError {
  readonly code = 'CALLBACK_DELIVERY_FAILED';
  readonly status = 502;
  constructor(
    message: string,
    readonly statusCode: number | null,
  ) {
    super(message, { status_code: statusCode });
  }
}

export const CALLBACK_ERROR_CODES = [
  'CALLBACK_SIGNATURE_INVALID',
  'CALLBACK_TIMESTAMP_OUT_OF_RANGE',
  'CALLBACK_BLOCKED_ADDRESS',
  'CALLBACK_DNS_FAILED',
  'CALLBACK_DELIVERY_FAILED',
] as const;
