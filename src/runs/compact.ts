import { deflateRawSync, inflateRawSync } from 'node:zlib';

/**
 * Compression of what a retained run keeps (its folded message log, its chunk copy, its input), with
 * node:zlib's raw deflate at the default level: ~0.1 ms for 2 KB of prose, and prose halves (measured on
 * the benchmark's 2 KB user messages: 2,222 → 1,111 bytes); brotli saved 10% more at 3 to 6 times the CPU
 * of a run's end, so deflate it is.
 *
 * COMPRESS_FROM: values shorter than 512 bytes are stored as they are. Below it deflate saves under ~200
 * bytes (256 bytes of prose → 166), next to a run's fixed ~1.5 KB (its hash, index entries, retention
 * entry), and every read would pay an inflate; a tiny run (the `memory` benchmark's "hi") is never
 * touched. A compressed form is kept only when it saves at least an eighth (an input carrying base64
 * data, say an image, does not once its deflate is base64 again): otherwise it is stored plain.
 */
export const COMPRESS_FROM = 512;

/** Marks a compressed binary value: the first byte of a message log is otherwise a digit or 'F'. */
const DEFLATED = 0x5a; // 'Z'

function pays(packed: number, plain: number): boolean {
  return packed <= plain - plain / 8;
}

/** A text as stored in a string key: itself, or 'Z' + raw deflate when that pays (see COMPRESS_FROM). */
export function packText(text: string): Buffer {
  const plain = Buffer.from(text);
  if (plain.length < COMPRESS_FROM) return plain;
  const z = deflateRawSync(plain);
  return pays(z.length + 1, plain.length) ? Buffer.concat([Buffer.of(DEFLATED), z]) : plain;
}

/** The text packText stored (a plain value, as every value before compression was, reads as itself). */
export function unpackText(stored: Buffer | string): string {
  if (typeof stored === 'string') return stored;
  return stored[0] === DEFLATED ? inflateRawSync(stored.subarray(1)).toString() : stored.toString();
}

/**
 * A JSON value kept in a hash field (a run's input). Hash fields come back from HGETALL and from every
 * script as text, so a compressed value is base64 (a third larger than the deflated bytes, still about a
 * third smaller than 2 KB of prose), under another field name, so that a plain field keeps its meaning.
 */
export function packJsonField(name: string, json: string): [field: string, value: string] {
  if (json.length < COMPRESS_FROM) return [name, json];
  const z = deflateRawSync(Buffer.from(json)).toString('base64');
  return pays(z.length, Buffer.byteLength(json)) ? [`${name}_z`, z] : [name, json];
}

/** The JSON text of a field that packJsonField wrote, from either of its names; undefined when absent. */
export function unpackJsonField(h: Record<string, string | undefined>, name: string): string | undefined {
  const z = h[`${name}_z`];
  if (z !== undefined) return inflateRawSync(Buffer.from(z, 'base64')).toString();
  return h[name];
}
