import { describe, expect, it } from 'vitest';
import { chatRequest, InvalidOpenAIInput } from '../../src/processing/processors/openai-input.ts';
import { retryAfterMs } from '../../src/processing/processors/openai.ts';

describe('the openai processor’s request from a run’s input', () => {
  it('maps Letta messages and content parts to OpenAI’s, with system, limits and tools', () => {
    const req = chatRequest(
      {
        system: 'Be brief.',
        max_tokens: 10,
        temperature: 0,
        tools: [{ type: 'function', function: { name: 'f' } }],
        messages: [
          {
            role: 'user',
            content: [
              { type: 'text', text: 'look' },
              { type: 'image', source: { type: 'url', url: 'https://example.com/a.png' } },
              { type: 'image', source: { type: 'base64', media_type: 'image/jpeg', data: 'QUJD' } },
            ],
          },
          { role: 'assistant', content: [{ type: 'text', text: 'ok' }], tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: '{}' } }] },
          { role: 'tool', content: 'result', tool_call_id: 'c1' },
          { type: 'approval', approve: true },
        ],
      },
      'default-model',
    );
    expect(req).toEqual({
      model: 'default-model',
      stream: true,
      stream_options: { include_usage: true },
      max_tokens: 10,
      temperature: 0,
      tools: [{ type: 'function', function: { name: 'f' } }],
      messages: [
        { role: 'system', content: 'Be brief.' },
        {
          role: 'user',
          content: [
            { type: 'text', text: 'look' },
            { type: 'image_url', image_url: { url: 'https://example.com/a.png' } },
            { type: 'image_url', image_url: { url: 'data:image/jpeg;base64,QUJD' } },
          ],
        },
        { role: 'assistant', content: 'ok', tool_calls: [{ id: 'c1', type: 'function', function: { name: 'f', arguments: '{}' } }] },
        { role: 'tool', content: 'result', tool_call_id: 'c1' },
      ],
    });
  });

  it('takes `input` (a string, or parts) as one user message, and a bare string input too', () => {
    expect(chatRequest({ input: 'hi' }, 'm').messages).toEqual([{ role: 'user', content: 'hi' }]);
    expect(chatRequest({ input: [{ type: 'text', text: 'hi' }] }, 'm').messages).toEqual([{ role: 'user', content: [{ type: 'text', text: 'hi' }] }]);
    expect(chatRequest('hello', 'm').messages).toEqual([{ role: 'user', content: 'hello' }]);
  });

  it('prefers the input’s model, then override_model, then the configured one', () => {
    expect(chatRequest({ input: 'x', model: 'a', override_model: 'b' }, 'c').model).toBe('a');
    expect(chatRequest({ input: 'x', override_model: 'b' }, 'c').model).toBe('b');
    expect(chatRequest({ input: 'x' }, 'c').model).toBe('c');
  });

  it('refuses input with nothing to answer, or no model anywhere', () => {
    expect(() => chatRequest({ system: 'only a system prompt' }, 'm')).toThrow(InvalidOpenAIInput);
    expect(() => chatRequest({ input: 'x' }, undefined)).toThrow(/RUNHOOK_OPENAI_MODEL/);
    expect(() => chatRequest({ input: 'x', temperature: 9 }, 'm')).toThrow(/temperature/);
  });
});

describe('Retry-After', () => {
  it('reads retry-after-ms, seconds, and an HTTP date', () => {
    expect(retryAfterMs(new Headers({ 'retry-after-ms': '250' }))).toBe(250);
    expect(retryAfterMs(new Headers({ 'retry-after': '2' }))).toBe(2000);
    const inFive = new Date(Date.now() + 5_000).toUTCString();
    const ms = retryAfterMs(new Headers({ 'retry-after': inFive }))!;
    expect(ms).toBeGreaterThan(3_000);
    expect(ms).toBeLessThanOrEqual(5_000);
    expect(retryAfterMs(new Headers())).toBeUndefined();
  });
});
