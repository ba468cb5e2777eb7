/**
 * Anthropic Messages response -> OpenAI chat completion (outbound direction).
 */
import type {
  ChatCompletionResponse,
  FinishReason,
  ThinkingBlock,
  ToolCall,
  Usage,
} from '../openai-types.js';
import { responseToolContent, type ResponseTool } from './structured-output.js';
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
    // Anthropic's own names too, as LiteLLM reports them to OpenAI clients.
    usage['cache_read_input_tokens'] = cacheRead;
    usage['cache_creation_input_tokens'] = cacheCreation;
  }
  return usage;
}

export interface ConvertResponseOptions {
  /** Model name to report to the client (the requested alias); defaults to the upstream's. */
  model?: string;
  /** The tool that carries a structured output (response_format): its input is the content. */
  responseTool?: ResponseTool | undefined;
  /** Unix seconds; injectable for tests. */
  created?: number;
}

export function fromAnthropicResponse(
  msg: AnthropicMessage,
  opts: ConvertResponseOptions = {},
): ChatCompletionResponse {
  const texts: string[] = [];
  const toolCalls: ToolCall[] = [];
  const thinking: ThinkingBlock[] = [];
  let structured: string | undefined;
  const rt = opts.responseTool;
  for (const block of msg.content) {
    if (block.type === 'text' && typeof block['text'] === 'string') texts.push(block['text']);
    else if (block.type === 'tool_use' && rt !== undefined && block['name'] === rt.name) {
      structured = responseToolContent(rt, block['input']);
    } else if (block.type === 'tool_use') {
      toolCalls.push({
        id: String(block['id']),
        type: 'function',
        function: { name: String(block['name']), arguments: JSON.stringify(block['input'] ?? {}) },
      });
    } else if (block.type === 'thinking' && typeof block['thinking'] === 'string') {
      thinking.push({
        type: 'thinking',
        thinking: block['thinking'],
        ...(typeof block['signature'] === 'string' ? { signature: block['signature'] } : {}),
      });
    } else if (block.type === 'redacted_thinking' && typeof block['data'] === 'string') {
      thinking.push({ type: 'redacted_thinking', data: block['data'] });
    }
    // server-tool blocks and citations are not translated.
  }
  // A structured output is the whole answer: text Claude wrote around the tool call is preamble.
  const content = structured ?? (texts.length > 0 ? texts.join('') : null);
  const message: ChatCompletionResponse['choices'][number]['message'] = { role: 'assistant', content };
  if (toolCalls.length > 0) message.tool_calls = toolCalls;
  if (thinking.length > 0) {
    message['reasoning_content'] = thinking.map((b) => (b.type === 'thinking' ? b.thinking : '')).join('');
    message['thinking_blocks'] = thinking;
  }
  const finish =
    structured !== undefined && toolCalls.length === 0 && msg.stop_reason === 'tool_use'
      ? 'stop'
      : mapStopReason(msg.stop_reason);
  return {
    id: msg.id,
    object: 'chat.completion',
    created: opts.created ?? Math.floor(Date.now() / 1000),
    model: opts.model ?? msg.model,
    choices: [{ index: 0, message, finish_reason: finish, logprobs: null }],
    usage: mapUsage(msg.usage),
  };
}
