import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { COMPRESS_FROM, packJsonField, packText, unpackJsonField, unpackText } from '../../src/runs/compact.ts';
import { foldLog, logMessages, readLog, streamOrder } from '../../src/runs/message-log.ts';
import { realisticText } from '../../bench/realistic-payload.ts';

const line = (seq: number, m: Record<string, unknown>) => `${seq}\tm\t${JSON.stringify(m)}`;

describe('compression of stored values', () => {
  it('keeps short values as they are and deflates prose from the threshold on', () => {
    expect(packText('x'.repeat(COMPRESS_FROM - 1)).toString()).toBe('x'.repeat(COMPRESS_FROM - 1));
    const prose = realisticText(1);
    const packed = packText(prose);
    expect(String.fromCharCode(packed[0]!)).toBe('Z');
    expect(packed.length).toBeLessThan(prose.length * 0.6);
    expect(unpackText(packed)).toBe(prose);
  });

  it('stores plain what does not shrink by an eighth: base64 data in an input, once base64 again', () => {
    const noise = randomBytes(1500).toString('base64');
    expect(packJsonField('input', JSON.stringify(noise))).toEqual(['input', JSON.stringify(noise)]);
    // As binary it still pays (base64 carries 6 bits a byte), and reads back as it was.
    expect(unpackText(packText(noise))).toBe(noise);
    const random = randomBytes(1500).toString('latin1');
    expect(unpackText(packText(random))).toBe(random);
  });

  it('writes a large JSON field under its _z name and reads either name back', () => {
    const json = JSON.stringify({ text: realisticText(2) });
    const [field, value] = packJsonField('input', json);
    expect(field).toBe('input_z');
    expect(unpackJsonField({ [field]: value }, 'input')).toBe(json);
    expect(unpackJsonField({ input: '{"text":"hi"}' }, 'input')).toBe('{"text":"hi"}');
    expect(unpackJsonField({}, 'input')).toBeUndefined();
  });
});

describe('message log forms', () => {
  const chunks = [
    line(1, { id: 'm1', message_type: 'reasoning_message', reasoning: 'Let me ' }),
    line(2, { id: 'm2', message_type: 'assistant_message', content: 'Hello ' }),
    line(3, { id: 'm1', message_type: 'reasoning_message', reasoning: 'think.' }),
    line(4, { id: 'm2', message_type: 'assistant_message', content: 'world.' }),
    '5\ts\tend_turn',
  ].join('\n');

  it('reads a log of chunks (the format before folding) exactly', () => {
    const log = readLog(chunks)!;
    expect(log.form).toBe('chunks');
    expect(log.entries.map((e) => e.seq_id)).toEqual([1, 2, 3, 4, 5]);
    expect(log.firstSeq).toBe(1);
  });

  it('folds chunks into whole messages in Letta order, and streams them in the order they were finished', () => {
    const { log, chunks: copy } = foldLog(chunks);
    const folded = readLog(log)!;
    expect(folded).toMatchObject({ form: 'folded', firstSeq: 1, exact: false });
    expect(logMessages(folded).map(({ id, seq_id, reasoning, content }) => ({ id, seq_id, reasoning, content }))).toEqual([
      { id: 'm1', seq_id: 3, reasoning: 'Let me think.', content: undefined },
      { id: 'm2', seq_id: 4, reasoning: undefined, content: 'Hello world.' },
    ]);
    expect(streamOrder(folded).map((e) => e.seq_id)).toEqual([3, 4, 5]);
    expect(readLog(copy)!.entries).toEqual(readLog(chunks)!.entries);
  });

  it('marks a log whose every message was one chunk exact, with no chunk copy', () => {
    const one = [line(3, { id: 'a', message_type: 'assistant_message', content: 'hi' }), '4\ts\tend_turn'].join('\n');
    const { log, chunks: copy } = foldLog(one);
    expect(copy).toBeNull();
    const folded = readLog(log)!;
    expect(folded).toMatchObject({ form: 'folded', firstSeq: 3, exact: true });
    expect(streamOrder(folded)).toEqual(readLog(one)!.entries);
    // A run ended with no message at all (a cancel while waiting) has only its stop.
    expect(readLog(foldLog('1\ts\tcancelled').log)).toMatchObject({ firstSeq: null, exact: true, entries: [{ seq_id: 1, kind: 'stop', stop_reason: 'cancelled' }] });
  });
});
