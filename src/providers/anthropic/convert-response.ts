/**
 * Anthropic Messages response -> OpenAI chat completion (outbound direction).
 */
import type { ChatCompletionResponse, FinishReason, ToolCall, Usage } from '../openai-types.js';
import type {
  AnthropicMessage,
  AnthropicMessageDeltaUsage,
  AnthropicStopReason,
  AnthropicUsage,
} from './types.js';

/** stop_reason -> finish_reason. pause_turn/refusal have no exact OpenAI twin (see docs/providers.md). */
export function mapStopReason(r: AnthropicStopReason | string | null | undefined): FinishReason {
  switch (r) {
    case 'end_turn':
    case 'stop_sequence':
    case 'pause_turn':
      return 'stop';
    case 'max_tokens':
    case 'model_context_window_exceeded':
      return 'length';
    case 'tool_use':
      return 'tool_calls';
    case 'refusal':
      return 'content_filter';
    case null:
    case undefined:
      return null;
    default:
      return 'stop';
  }
}

/**
 * Anthropic counts cached prompt tokens apart from input_tokens; OpenAI's prompt_tokens includes
 * them and reports the cached part in prompt_tokens_details.cached_tokens.
 */
export function mapUsage(u: AnthropicUsage | AnthropicMessageDeltaUsage): Usage {
  const cacheRead = u.cache_read_input_tokens ?? 0;
  const cacheCreation = u.cache_creation_input_tokens ?? 0;
  const prompt = (u.input_tokens ?? 0) + cacheRead + cacheCreation;
  const completion = u.output_tokens ?? 0;
  const usage: Usage = {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
  };
  if (cacheRead > 0 || cacheCreation > 0) {
    usage.prompt_tokens_details = { cached_tokens: cacheRead };
    if (cacheCreation > 0) usage.prompt_tokens_details['cache_creation_tokens'] = cacheCreation;
  }
  return usage;
}

export interface ConvertResponseOptions {
  /** Model name to report to the client (the requested alias); defaults to the upstream's. */
  model?: string;
  /** Unix seconds; injectable for tests. */
  created?: number;
}

export function fromAnthropicResponse(
  msg: AnthropicMessage,
  opts: ConvertResponseOptions = {},
): ChatCompletionResponse {
  const texts: string[] = [];
  const toolCalls: ToolCall[] = [];
  for (const block of msg.content) {
    if (block.type === 'text' && typeof block['text'] === 'string') texts.push(block['text']);
    else if (block.type === 'tool_use') {
      toolCalls.push({
        id: String(block['id']),
        type: 'function',
        function: { name: String(block['name']), arguments: JSON.stringify(block['input'] ?? {}) },
      });
    }
    // thinking, redacted_thinking and server-tool blocks are not translated.
  }
  const message: ChatCompletionResponse['choices'][number]['message'] = {
    role: 'assistant',
    content: texts.length > 0 ? texts.join('') : null,
  };
  if (toolCalls.length > 0) message.tool_calls = toolCalls;
  return {
    id: msg.id,
    object: 'chat.completion',
    created: opts.created ?? Math.floor(Date.now() / 1000),
    model: opts.model ?? msg.model,
    choices: [{ index: 0, message, finish_reason: mapStopReason(msg.stop_reason), logprobs: null }],
    usage: mapUsage(msg.usage),
  };
}
