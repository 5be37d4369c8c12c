import type { ChatCompletionCreateParamsStreaming, ChatCompletionMessageParam } from 'openai/resources/chat/completions';
import { z } from 'zod';

/**
 * What the `openai` processor reads from a run's input (CONTRACT section 7): Letta's `messages`
 * (role/content, content a string or Letta content parts) or `input` (one user message), plus
 * optional `system`, `model` (or Letta's `override_model`), `max_tokens`, `temperature`. `tools` and
 * `tool_choice` pass through in OpenAI's shape, so a model can ask for tools (runhook runs none).
 */
const ContentPart = z.looseObject({ type: z.string() });
const Content = z.union([z.string(), z.array(ContentPart)]);

const InputMessage = z.looseObject({
  role: z.enum(['user', 'system', 'assistant', 'developer', 'tool']),
  content: Content.nullish(),
});

export const OpenAIInput = z.looseObject({
  messages: z.array(z.looseObject({})).optional(),
  input: Content.nullish(),
  /** The echo processor's field, accepted so a run written for echo also runs here. */
  text: z.string().optional(),
  system: z.string().optional(),
  model: z.string().min(1).max(256).optional(),
  override_model: z.string().min(1).max(256).nullish(),
  max_tokens: z.number().int().positive().optional(),
  temperature: z.number().min(0).max(2).optional(),
  tools: z.array(z.looseObject({})).optional(),
  tool_choice: z.unknown().optional(),
});
export type OpenAIInput = z.infer<typeof OpenAIInput>;

type Part = z.infer<typeof ContentPart>;
type OpenAIPart = { type: 'text'; text: string } | { type: 'image_url'; image_url: { url: string } };

/** A Letta content part as OpenAI's: text stays text, a Letta image (url or base64 source) becomes image_url. */
function toOpenAIPart(p: Part): OpenAIPart | undefined {
  if (p.type === 'text' && typeof p.text === 'string') return { type: 'text', text: p.text };
  if (p.type === 'image_url' && p.image_url && typeof p.image_url === 'object') return p as OpenAIPart;
  if (p.type === 'image' && p.source && typeof p.source === 'object') {
    const s = p.source as { type?: string; url?: string; media_type?: string; data?: string };
    if (s.type === 'url' && s.url) return { type: 'image_url', image_url: { url: s.url } };
    if (s.type === 'base64' && s.data) return { type: 'image_url', image_url: { url: `data:${s.media_type ?? 'image/png'};base64,${s.data}` } };
  }
  return typeof p.text === 'string' ? { type: 'text', text: p.text } : undefined;
}

function textOf(content: z.infer<typeof Content> | null | undefined): string {
  if (content == null) return '';
  if (typeof content === 'string') return content;
  return content.map((p) => (typeof p.text === 'string' ? p.text : '')).join('');
}

/** One Letta (or OpenAI) message as OpenAI's; messages without a chat role (e.g. Letta approvals) are left out. */
function toOpenAIMessage(raw: Record<string, unknown>): ChatCompletionMessageParam | undefined {
  const m = InputMessage.safeParse(raw);
  if (!m.success) return undefined;
  const { role, content } = m.data;
  if (role === 'user') {
    if (typeof content === 'string' || content == null) return { role, content: content ?? '' };
    const parts = content.flatMap((p) => toOpenAIPart(p) ?? []);
    return { role, content: parts };
  }
  if (role === 'assistant') {
    // An assistant turn that called tools keeps its calls, so a conversation can continue after approval.
    const calls = Array.isArray(raw.tool_calls) ? { tool_calls: raw.tool_calls as never } : {};
    return { role, content: content == null ? null : textOf(content), ...calls };
  }
  if (role === 'tool') {
    return { role, content: textOf(content), tool_call_id: typeof raw.tool_call_id === 'string' ? raw.tool_call_id : '' };
  }
  return { role, content: textOf(content) };
}

export class InvalidOpenAIInput extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidOpenAIInput';
  }
}

/** The streaming request for a run's input; `defaultModel` is RUNHOOK_OPENAI_MODEL. */
export function chatRequest(input: unknown, defaultModel: string | undefined): ChatCompletionCreateParamsStreaming {
  const raw = typeof input === 'string' ? { input } : input;
  const parsed = OpenAIInput.safeParse(raw ?? {});
  if (!parsed.success) {
    throw new InvalidOpenAIInput(`invalid input for the openai processor: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  const p = parsed.data;
  const messages: ChatCompletionMessageParam[] = [];
  if (p.system !== undefined) messages.push({ role: 'system', content: p.system });
  if (p.messages?.length) {
    for (const m of p.messages) {
      const out = toOpenAIMessage(m);
      if (out) messages.push(out);
    }
  } else if (p.input != null) {
    const user = toOpenAIMessage({ role: 'user', content: p.input });
    if (user) messages.push(user);
  } else if (p.text !== undefined) {
    messages.push({ role: 'user', content: p.text });
  }
  if (!messages.some((m) => m.role !== 'system')) throw new InvalidOpenAIInput('the openai processor needs `messages` or `input`');
  const model = p.model ?? p.override_model ?? defaultModel;
  if (!model) throw new InvalidOpenAIInput('no model: set RUNHOOK_OPENAI_MODEL or give the input a `model`');
  return {
    model,
    messages,
    stream: true,
    stream_options: { include_usage: true },
    ...(p.max_tokens !== undefined && { max_tokens: p.max_tokens }),
    ...(p.temperature !== undefined && { temperature: p.temperature }),
    ...(p.tools !== undefined && { tools: p.tools as never }),
    ...(p.tool_choice !== undefined && { tool_choice: p.tool_choice as never }),
  };
}
