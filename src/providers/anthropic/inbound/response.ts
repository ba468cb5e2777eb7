/**
 * Inbound direction: canonical OpenAI chat completion -> Anthropic Messages response.
 */
import { PorticoError } from '../../../errors/portico-error.js';
import type { ChatCompletionResponse, FinishReason, Usage } from '../../openai-types.js';
import { cacheTokensOf } from '../../usage.js';
import type {
  AnthropicMessage,
  AnthropicResponseBlock,
  AnthropicStopReason,
  AnthropicUsage,
} from '../types.js';

export function finishReasonToStopReason(f: FinishReason | undefined): AnthropicStopReason {
  switch (f) {
    case 'length':
      return 'max_tokens';
    case 'tool_calls':
    case 'function_call':
      return 'tool_use';
    case 'content_filter':
      return 'refusal';
    default:
      return 'end_turn';
  }
}

/** OpenAI prompt_tokens includes cached tokens; Anthropic reports them beside input_tokens. */
export function usageToAnthropic(u: Usage | null | undefined): AnthropicUsage {
  if (!u) return { input_tokens: 0, output_tokens: 0 };
  const { read, write } = cacheTokensOf(u);
  const out: AnthropicUsage = {
    input_tokens: Math.max(0, u.prompt_tokens - read - write),
    output_tokens: u.completion_tokens,
  };
  if (read > 0 || write > 0) {
    out.cache_read_input_tokens = read;
    out.cache_creation_input_tokens = write;
  }
  return out;
}

/** Tool arguments must decode to a JSON object (Anthropic's `input`); anything else is the backend's fault. */
export function parseToolInput(args: string, backendHint = 'backend'): Record<string, unknown> {
  if (args.trim() === '') return {};
  let v: unknown;
  try {
    v = JSON.parse(args);
  } catch {
    throw new PorticoError(
      'upstream_error',
      `The ${backendHint} returned tool-call arguments that are not valid JSON.`,
    );
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new PorticoError(
      'upstream_error',
      `The ${backendHint} returned tool-call arguments that are not a JSON object.`,
    );
  }
  return v as Record<string, unknown>;
}

export function messageId(id: string | undefined): string {
  if (id && id.startsWith('msg_')) return id;
  return `msg_${id && id !== '' ? id.replace(/^chatcmpl-/, '') : Math.random().toString(36).slice(2)}`;
}

export interface ToAnthropicOptions {
  /** Model name to report (the one the client asked for); defaults to the response's. */
  model?: string;
  /**
   * The usage to report when the answer carries none (a backend that reports no usage): the
   * gateway's count, the one it bills, rather than 0/0.
   */
  usage?: Usage;
}

/**
 * Thinking blocks for an answer: an Anthropic backend's own (`thinking_blocks`, signatures
 * included), else the `reasoning_content` OpenAI-compatible reasoning servers return (vLLM,
 * DeepSeek), as one thinking block without a signature.
 */
function thinkingOf(m: Record<string, unknown> | undefined): AnthropicResponseBlock[] {
  if (!m) return [];
  const blocks = m['thinking_blocks'];
  if (Array.isArray(blocks)) {
    const out: AnthropicResponseBlock[] = [];
    for (const b of blocks as unknown[]) {
      const o = (typeof b === 'object' && b !== null ? b : {}) as Record<string, unknown>;
      if (o['type'] === 'thinking' && typeof o['thinking'] === 'string')
        out.push({ type: 'thinking', thinking: o['thinking'], signature: String(o['signature'] ?? '') });
      else if (o['type'] === 'redacted_thinking' && typeof o['data'] === 'string')
        out.push({ type: 'redacted_thinking', data: o['data'] });
    }
    return out;
  }
  const r = m['reasoning_content'];
  return typeof r === 'string' && r !== '' ? [{ type: 'thinking', thinking: r, signature: '' }] : [];
}

export function openAIResponseToAnthropic(
  resp: ChatCompletionResponse,
  opts: ToAnthropicOptions = {},
): AnthropicMessage {
  const choice = resp.choices[0];
  const content: AnthropicResponseBlock[] = thinkingOf(choice?.message);
  const text = choice?.message.content;
  if (typeof text === 'string' && text !== '') content.push({ type: 'text', text });
  for (const tc of choice?.message.tool_calls ?? []) {
    content.push({
      type: 'tool_use',
      id: tc.id,
      name: tc.function.name,
      input: parseToolInput(tc.function.arguments),
    });
  }
  return {
    id: messageId(resp.id),
    type: 'message',
    role: 'assistant',
    model: opts.model ?? resp.model,
    content,
    stop_reason: finishReasonToStopReason(choice?.finish_reason),
    stop_sequence: null,
    usage: usageToAnthropic(resp.usage ?? opts.usage),
  };
}
