import { describe, expect, it } from 'vitest';
import { BlockedAddressError, CallbackDnsError } from '../../src/callbacks/errors.ts';
import { AddressPolicy, canonical, resolveChecked } from '../../src/callbacks/ssrf.ts';

const guard = new AddressPolicy(false);

describe('the SSRF address policy', () => {
  it.each([
    '127.0.0.1',
    '127.255.0.9',
    '10.0.0.1',
    '172.16.5.4',
    '172.31.255.255',
    '192.168.1.1',
    '169.254.169.254',
    '100.64.0.1',
    '0.0.0.0',
    '224.0.0.1',
    '255.255.255.255',
    '::1',
    '::',
    'fc00::1',
    'fd12:3456::1',
    'fe80::1',
    'ff02::1',
    '::ffff:127.0.0.1',
    '::ffff:7f00:1',
    '::ffff:10.0.0.1',
    '::ffff:a9fe:a9fe',
    '::127.0.0.1',
    '64:ff9b::a00:1',
    '2002:7f00:1::',
  ])('refuses %s', (address) => {
    expect(guard.allows(address)).toBe(false);
  });

  it.each(['93.184.216.34', '8.8.8.8', '172.32.0.1', '100.128.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8'])('lets %s through', (address) => {
    expect(guard.allows(address)).toBe(true);
  });

  it('reads IPv6 forms that carry an IPv4 address as that address', () => {
    expect(canonical('[::ffff:7f00:1]')).toEqual({ address: '127.0.0.1', type: 'ipv4' });
    expect(canonical('::ffff:192.168.0.1')).toEqual({ address: '192.168.0.1', type: 'ipv4' });
    expect(canonical('2001:4860::8888')).toEqual({ address: '2001:4860::8888', type: 'ipv6' });
    expect(canonical('not-an-ip')).toBeUndefined();
  });

  it('lets an allow list open chosen private ranges and nothing else', () => {
    const p = new AddressPolicy(['127.0.0.0/8', 'fd00::/8']);
    expect(p.allows('127.0.0.1')).toBe(true);
    expect(p.allows('::ffff:127.0.0.1')).toBe(true);
    expect(p.allows('fd00::5')).toBe(true);
    expect(p.allows('10.0.0.1')).toBe(false);
    expect(p.allows('169.254.169.254')).toBe(false);
    expect(p.allows('8.8.8.8')).toBe(true);
  });

  it('allows everything when private addresses are allowed', () => {
    expect(new AddressPolicy(true).allows('127.0.0.1')).toBe(true);
  });
});

describe('resolving a callback host', () => {
  it('refuses a name that resolves to loopback', async () => {
    await expect(resolveChecked('localhost', guard, 2_000)).rejects.toBeInstanceOf(BlockedAddressError);
  });

  it('refuses IP literals without a lookup, brackets or not', async () => {
    await expect(resolveChecked('[::1]', guard, 2_000)).rejects.toMatchObject({ code: 'CALLBACK_BLOCKED_ADDRESS', address: '::1' });
    await expect(resolveChecked('169.254.169.254', guard, 2_000)).rejects.toBeInstanceOf(BlockedAddressError);
  });

  it('returns the checked address to connect to', async () => {
    await expect(resolveChecked('localhost', new AddressPolicy(['127.0.0.0/8', '::1/128']), 2_000)).resolves.toMatch(/^(127\.0\.0\.1|::1)$/);
  });

  it('reports a name that does not resolve', async () => {
    await expect(resolveChecked('no-such-host.invalid', guard, 2_000)).rejects.toBeInstanceOf(CallbackDnsError);
  });
});
