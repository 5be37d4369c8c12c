import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { buildConnector } from 'undici';
import { BlockedAddressError, CallbackDnsError } from './errors.ts';

/**
 * The SSRF guard. A callback URL is the user's: it must not reach this host, its network or a cloud
 * metadata endpoint. The host is resolved here, every address is checked, and the socket is opened to
 * the address that passed, so a name cannot resolve to a public address for the check and a private one
 * for the connection (DNS rebinding).
 */

/** Ranges no callback may reach unless allowed (IANA special-purpose registries). */
const BLOCKED_V4: Array<[string, number]> = [
  ['0.0.0.0', 8], // "this network"
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // CGNAT
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local, incl. 169.254.169.254 (cloud metadata)
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.88.99.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, incl. broadcast
];

const BLOCKED_V6: Array<[string, number]> = [
  ['::', 128],
  ['::1', 128],
  ['100::', 64], // discard
  ['2001::', 32], // Teredo: embeds an obfuscated IPv4 address
  ['2001:db8::', 32],
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['fec0::', 10], // old site-local
  ['ff00::', 8], // multicast
];

function blockList(v4: Array<[string, number]>, v6: Array<[string, number]>): BlockList {
  const list = new BlockList();
  for (const [net, prefix] of v4) list.addSubnet(net, prefix, 'ipv4');
  for (const [net, prefix] of v6) list.addSubnet(net, prefix, 'ipv6');
  return list;
}

const BLOCKED = blockList(BLOCKED_V4, BLOCKED_V6);

/** What the guard lets through: everything, or public addresses plus an allow list of CIDRs. */
export class AddressPolicy {
  readonly #allowAll: boolean;
  readonly #allow: BlockList | undefined;

  constructor(allowPrivate: boolean | readonly string[]) {
    this.#allowAll = allowPrivate === true;
    if (Array.isArray(allowPrivate) && allowPrivate.length > 0) {
      const v4: Array<[string, number]> = [];
      const v6: Array<[string, number]> = [];
      for (const cidr of allowPrivate) {
        const [net = '', bits = ''] = cidr.split('/');
        const family = isIP(net);
        if (family === 0) throw new Error(`"${cidr}" is not a CIDR`);
        (family === 4 ? v4 : v6).push([net, Number(bits)]);
      }
      this.#allow = blockList(v4, v6);
    }
  }

  /** True when a connection to this IP address may be opened. */
  allows(address: string): boolean {
    if (this.#allowAll) return true;
    const ip = canonical(address);
    if (!ip) return false;
    if (this.#allow?.check(ip.address, ip.type)) return true;
    return !BLOCKED.check(ip.address, ip.type);
  }
}

/**
 * The address as the guard judges it: IPv6 forms that carry an IPv4 address (mapped ::ffff:a.b.c.d,
 * compatible ::a.b.c.d, NAT64 64:ff9b::/96, 6to4 2002::/16) are judged by that IPv4 address.
 */
export function canonical(address: string): { address: string; type: 'ipv4' | 'ipv6' } | undefined {
  const a = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  const family = isIP(a);
  if (family === 4) return { address: a, type: 'ipv4' };
  if (family !== 6) return undefined;
  const b = ipv6Bytes(a.split('%')[0]!);
  if (!b) return undefined;
  const zeros = (from: number, to: number) => b.slice(from, to).every((x) => x === 0);
  const v4 = (at: number) => `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
  if (zeros(0, 10) && b[10] === 0xff && b[11] === 0xff) return { address: v4(12), type: 'ipv4' };
  if (zeros(0, 12) && !zeros(12, 14)) return { address: v4(12), type: 'ipv4' };
  if (b[0] === 0x00 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b && zeros(4, 12)) return { address: v4(12), type: 'ipv4' };
  if (b[0] === 0x20 && b[1] === 0x02) return { address: v4(2), type: 'ipv4' };
  return { address: a.split('%')[0]!, type: 'ipv6' };
}

/** The 16 bytes of an IPv6 address (already validated by isIP), including a trailing dotted quad. */
function ipv6Bytes(a: string): number[] | undefined {
  let text = a;
  const tail: number[] = [];
  const dot = text.lastIndexOf(':');
  if (text.includes('.', dot)) {
    tail.push(...text.slice(dot + 1).split('.').map(Number));
    text = `${text.slice(0, dot + 1)}0:0`;
  }
  const [head = '', rest] = text.split('::');
  const groups = (s: string) => (s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)));
  const h = groups(head);
  const r = rest === undefined ? [] : groups(rest);
  const words = rest === undefined ? h : [...h, ...new Array<number>(8 - h.length - r.length).fill(0), ...r];
  if (words.length !== 8) return undefined;
  const bytes = words.flatMap((w) => [w >> 8, w & 0xff]);
  if (tail.length === 4) bytes.splice(12, 4, ...tail);
  return bytes;
}

/**
 * Resolves `host` and checks every address it has: one refused address refuses the host, since which
 * one a later lookup returns first is not ours to choose. Returns the address to connect to.
 */
export async function resolveChecked(host: string, policy: AddressPolicy, timeoutMs: number): Promise<string> {
  const bare = host.startsWith('[') ? host.slice(1, -1) : host;
  if (isIP(bare)) {
    if (!policy.allows(bare)) throw new BlockedAddressError(host, bare);
    return bare;
  }
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new CallbackDnsError(host, `no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  let addresses: { address: string }[];
  try {
    addresses = await Promise.race([lookup(bare, { all: true, verbatim: true }), timeout]);
  } catch (err) {
    if (err instanceof CallbackDnsError) throw err;
    throw new CallbackDnsError(host, (err as NodeJS.ErrnoException).code ?? (err as Error).message);
  } finally {
    clearTimeout(timer);
  }
  if (addresses.length === 0) throw new CallbackDnsError(host, 'no addresses');
  for (const { address } of addresses) {
    if (!policy.allows(address)) throw new BlockedAddressError(host, address);
  }
  return addresses[0]!.address;
}

/**
 * An undici connector that opens the socket to the checked address. `host` is left as the URL gave it,
 * so TLS still sends and verifies the name (SNI, certificate), and the Host header is unchanged.
 */
export function guardedConnector(policy: AddressPolicy, timeoutMs: number): buildConnector.connector {
  const connect = buildConnector({ timeout: timeoutMs });
  return (options, callback) => {
    resolveChecked(options.hostname, policy, timeoutMs).then(
      (address) => connect({ ...options, hostname: address }, callback),
      (err: Error) => callback(err, null),
    );
  };
}
