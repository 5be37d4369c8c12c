import { defineProcessor, type EmittedMessage } from '../../src/processing/processor.ts';

/**
 * A test processor that streams what an LLM agent's step streams in Letta: reasoning, a tool call (its
 * arguments in pieces), a tool return, parallel tool calls, hidden reasoning, then the answer, each in
 * chunks that share a message id (a step's reasoning and tool call even share one id, as in Letta), and
 * with chunks of different messages interleaved.
 */
export const CHUNKS: EmittedMessage[] = [
  { id: 'message-step1', message_type: 'reasoning_message', reasoning: 'I should ', signature: null },
  { id: 'message-step1', message_type: 'reasoning_message', reasoning: 'look it up.', signature: 'sig-1' },
  { id: 'message-step1', message_type: 'tool_call_message', tool_call: { name: 'web_search', arguments: '{"q":', tool_call_id: 'call-1' } },
  { id: 'message-step1', message_type: 'tool_call_message', tool_call: { name: null, arguments: '"weather"}', tool_call_id: null } },
  { id: 'message-ret1', message_type: 'tool_return_message', tool_return: 'sunny, ', status: 'success', tool_call_id: 'call-1', stdout: ['a'] },
  {
    id: 'message-step2',
    message_type: 'tool_call_message',
    tool_calls: [
      { tool_call_id: 'call-2', name: 'lookup', arguments: '{"x"' },
      { tool_call_id: 'call-3', name: 'convert', arguments: '{' },
    ],
  },
  // A chunk of the tool return arrives after another message began.
  { id: 'message-ret1', message_type: 'tool_return_message', tool_return: '21°C', stdout: ['b'] },
  { id: 'message-step2', message_type: 'tool_call_message', tool_calls: [{ tool_call_id: 'call-3', arguments: '}' }] },
  { id: 'message-step2', message_type: 'tool_call_message', tool_calls: [{ tool_call_id: 'call-2', arguments: ':1}' }] },
  { id: 'message-step3', message_type: 'hidden_reasoning_message', state: 'redacted', hidden_reasoning: 'abc' },
  { id: 'message-step3', message_type: 'hidden_reasoning_message', hidden_reasoning: 'def' },
  { id: 'message-step4', message_type: 'reasoning_message', reasoning: 'Now answer.' },
  { id: 'message-step4', message_type: 'assistant_message', content: 'It is ' },
  { id: 'message-step4', message_type: 'assistant_message', content: 'sunny.' },
];

/** What the run's messages are once its chunks are joined, in order. */
export const JOINED = [
  { id: 'message-step1', message_type: 'reasoning_message', reasoning: 'I should look it up.', signature: 'sig-1' },
  { id: 'message-step1', message_type: 'tool_call_message', tool_call: { name: 'web_search', arguments: '{"q":"weather"}', tool_call_id: 'call-1' } },
  { id: 'message-ret1', message_type: 'tool_return_message', tool_return: 'sunny, 21°C', status: 'success', tool_call_id: 'call-1', stdout: ['a', 'b'] },
  {
    id: 'message-step2',
    message_type: 'tool_call_message',
    tool_calls: [
      { tool_call_id: 'call-2', name: 'lookup', arguments: '{"x":1}' },
      { tool_call_id: 'call-3', name: 'convert', arguments: '{}' },
    ],
  },
  { id: 'message-step3', message_type: 'hidden_reasoning_message', state: 'redacted', hidden_reasoning: 'abcdef' },
  { id: 'message-step4', message_type: 'reasoning_message', reasoning: 'Now answer.' },
  { id: 'message-step4', message_type: 'assistant_message', content: 'It is sunny.' },
];

export default defineProcessor({
  name: 'letta-chunks',
  async run({ context }) {
    for (const chunk of CHUNKS) await context.emit(chunk);
    return { stop_reason: 'end_turn', usage: { prompt_tokens: 3, completion_tokens: CHUNKS.length, total_tokens: 3 + CHUNKS.length } };
  },
});
