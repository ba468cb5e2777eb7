/**
 * The canonical request/response shapes inside Portico: OpenAI's chat/completions/embeddings wire
 * format. Every adapter converts to and from these. Unknown fields are kept (index signatures) so
 * provider-specific parameters pass through an OpenAI-compatible backend untouched.
 */

export type Role = 'system' | 'developer' | 'user' | 'assistant' | 'tool';

export interface TextPart {
  type: 'text';
  text: string;
}
export interface ImagePart {
  type: 'image_url';
  image_url: { url: string; detail?: 'auto' | 'low' | 'high' };
}
export type ContentPart = TextPart | ImagePart | { type: string; [k: string]: unknown };

export interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
  /** Anthropic prompt-caching breakpoint on the tool_use block (extension, see below). */
  cache_control?: unknown;
}

/*
 * Extensions for Anthropic features with no OpenAI field, in the shape LiteLLM established for
 * OpenAI-format requests to Claude, so OpenAI clients can use them too:
 * - `cache_control` on content parts, tool definitions, tool messages and tool calls;
 * - request `thinking` ({type:'enabled', budget_tokens}); assistant `thinking_blocks` (with their
 *   signatures, which Anthropic needs back in later turns) and `reasoning_content` (the text);
 * - streamed `delta.reasoning_content` and `delta.thinking_blocks` (signatures, redacted blocks).
 * OpenAI-protocol presets strip them before the upstream (see presets.ts `stripAnthropicExtensions`).
 */
export type ThinkingBlock =
  { type: 'thinking'; thinking: string; signature?: string } | { type: 'redacted_thinking'; data: string };

/**
 * The Anthropic API headers an Anthropic client sent (`anthropic-beta`, `anthropic-version`), for an
 * Anthropic backend. A symbol key: JSON never carries it, so no request body can set it and no
 * OpenAI-protocol upstream is sent it; object spread keeps it through the pipeline's copies.
 */
export const ANTHROPIC_HEADERS: unique symbol = Symbol('portico.anthropic-headers');

export interface ChatMessage {
  role: Role;
  content: string | ContentPart[] | null;
  name?: string;
  tool_calls?: ToolCall[];
  tool_call_id?: string;
  [k: string]: unknown;
}

export interface ToolDefinition {
  type: 'function';
  function: { name: string; description?: string; parameters?: Record<string, unknown>; strict?: boolean };
  cache_control?: unknown;
}

export type ToolChoice = 'none' | 'auto' | 'required' | { type: 'function'; function: { name: string } };

export interface ChatCompletionRequest {
  model: string;
  messages: ChatMessage[];
  stream?: boolean;
  stream_options?: { include_usage?: boolean } | null;
  max_tokens?: number | null;
  max_completion_tokens?: number | null;
  temperature?: number | null;
  top_p?: number | null;
  n?: number | null;
  stop?: string | string[] | null;
  seed?: number | null;
  tools?: ToolDefinition[];
  tool_choice?: ToolChoice;
  user?: string;
  [ANTHROPIC_HEADERS]?: Record<string, string>;
  [k: string]: unknown;
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details?: { cached_tokens?: number; [k: string]: unknown };
  completion_tokens_details?: Record<string, unknown>;
  [k: string]: unknown;
}

export type FinishReason = 'stop' | 'length' | 'tool_calls' | 'content_filter' | 'function_call' | null;

export interface ChatCompletionChoice {
  index: number;
  message: {
    role: 'assistant';
    content: string | null;
    tool_calls?: ToolCall[];
    refusal?: string | null;
    [k: string]: unknown;
  };
  finish_reason: FinishReason;
  logprobs?: unknown;
}

export interface ChatCompletionResponse {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: ChatCompletionChoice[];
  usage?: Usage;
  system_fingerprint?: string | null;
  [k: string]: unknown;
}

export interface ToolCallDelta {
  index: number;
  id?: string;
  type?: 'function';
  function?: { name?: string; arguments?: string };
}

export interface ChatCompletionChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  choices: Array<{
    index: number;
    delta: {
      role?: 'assistant';
      content?: string | null;
      tool_calls?: ToolCallDelta[];
      [k: string]: unknown;
    };
    finish_reason: FinishReason;
    logprobs?: unknown;
  }>;
  usage?: Usage | null;
  [k: string]: unknown;
}

/**
 * A legacy completions prompt: text, several texts (one choice each), or the same as token ids —
 * one list, or a list of lists (lm-evaluation-harness sends ids by default). See providers/prompt.ts.
 */
export type CompletionPrompt = string | string[] | number[] | number[][];

export interface CompletionRequest {
  model: string;
  prompt: CompletionPrompt;
  stream?: boolean;
  stream_options?: { include_usage?: boolean } | null;
  max_tokens?: number | null;
  temperature?: number | null;
  stop?: string | string[] | null;
  seed?: number | null;
  [k: string]: unknown;
}

export interface CompletionResponse {
  id: string;
  object: 'text_completion';
  created: number;
  model: string;
  choices: Array<{ index: number; text: string; finish_reason: FinishReason; logprobs?: unknown }>;
  usage?: Usage;
  [k: string]: unknown;
}

export interface CompletionChunk {
  id: string;
  object: 'text_completion';
  created: number;
  model: string;
  choices: Array<{ index: number; text: string; finish_reason: FinishReason }>;
  usage?: Usage | null;
  [k: string]: unknown;
}

export interface EmbeddingRequest {
  model: string;
  input: string | string[] | number[] | number[][];
  encoding_format?: 'float' | 'base64';
  dimensions?: number;
  user?: string;
  [k: string]: unknown;
}

export interface EmbeddingResponse {
  object: 'list';
  data: Array<{ object: 'embedding'; index: number; embedding: number[] | string }>;
  model: string;
  usage: { prompt_tokens: number; total_tokens: number };
}

export interface RerankRequest {
  model: string;
  query: string;
  documents: string[];
  top_n?: number;
  return_documents?: boolean;
  [k: string]: unknown;
}

export interface RerankResponse {
  id: string;
  model: string;
  results: Array<{ index: number; relevance_score: number; document?: { text: string } }>;
  usage: { prompt_tokens: number; total_tokens: number };
}
